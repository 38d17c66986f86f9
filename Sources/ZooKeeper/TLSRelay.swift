import COpenSSL
import Synchronization
#if canImport(Glibc)
import Dispatch
import Glibc
#endif

/// Debian's C client has no TLS, so zkctl brings it: for each server of the connect string a
/// listener on a loopback port of its own, whose address the C client is given instead, and one
/// thread that relays each accepted connection over TLS to the real server.
///
/// - Only this process may use it: an accepted connection whose other end is not a socket of this
///   process (found among /proc/self/fd by its address and its peer's) is closed before a byte moves,
///   so no other local user gets a session on zkctl's credentials. Listeners are on 127.0.0.1 only.
/// - One thread, `poll`; buffers of `bufferSize` each way; a full buffer stops reading from the
///   side that fills it (back-pressure both ways).
/// - A failed upstream handshake closes the client side (the C client moves on to the next
///   server) and is kept: `failures` names the reason for the final "unavailable" line.
final class TLSRelay: @unchecked Sendable {
    // Unchecked: after init, the listeners, servers and context are read only; the connections
    // belong to the relay thread alone; `failureLog` is in a mutex.
    struct Listener {
        let server: ConnectString.Server
        let address: Result<(storage: sockaddr_storage, length: socklen_t), ZooKeeperError>
        let fd: Int32
        let localPort: Int
    }

    static let bufferSize = 256 * 1024

    let listeners: [Listener]
    private let context: TLSContext
    private let handshakeTimeout: Duration
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let finished = DispatchSemaphore(value: 0)
    private let failureLog = Mutex<[Int: TLSFailure]>([:])
    private let closed = Mutex(false)
    /// The connects `init` started, one per listener (-1: none); the relay thread's from then on.
    private var earlyConnects: [Int32] = []

    /// Opens the listeners and starts the relay thread. Throws when TLS cannot be set up (a file
    /// that cannot be used) or no loopback port can be had.
    init(servers: [ConnectString.Server], options: TLSOptions, handshakeTimeout: Duration) throws {
        // The TCP connects to the servers start first (see `run`): over a network their round
        // trip overlaps OpenSSL's set-up (a few ms), which the ClientHello has to wait for anyway.
        let addresses = servers.map(resolveAddress)
        let early = addresses.map { address -> Int32 in
            guard case .success(let a) = address else { return -1 }
            return startConnect(a) ?? -1
        }
        var made: [Listener] = []
        func closeMade() {
            for l in made { Glibc.close(l.fd) }
            for fd in early where fd >= 0 { Glibc.close(fd) }
        }
        do {
            context = try TLSContext(options)
        } catch {
            closeMade()
            throw error
        }
        self.handshakeTimeout = handshakeTimeout
        for (server, address) in zip(servers, addresses) {
            guard let (fd, port) = Self.listenOnLoopback() else {
                let reason = String(cString: strerror(errno))
                closeMade()
                throw ZooKeeperError(.unavailable, message: "cannot open a loopback port for the TLS relay: \(reason)")
            }
            made.append(Listener(server: server, address: address, fd: fd, localPort: port))
        }
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0, setFlags(pipeFDs[0]), setFlags(pipeFDs[1]) else {
            let reason = String(cString: strerror(errno))
            closeMade()
            throw ZooKeeperError(.unavailable, message: "cannot start the TLS relay: \(reason)")
        }
        earlyConnects = early
        listeners = made
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        let started = startThread(name: "zkctl-tls-relay") { [self] in
            run()
            finished.signal()
        }
        if !started {
            finished.signal()
            throw ZooKeeperError(.unavailable, message: "cannot start the TLS relay: no thread for it")
        }
    }

    deinit { close() }

    /// The loopback connect string the C client is given: the same servers in the same order,
    /// the chroot kept.
    func clientForm(chroot: String?) -> String {
        listeners.map { "127.0.0.1:\($0.localPort)" }.joined(separator: ",") + (chroot ?? "")
    }

    /// The real server behind a loopback `host:port` of ours.
    func realServer(for local: String) -> String? {
        guard let port = local.split(separator: ":").last.flatMap({ Int($0) }) else { return nil }
        return listeners.first { $0.localPort == port }?.server.description
    }

    /// The last failure per server (in server order), for the servers whose last attempt failed.
    var failures: [TLSFailure] {
        let log = failureLog.withLock { $0 }
        return listeners.indices.compactMap { log[$0] }
    }

    /// The error for a connect through `relay` that got no session, when its handshakes failed:
    /// one line naming each server and why; exit 77's code when a server refused the client
    /// certificate. Nil without a relay or without a failure.
    static func connectFailure(_ relay: TLSRelay?, servers: [ConnectString.Server], tls: Bool) -> ZooKeeperError? {
        guard let relay, tls else { return nil }
        let failures = relay.failures
        guard !failures.isEmpty else { return nil }
        let refused = failures.contains { $0.kind == .clientCertificateRefused }
        return ZooKeeperError(refused ? .authFailed : .unavailable, message: failures.map(\.message).joined(separator: "; "))
    }

    /// Stops the thread, closes every connection and the listeners. Idempotent; waits for the
    /// thread.
    func close() {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        guard first else { return }
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)
        finished.wait()
        for l in listeners { Glibc.close(l.fd) }
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    private static func listenOnLoopback() -> (Int32, Int)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { Glibc.close(fd); return nil }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    private func record(_ failure: TLSFailure, listener: Int) {
        failureLog.withLock { $0[listener] = failure }
        ZooKeeperLog.emit("tls relay: \(failure.message)")
    }

    private func clearFailure(listener: Int) {
        failureLog.withLock { _ = $0.removeValue(forKey: listener) }
    }

    // MARK: The thread

    /// One relayed connection.
    private final class Connection {
        enum Phase { case connecting, handshaking, relaying }
        let listener: Int
        /// The C client's side; -1 for a connection made ahead of it (see `run`).
        var client: Int32
        var upstream: Int32 = -1
        var ssl: OpaquePointer?
        var phase = Phase.connecting
        let deadline: ContinuousClock.Instant
        /// Client to server, and server to client.
        var up = ByteQueue(capacity: TLSRelay.bufferSize)
        var down = ByteQueue(capacity: TLSRelay.bufferSize)
        var clientEOF = false
        var upstreamEOF = false
        /// What the upstream socket must become (POLLIN/POLLOUT) before the handshake, a write or
        /// a read can go on; 0 when it is not waiting.
        var handshakeWants: Int16 = Int16(POLLOUT)
        var writeWants: Int16 = 0
        var readWants: Int16 = Int16(POLLIN)
        /// The last SSL_read waited for the socket (false: it stopped on a full queue down).
        var readBlocked = true
        /// An SSL_write that must be retried with this length.
        var pendingWrite = 0
        var answered = false
        var done = false
        /// A stored session was offered in the handshake (see `TLSSessionCache`).
        var offeredSession = false
        /// The session is still to be kept for the next command: a TLS 1.3 ticket comes after
        /// the handshake, so the first read tries again.
        var sessionToKeep = false

        init(listener: Int, client: Int32, deadline: ContinuousClock.Instant) {
            self.listener = listener
            self.client = client
            self.deadline = deadline
        }

        deinit {
            up.deallocate()
            down.deallocate()
        }

        func close() {
            guard !done else { return }
            if let ssl { zkctl_SSL_free(ssl) }
            ssl = nil
            if upstream >= 0 { Glibc.close(upstream) }
            if client >= 0 { Glibc.close(client) }
            upstream = -1
            done = true
        }
    }

    private func run() {
        var connections: [Connection] = []
        defer { for c in connections { c.close() } }
        // One connection to each server is started at once, before the C client asks: its TCP
        // and TLS handshakes overlap the C client's start, and a session's first connection
        // finds it ready. Nothing is relayed on it before an accepted connection passes the
        // peer check and takes it over.
        for (i, up) in earlyConnects.enumerated() where up >= 0 {
            let spare = Connection(listener: i, client: -1, deadline: .now + handshakeTimeout)
            spare.upstream = up
            connections.append(spare)
        }
        var fds: [pollfd] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            for l in listeners { fds.append(pollfd(fd: l.fd, events: Int16(POLLIN), revents: 0)) }
            var timeout: Int32 = 1000
            for c in connections {
                var clientEvents: Int16 = 0
                if c.phase == .relaying {
                    if !c.clientEOF && !c.up.isFull { clientEvents |= Int16(POLLIN) }
                    if !c.down.isEmpty { clientEvents |= Int16(POLLOUT) }
                }
                fds.append(pollfd(fd: c.client, events: clientEvents, revents: 0))
                var upEvents: Int16 = 0
                switch c.phase {
                case .connecting, .handshaking: upEvents = c.handshakeWants
                case .relaying:
                    if !c.up.isEmpty { upEvents |= c.writeWants }
                    if !c.down.isFull && !c.upstreamEOF { upEvents |= c.readWants }
                }
                fds.append(pollfd(fd: c.upstream, events: upEvents, revents: 0))
                if c.phase != .relaying {
                    timeout = min(timeout, Int32(clamping: max(0, (c.deadline - .now).milliseconds) + 1))
                } else if !c.readBlocked && !c.down.isFull && !c.upstreamEOF {
                    // Reading stopped on a full queue, which has room now: what OpenSSL read
                    // ahead waits in its buffer, where poll cannot see it. Go round at once.
                    timeout = 0
                }
            }
            let r = poll(&fds, nfds_t(fds.count), timeout)
            if r < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            for (i, l) in listeners.enumerated() where fds[1 + i].revents & Int16(POLLIN) != 0 {
                acceptAll(listener: i, fd: l.fd, into: &connections)
            }
            for (k, c) in connections.enumerated() where !c.done {
                let base = 1 + listeners.count + 2 * k
                // Connections accepted just now have no poll entry yet: they are pumped anyway.
                let clientEvents = base + 1 < fds.count ? fds[base].revents : 0
                let upEvents = base + 1 < fds.count ? fds[base + 1].revents : 0
                if clientEvents & Int16(POLLERR | POLLNVAL) != 0 { c.close(); continue }
                pump(c, upstreamReady: upEvents != 0)
            }
            connections.removeAll { $0.done }
        }
    }

    private func acceptAll(listener: Int, fd: Int32, into connections: inout [Connection]) {
        for _ in 0..<64 {
            var peer = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let client = withUnsafeMutablePointer(to: &peer) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &len) }
            }
            if client < 0 { return }
            _ = setFlags(client)
            // Replies go to the C client as soon as they are decrypted, not held back by Nagle.
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let peerPort = Int(UInt16(bigEndian: peer.sin_port))
            // Before a byte is relayed: is the other end ours?
            guard PeerCheck.isOwnSocket(peerPort: peerPort, listenPort: listeners[listener].localPort) else {
                ZooKeeperLog.emit("tls relay: refused a connection from 127.0.0.1:\(peerPort), which is not this process's")
                Glibc.close(client)
                continue
            }
            if let spare = connections.first(where: { $0.listener == listener && $0.client < 0 && !$0.done }) {
                spare.client = client
                continue
            }
            let c = Connection(listener: listener, client: client, deadline: .now + handshakeTimeout)
            let l = listeners[listener]
            switch l.address {
            case .failure(let error):
                record(TLSFailure(server: l.server, kind: .other, reason: error.message), listener: listener)
                Glibc.close(client)
                continue
            case .success(let address):
                guard let up = startConnect(address) else {
                    record(TLSFailure(server: l.server, kind: .other, reason: String(cString: strerror(errno))), listener: listener)
                    Glibc.close(client)
                    continue
                }
                c.upstream = up
            }
            connections.append(c)
        }
    }

    private func fail(_ c: Connection, _ failure: TLSFailure) {
        record(failure, listener: c.listener)
        c.close()
    }

    private func pump(_ c: Connection, upstreamReady: Bool) {
        let server = listeners[c.listener].server
        if c.phase != .relaying && ContinuousClock.now >= c.deadline {
            let reason = c.phase == .connecting
                ? "no connection within \(handshakeTimeout.milliseconds) ms"
                : "no TLS handshake within \(handshakeTimeout.milliseconds) ms (is this the plain client port?)"
            fail(c, TLSFailure(server: server, kind: c.phase == .connecting ? .other : .notTLS, reason: reason))
            return
        }
        if c.phase == .connecting {
            guard upstreamReady else { return }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError == EINPROGRESS || soError == EALREADY { return }
            guard soError == 0 else {
                fail(c, TLSFailure(server: server, kind: .other, reason: String(cString: strerror(soError))))
                return
            }
            guard let ssl = context.newSSL(host: server.host) else {
                fail(c, TLSFailure(server: server, kind: .other, reason: "cannot set up TLS: \(TLSContext.lastError())"))
                return
            }
            zkctl_SSL_set_fd(ssl, c.upstream)
            // Read what the socket holds in one go, not a record header and a body at a time.
            zkctl_SSL_set_read_ahead(ssl, 1)
            // Up to 64 KiB a read (OpenSSL's default is one record's worth): a burst of replies
            // is taken in one read, not one per 16 KiB.
            zkctl_SSL_set_default_read_buffer_len(ssl, 64 * 1024)
            c.offeredSession = context.sessions?.offer(ssl, for: server) ?? false
            c.ssl = ssl
            c.phase = .handshaking
        }
        guard let ssl = c.ssl else { return }
        if c.phase == .handshaking {
            zkctl_ERR_clear_error()
            let r = zkctl_SSL_connect(ssl)
            if r != 1 {
                let err = zkctl_SSL_get_error(ssl, r)
                switch err {
                case SSL_ERROR_WANT_READ: c.handshakeWants = Int16(POLLIN)
                case SSL_ERROR_WANT_WRITE: c.handshakeWants = Int16(POLLOUT)
                default:
                    // The next attempt starts afresh (and, if it fails again, says why).
                    if c.offeredSession { context.sessions?.forget(server) }
                    fail(c, context.classify(ssl, sslError: err, handshakeDone: false, server: server))
                }
                return
            }
            c.phase = .relaying
            let kept = context.sessions.map { $0.keep(ssl, for: server) }
            c.sessionToKeep = kept == false
            ZooKeeperLog.emit(TLSSessionCache.handshakeLine(ssl, server: server, kept: kept))
        }
        // Made ahead and not taken over yet: nothing to relay, but what the server sends after
        // the handshake (TLS 1.3 session tickets) is read below, so poll does not spin on it.
        let hasClient = c.client >= 0
        // Client to the queue up.
        while hasClient && !c.clientEOF && !c.up.isFull {
            var room = 0
            let n = c.up.fill { p, space in room = space; return read(c.client, p, space) }
            // A short read took all the socket held: poll says when more comes, so no read is
            // spent on an EAGAIN.
            if n > 0 { if n < room { break } else { continue } }
            if n == 0 { c.clientEOF = true; break }
            if errno == EAGAIN || errno == EINTR { break }
            c.close(); return
        }
        // The queue up to the server.
        c.writeWants = 0
        while !c.up.isEmpty {
            zkctl_ERR_clear_error()
            let length = c.pendingWrite > 0 ? min(c.pendingWrite, c.up.count) : min(c.up.count, 64 * 1024)
            let r = c.up.drain(max: length) { p, n in Int(zkctl_SSL_write(ssl, p, Int32(n))) }
            if r > 0 { c.pendingWrite = 0; continue }
            let err = zkctl_SSL_get_error(ssl, Int32(r))
            c.pendingWrite = length
            switch err {
            case SSL_ERROR_WANT_WRITE: c.writeWants = Int16(POLLOUT)
            case SSL_ERROR_WANT_READ: c.writeWants = Int16(POLLIN)
            default: fail(c, context.classify(ssl, sslError: err, handshakeDone: true, server: server)); return
            }
            break
        }
        // The server to the queue down.
        c.readWants = Int16(POLLIN)
        c.readBlocked = false
        while !c.upstreamEOF && !c.down.isFull {
            zkctl_ERR_clear_error()
            let r = c.down.fill { p, n in Int(zkctl_SSL_read(ssl, p, Int32(n))) }
            if r > 0 {
                if c.sessionToKeep {
                    c.sessionToKeep = false
                    _ = context.sessions?.keep(ssl, for: server)
                }
                if !c.answered { c.answered = true; clearFailure(listener: c.listener) }
                // Nothing left in OpenSSL's buffer (read ahead, or decrypted): the socket is
                // all there is, and poll watches it. No read is spent on an EAGAIN.
                if zkctl_SSL_has_pending(ssl) == 0 { c.readWants = Int16(POLLIN); c.readBlocked = true; break }
                continue
            }
            let err = zkctl_SSL_get_error(ssl, Int32(r))
            switch err {
            case SSL_ERROR_WANT_READ: c.readWants = Int16(POLLIN); c.readBlocked = true
            case SSL_ERROR_WANT_WRITE: c.readWants = Int16(POLLOUT); c.readBlocked = true
            case SSL_ERROR_ZERO_RETURN: c.upstreamEOF = true
            case SSL_ERROR_SYSCALL where zkctl_ERR_peek_error() == 0 && c.answered: c.upstreamEOF = true
            default:
                let failure = context.classify(ssl, sslError: err, handshakeDone: true, server: server)
                // A close after an answer is the server ending the session, not a TLS failure.
                if c.answered && failure.kind == .other { c.upstreamEOF = true; break }
                fail(c, failure); return
            }
            break
        }
        // The queue down to the client.
        while hasClient && !c.down.isEmpty {
            let n = c.down.drain(max: c.down.count) { send(c.client, $0, $1, Int32(MSG_NOSIGNAL)) }
            if n > 0 { continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
            c.close(); return
        }
        if !hasClient && c.upstreamEOF {
            c.close()
        } else if (c.clientEOF && c.up.isEmpty) || (c.upstreamEOF && c.down.isEmpty) {
            if c.upstreamEOF && !c.answered {
                record(TLSFailure(server: server, kind: .other, reason: "the server closed the TLS connection without an answer"), listener: c.listener)
            }
            c.close()
        }
    }
}

/// Non-blocking and close-on-exec.
func setFlags(_ fd: Int32) -> Bool {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
}

/// A bounded byte queue: filled at the tail, drained at the head, compacted when the tail reaches
/// the end.
struct ByteQueue {
    private var storage: UnsafeMutableRawPointer
    private var head = 0
    private var tail = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    var count: Int { tail - head }
    var isEmpty: Bool { head == tail }
    var isFull: Bool { count == capacity }

    /// Calls `body` with the free space; it returns how many bytes it put there (or <= 0).
    mutating func fill(_ body: (UnsafeMutableRawPointer, Int) -> Int) -> Int {
        if tail == capacity && head > 0 {
            storage.copyMemory(from: storage + head, byteCount: count)
            tail -= head
            head = 0
        }
        let n = body(storage + tail, capacity - tail)
        if n > 0 { tail += n }
        return n
    }

    /// Calls `body` with up to `max` queued bytes; it returns how many it took (or <= 0).
    mutating func drain(max: Int, _ body: (UnsafeRawPointer, Int) -> Int) -> Int {
        let n = body(storage + head, Swift.min(max, count))
        if n > 0 {
            head += n
            if head == tail { head = 0; tail = 0 }
        }
        return n
    }

    func deallocate() { storage.deallocate() }
}

/// Whether a loopback connection to one of our listeners comes from this process.
enum PeerCheck {
    /// The connecting socket is one of this process's descriptors: a socket whose own address is
    /// 127.0.0.1 port `peerPort` and whose peer is 127.0.0.1 port `listenPort`. A TCP connection's
    /// pair of addresses is unique, so that socket is the other end of the accepted one; another
    /// process's socket is not among our descriptors. (This used to look the socket's inode up in
    /// /proc/net/tcp, whose read walks every socket of the host: a tenth of a TLS get's CPU here,
    /// and more on a host with many connections.)
    static func isOwnSocket(peerPort: Int, listenPort: Int) -> Bool {
        guard let dir = opendir("/proc/self/fd") else { return false }
        defer { closedir(dir) }
        let skip = dirfd(dir)
        while let entry = readdir(dir) {
            let fd = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Int32(String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self)))
            }
            guard let fd, fd != skip else { continue }
            if loopbackPort(of: fd, peer: false) == peerPort && loopbackPort(of: fd, peer: true) == listenPort { return true }
        }
        return false
    }

    /// The port of descriptor `fd`'s own address (or its peer's) when it is a socket on 127.0.0.1
    /// (or ::ffff:127.0.0.1); nil otherwise.
    static func loopbackPort(of fd: Int32, peer: Bool) -> Int? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &len) : getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { raw -> Int? in
                let a = raw.load(as: sockaddr_in.self)
                guard UInt32(bigEndian: a.sin_addr.s_addr) == 0x7f00_0001 else { return nil }
                return Int(UInt16(bigEndian: a.sin_port))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { raw -> Int? in
                let a = raw.load(as: sockaddr_in6.self)
                let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]
                guard withUnsafeBytes(of: a.sin6_addr, { Array($0) }) == mapped else { return nil }
                return Int(UInt16(bigEndian: a.sin6_port))
            }
        default:
            return nil
        }
    }
}
