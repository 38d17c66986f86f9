import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP relay between ZooKeeper clients and one server, on 127.0.0.1, that can be told to
/// misbehave: hold every byte back in both directions (a partition: the sockets stay open and
/// nothing flows), add latency, or let the next request of one opcode through and then drop
/// its reply and reset the connection (a lost reply), optionally refusing every connection
/// after that (a server that never comes back).
///
/// It reads ZooKeeper's framing (a 4-byte big-endian length before each packet) only to find a
/// request's opcode and the reply that belongs to it; packets are forwarded whole. Every
/// connection has one thread that polls both sockets with a short timeout, so a mode change
/// takes effect within about 20 ms and `stop()` ends everything within a bounded time.
public final class FaultRelay: @unchecked Sendable {
    // Unchecked: the mutable state is `state`, guarded by its lock; the descriptors are owned by
    // the threads that poll them and closed by those threads.

    /// What the relay does with the bytes.
    public enum Mode: Sendable, Equatable {
        /// Forward everything at once.
        case pass
        /// Forward nothing, either way; accept new connections and hold them too.
        case hold
        /// Forward everything after this delay (both directions).
        case latency(milliseconds: Int)
        /// Accept connections and reset them at once, before a byte is read.
        case refuse
    }

    /// ZooKeeper's request opcodes (ZooDefs.OpCode) that tests drop replies for.
    public enum OpCode: Int32, Sendable {
        case create = 1, delete = 2, exists = 3, getData = 4, setData = 5, getACL = 6, setACL = 7
        case getChildren = 8, sync = 9, ping = 11, getChildren2 = 12, check = 13, multi = 14
        case create2 = 15, createContainer = 19, createTTL = 21
    }

    private struct Armed {
        var opcodes: Set<Int32>
        var then: Mode
        /// Matching requests still to let through (with their replies) before the doomed one.
        var skip: Int = 0
        /// Drop the request itself (it never reaches the server) instead of its reply.
        var request = false
    }

    private struct State {
        var mode: Mode = .pass
        var armed: Armed?
        var stopped = false
        var accepted = 0
        var dropped: [Int32] = []
        var resets = 0
    }

    public let port: Int
    public let upstreamPort: Int
    private let listener: Int32
    private let state = LockedState(State())
    /// Threads still running (the acceptor and one per connection).
    private let live = LockedState(0)

    /// `host:port` for a client's connect string.
    public var address: String { "127.0.0.1:\(port)" }

    /// Listens on a free port of 127.0.0.1 and relays to `upstreamPort` on 127.0.0.1.
    public init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RelayError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { Glibc.close(fd); throw RelayError("listen: errno \(errno)") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        live.withLock { $0 += 1 }
        let acceptor = Thread { [self] in
            acceptLoop()
            live.withLock { $0 -= 1 }
        }
        acceptor.name = "relay-accept-\(port)"
        acceptor.start()
    }

    deinit { stop() }

    // MARK: Control

    public var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// Lets the next request with one of `opcodes` through, drops the server's reply to it and
    /// resets the connection both ways; the relay is in mode `then` afterwards. With `skipping`
    /// N, the first N such requests pass with their replies and the one after them is doomed
    /// (say the third create of `create --parents`).
    public func dropNextReply(to opcodes: Set<OpCode>, skipping: Int = 0, then: Mode = .pass) {
        state.withLock { $0.armed = Armed(opcodes: Set(opcodes.map(\.rawValue)), then: then, skip: max(0, skipping)) }
    }

    /// Drops the next request with one of `opcodes` before it reaches the server and resets the
    /// connection both ways (the client cannot tell this from a lost reply); the relay is in
    /// mode `then` afterwards. Dropped requests are counted in `droppedReplies` too. With
    /// `skipping` N, the first N such requests pass as with `dropNextReply`.
    public func dropNextRequest(to opcodes: Set<OpCode>, skipping: Int = 0, then: Mode = .pass) {
        state.withLock { $0.armed = Armed(opcodes: Set(opcodes.map(\.rawValue)), then: then, skip: max(0, skipping), request: true) }
    }

    /// The opcodes whose replies were dropped, in order.
    public var droppedReplies: [Int32] { state.withLock { $0.dropped } }
    /// Connections accepted so far.
    public var acceptedConnections: Int { state.withLock { $0.accepted } }
    /// Whether a drop is still armed (its request has not been seen yet).
    public var isArmed: Bool { state.withLock { $0.armed != nil } }

    /// Closes the listener and every relayed connection, and waits (bounded) for the threads.
    public func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return !s.stopped
        }
        guard first else { return }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && live.withLock({ $0 }) > 0 {
            usleep(10_000)
        }
        Glibc.close(listener)
    }

    // MARK: Threads

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func acceptLoop() {
        while !stopped {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 20) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            if state.withLock({ $0.mode }) == .refuse {
                reset(client)
                continue
            }
            let server = connectUpstream()
            guard server >= 0 else { reset(client); continue }
            state.withLock { $0.accepted += 1 }
            live.withLock { $0 += 1 }
            let worker = Thread { [self] in
                Connection(client: client, server: server, relay: self).run()
                live.withLock { $0 -= 1 }
            }
            worker.name = "relay-\(port)"
            worker.start()
        }
    }

    private func connectUpstream() -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = loopback(port: upstreamPort)
        let ok = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if !ok { Glibc.close(fd); return -1 }
        return fd
    }

    /// One relayed connection: packets are cut out of each direction's stream and forwarded
    /// whole, when the mode allows and (with latency) when they are old enough.
    private final class Connection {
        struct Direction {
            let from: Int32
            let to: Int32
            var inbound = [UInt8]()
            /// Whole packets waiting to be written, with the time they were read.
            var queue: [(at: Date, bytes: [UInt8])] = []
            var pendingWrite = [UInt8]()
            var sawFirst = false
        }

        let relay: FaultRelay
        /// A dropped request: reset once `cut` (which holds `up`) has returned.
        var resetAfterCut = false
        var up: Direction
        var down: Direction
        /// The xid of the request whose reply is to be dropped.
        var doomedXid: Int32?
        var doomedOpcode: Int32 = 0
        var then: Mode = .pass
        /// A four-letter word (`srvr`, `ruok`): no framing, bytes pass as they come.
        var raw = false

        init(client: Int32, server: Int32, relay: FaultRelay) {
            self.relay = relay
            up = Direction(from: client, to: server)
            down = Direction(from: server, to: client)
        }

        func run() {
            defer {
                Glibc.close(up.from)
                Glibc.close(up.to)
            }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while !relay.stopped {
                let mode = relay.mode
                if mode == .refuse { reset(); return }
                let flowing = mode != .hold
                var fds = [pollfd(fd: up.from, events: flowing ? Int16(POLLIN) : 0, revents: 0),
                           pollfd(fd: down.from, events: flowing ? Int16(POLLIN) : 0, revents: 0)]
                _ = poll(&fds, 2, 20)
                if !flowing { continue }
                for (index, isUp) in [(0, true), (1, false)] where fds[index].revents != 0 {
                    let n = read(fds[index].fd, &buffer, buffer.count)
                    if n <= 0 { return }
                    if isUp { up.inbound += buffer[0..<n] } else { down.inbound += buffer[0..<n] }
                }
                if !cut(&up, isUp: true) || !cut(&down, isUp: false) {
                    if resetAfterCut { reset() }
                    return
                }
                let delay: TimeInterval
                if case .latency(let ms) = mode { delay = Double(ms) / 1000 } else { delay = 0 }
                if !flush(&up, delay: delay) || !flush(&down, delay: delay) { return }
            }
        }

        /// Moves whole packets from `inbound` to the queue; drops the doomed reply (and resets).
        /// False when the connection must end.
        func cut(_ d: inout Direction, isUp: Bool) -> Bool {
            if isUp && !d.sawFirst && d.inbound.count >= 4 && d.inbound.prefix(4).allSatisfy({ (0x61...0x7a).contains($0) }) {
                raw = true
            }
            if raw {
                if !d.inbound.isEmpty { d.queue.append((Date(), d.inbound)); d.inbound = [] }
                return true
            }
            while d.inbound.count >= 4 {
                let length = Int(Int32(bigEndian: d.inbound.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
                guard length >= 0, length < 64 * 1024 * 1024 else { return false }
                guard d.inbound.count >= 4 + length else { break }
                let packet = Array(d.inbound[0..<(4 + length)])
                d.inbound.removeFirst(4 + length)
                let first = !d.sawFirst
                d.sawFirst = true
                if !first && packet.count >= 12 {
                    let xid = int32(packet, at: 4)
                    if isUp {
                        let opcode = int32(packet, at: 8)
                        if doomedXid == nil, let (armed, request) = relay.takeArmed(opcode) {
                            if request {
                                relay.recordDrop(opcode, then: armed)
                                resetAfterCut = true
                                return false
                            }
                            doomedXid = xid
                            doomedOpcode = opcode
                            then = armed
                        }
                    } else if let doomed = doomedXid, xid == doomed {
                        relay.recordDrop(doomedOpcode, then: then)
                        reset()
                        return false
                    }
                }
                d.queue.append((Date(), packet))
            }
            return true
        }

        func flush(_ d: inout Direction, delay: TimeInterval) -> Bool {
            let now = Date()
            while let head = d.queue.first, now.timeIntervalSince(head.at) >= delay {
                d.pendingWrite += head.bytes
                d.queue.removeFirst()
            }
            while !d.pendingWrite.isEmpty {
                let n = d.pendingWrite.withUnsafeBytes { write(d.to, $0.baseAddress, $0.count) }
                if n <= 0 { return false }
                d.pendingWrite.removeFirst(n)
            }
            return true
        }

        func reset() {
            relay.reset(up.from)
            relay.reset(up.to)
            up = Direction(from: -1, to: -1)
        }

        func int32(_ bytes: [UInt8], at offset: Int) -> Int32 {
            bytes.withUnsafeBytes { Int32(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: Int32.self)) }
        }
    }

    fileprivate func takeArmed(_ opcode: Int32) -> (Mode, request: Bool)? {
        state.withLock { s -> (Mode, request: Bool)? in
            guard let armed = s.armed, armed.opcodes.contains(opcode) else { return nil }
            if armed.skip > 0 {
                s.armed?.skip -= 1
                return nil
            }
            s.armed = nil
            return (armed.then, armed.request)
        }
    }

    fileprivate func recordDrop(_ opcode: Int32, then: Mode) {
        state.withLock { s in
            s.dropped.append(opcode)
            s.resets += 1
            s.mode = then
        }
    }

    /// Closes `fd` with a reset (SO_LINGER 0) rather than an orderly shutdown.
    fileprivate func reset(_ fd: Int32) {
        guard fd >= 0 else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.close(fd)
    }
}

private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}

public struct RelayError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
