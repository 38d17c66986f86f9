import CZooKeeper
import Synchronization

/// One watch's callback. The C client gets only its key; the core keeps it alive until it fires,
/// so a watch that never fires cannot dangle or leak past `close()`.
final class WatchBox: Sendable {
    let onEvent: @Sendable (WatchEvent) -> Void
    init(_ onEvent: @escaping @Sendable (WatchEvent) -> Void) { self.onEvent = onEvent }
}

/// The state shared between the client and its C callbacks: the session state with its
/// observers, and the live one-shot watches. It is the global watcher's context, retained once
/// for the handle and released after `zookeeper_close`.
final class SessionCore: Sendable {
    private struct State {
        var current: SessionState = .connecting
        /// The first terminal state: an expired session that is closed afterwards stays expired here.
        var ending: SessionState?
        var everConnected = false
        var waiters: [UInt64: @Sendable (SessionState) -> Bool] = [:]
        var streams: [UInt64: AsyncStream<SessionState>.Continuation] = [:]
        var nextID: UInt64 = 0
    }

    let connectString: ConnectString
    /// Replies still owed by the C client.
    let pending = PendingReplies()
    private let state = Mutex(State())
    private let watches = Mutex<[UInt: WatchBox]>([:])
    /// The retained pointer handed to zookeeper_init2 (as a bit pattern), released by `closed()`.
    private let context = Mutex<UInt>(0)

    init(connectString: ConnectString) {
        self.connectString = connectString
    }

    func adoptRetainedContext(_ pointer: UnsafeMutableRawPointer) {
        context.withLock { $0 = UInt(bitPattern: pointer) }
    }

    var currentState: SessionState { state.withLock { $0.current } }
    var ending: SessionState? { state.withLock { $0.ending } }

    // MARK: State

    func sessionEvent(_ cState: Int32) {
        let next: SessionState
        let wasConnected = state.withLock { $0.everConnected }
        switch cState {
        case ZOO_CONNECTED_STATE: next = .connected
        case ZOO_READONLY_STATE: next = .connectedReadOnly
        case ZOO_EXPIRED_SESSION_STATE: next = .expired
        case ZOO_AUTH_FAILED_STATE: next = .authFailed
        default: next = wasConnected ? .suspended : .connecting
        }
        transition(to: next)
        if next.isTerminal { endAllWatches() }
    }

    func transition(to next: SessionState) {
        let streams = state.withLock { s -> [AsyncStream<SessionState>.Continuation] in
            // A closed or expired session stays so.
            if s.current.isTerminal && s.current != next && next != .closed { return [] }
            s.current = next
            if next.isTerminal && s.ending == nil { s.ending = next }
            if next.isConnected { s.everConnected = true }
            // A waiter whose predicate holds resumes its task (which only schedules it) and goes.
            for (id, waiter) in s.waiters where waiter(next) {
                s.waiters[id] = nil
            }
            let streams = Array(s.streams.values)
            if next == .closed { s.streams = [:] }
            return streams
        }
        for c in streams {
            c.yield(next)
            if next == .closed { c.finish() }
        }
    }

    /// Waits until `predicate` holds for the state, or `timeout` passes; returns the state then.
    func wait(for timeout: Duration, until predicate: @escaping @Sendable (SessionState) -> Bool) async -> SessionState {
        let once = OneShot<SessionState>()
        let id = state.withLock { s -> UInt64? in
            if predicate(s.current) { return nil }
            s.nextID += 1
            s.waiters[s.nextID] = { value in
                guard predicate(value) else { return false }
                once.resume(value)
                return true
            }
            return s.nextID
        }
        guard let id else { return currentState }
        return await once.wait(until: .now + timeout) { [self] in
            state.withLock { s -> SessionState in
                s.waiters[id] = nil
                return s.current
            }
        }
    }

    func updates() -> AsyncStream<SessionState> {
        let (stream, continuation) = AsyncStream<SessionState>.makeStream(bufferingPolicy: .unbounded)
        let alreadyClosed = state.withLock { s -> Bool in
            if s.current == .closed { return true }
            s.nextID += 1
            let id = s.nextID
            s.streams[id] = continuation
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { $0.streams[id] = nil }
            }
            return false
        }
        if alreadyClosed { continuation.finish() }
        return stream
    }

    /// After zookeeper_close: no callback can run any more.
    func closed() {
        pending.failAll()
        transition(to: .closed)
        endAllWatches()
        let bits = context.withLock { c -> UInt in defer { c = 0 }; return c }
        if let pointer = UnsafeMutableRawPointer(bitPattern: bits) {
            Unmanaged<SessionCore>.fromOpaque(pointer).release()
        }
    }

    // MARK: Watches

    func register(_ box: WatchBox) -> UInt {
        let key = UInt(bitPattern: Unmanaged.passUnretained(box).toOpaque())
        watches.withLock { $0[key] = box }
        return key
    }

    func unregister(_ key: UInt) {
        watches.withLock { $0[key] = nil }
    }

    func nodeEvent(key: UInt, type: Int32, path: String) {
        guard let box = watches.withLock({ $0.removeValue(forKey: key) }) else { return }
        let kind: WatchEvent.Kind
        switch type {
        case ZOO_CREATED_EVENT: kind = .created
        case ZOO_DELETED_EVENT: kind = .deleted
        case ZOO_CHANGED_EVENT: kind = .dataChanged
        case ZOO_CHILD_EVENT: kind = .childrenChanged
        default: kind = .sessionEnded
        }
        box.onEvent(WatchEvent(kind: kind, path: path))
    }

    private func endAllWatches() {
        let all = watches.withLock { w -> [WatchBox] in
            defer { w = [:] }
            return Array(w.values)
        }
        for box in all { box.onEvent(WatchEvent(kind: .sessionEnded, path: "")) }
    }
}

/// The handle's global watcher: session events only.
let sessionWatcher: watcher_fn = { _, type, state, _, context in
    guard type == ZOO_SESSION_EVENT, let context else { return }
    Unmanaged<SessionCore>.fromOpaque(context).takeUnretainedValue().sessionEvent(state)
}

/// Every one-shot watch's watcher. Its context is a key into the core's registry, never a
/// pointer that is dereferenced, so a stale key is simply not found.
let nodeWatcher: watcher_fn = { zh, type, state, path, context in
    guard let zh, let coreContext = zoo_get_context(zh) else { return }
    let core = Unmanaged<SessionCore>.fromOpaque(coreContext).takeUnretainedValue()
    let key = UInt(bitPattern: context)
    if type == ZOO_SESSION_EVENT {
        // Session events reach every watcher; the session-wide handling ends them when terminal.
        return
    }
    core.nodeEvent(key: key, type: type, path: path.map { String(cString: $0) } ?? "")
}
