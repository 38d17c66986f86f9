import CZooKeeper
import Synchronization

// The one path of every asynchronous C call (`zoo_a*`, `zoo_add_auth`, `zoo_amulti`):
// `ZooKeeperClient.callC` retains the call's context, issues the call under the handle lock,
// and releases the context when the call fails synchronously; the completion (Callbacks.swift)
// or, after close, `PendingReplies.failAll` releases it otherwise. Whichever of the three takes
// the context out of the pending list is the only one that releases it and delivers, so the
// reply is delivered exactly once and every retain is balanced on every path.
// `ZooKeeperClient.start` adds a `OneShot` and a deadline that does not retain the request.

/// The context of one asynchronous C call. Retained once by `callC` and released by the
/// completion, by `callC` itself when the call fails synchronously, or by `failAll` after close.
final class ReplyBox: @unchecked Sendable {
    // Sendable: every field is set once in init and only read afterwards.
    let deliver: @Sendable (Int32, OperationResult) -> Void
    /// C buffers that must live until the completion runs (paths, data, ACL vectors, multi ops).
    let keepAlive: AnyObject?
    /// Where the retained pointer is listed while the C client holds it.
    let pending: PendingReplies

    init(pending: PendingReplies, keepAlive: AnyObject?, _ deliver: @escaping @Sendable (Int32, OperationResult) -> Void) {
        self.deliver = deliver
        self.keepAlive = keepAlive
        self.pending = pending
    }

    /// Retains the box for the C client and lists it as pending. The only retain of a reply
    /// context; `take` (in a completion), `releaseUnused` or `PendingReplies.failAll` balances it.
    fileprivate func retainedPointer() -> UnsafeRawPointer {
        let pointer = UnsafeRawPointer(Unmanaged.passRetained(self).toOpaque())
        pending.insert(pointer)
        return pointer
    }

    /// When the C call failed synchronously and its completion will never run: balances
    /// `retainedPointer()` unless a close got there first (which then has delivered `closing`).
    /// Returns whether the caller is the one to deliver. The caller holds the box, so the
    /// pointer stays valid here.
    fileprivate func releaseUnused(_ pointer: UnsafeRawPointer) -> Bool {
        guard pending.remove(pointer) else { return false }
        Unmanaged<ReplyBox>.fromOpaque(pointer).release()
        return true
    }

    /// In a completion: takes the box back from the C client, balancing `retainedPointer()`.
    static func take(_ pointer: UnsafeRawPointer?) -> ReplyBox? {
        guard let pointer else { return nil }
        let box = Unmanaged<ReplyBox>.fromOpaque(pointer).takeRetainedValue()
        _ = box.pending.remove(pointer)
        return box
    }
}

/// The replies the C client still owes. A request still unanswered when the handle is closed
/// never gets its completion, so after `zookeeper_close` the rest are failed with `closing` and
/// released here: nothing leaks, and no waiter is left hanging.
final class PendingReplies: Sendable {
    private let pointers = Mutex<Set<UInt>>([])

    func insert(_ pointer: UnsafeRawPointer) { _ = pointers.withLock { $0.insert(UInt(bitPattern: pointer)) } }

    /// Whether `pointer` was listed (and so is still owed a release by the caller).
    func remove(_ pointer: UnsafeRawPointer) -> Bool {
        pointers.withLock { $0.remove(UInt(bitPattern: pointer)) != nil }
    }

    /// Only once no completion can run any more.
    func failAll() {
        let left = pointers.withLock { p -> Set<UInt> in defer { p = [] }; return p }
        for bits in left {
            guard let pointer = UnsafeRawPointer(bitPattern: bits) else { continue }
            Unmanaged<ReplyBox>.fromOpaque(pointer).takeRetainedValue().deliver(ZCLOSING.rawValue, .none)
        }
    }
}

extension ZooKeeperClient {
    /// Issues one asynchronous C call. `issue` gets the live handle and the call's context and
    /// returns the C call's synchronous code; it runs under the handle lock, so it must only hand
    /// the request to the C client (which queues it and returns). `deliver` runs exactly once: on
    /// the completion thread with the reply, or here, at once, with the synchronous failure code
    /// (`closing` once the handle is closed). `keepAlive` (the C buffers the request points into)
    /// lives until then. Returns whether the request was issued.
    ///
    /// No allocation beyond the context box: `issue` does not escape.
    @discardableResult
    func callC(keepAlive: AnyObject? = nil, deliver: @escaping @Sendable (Int32, OperationResult) -> Void,
               issue: (OpaquePointer, UnsafeRawPointer) -> Int32) -> Bool {
        let box = ReplyBox(pending: core.pending, keepAlive: keepAlive, deliver)
        let context = box.retainedPointer()
        let rc = withHandle { zh in issue(zh, context) } ?? ZCLOSING.rawValue
        guard rc == ZOK.rawValue else {
            if box.releaseUnused(context) { deliver(rc, .none) }
            return false
        }
        return true
    }

    /// `callC` with a one-shot to wait on: it gets `reply(rc, result)` from the completion (or the
    /// synchronous failure), or `timedOut()` once `deadline` passes, whichever is first. The
    /// deadline's timer holds only the one-shot, weakly, and `timedOut`: once the reply came,
    /// the request's data and C buffers are freed at once, not when the deadline passes. So
    /// `timedOut` must not capture the request (capture its path, not the operation).
    func start<Value: Sendable>(deadline: ContinuousClock.Instant, keepAlive: AnyObject? = nil,
                                timedOut: @escaping @Sendable () -> Value,
                                reply: @escaping @Sendable (Int32, OperationResult) -> Value,
                                issue: (OpaquePointer, UnsafeRawPointer) -> Int32) -> OneShot<Value> {
        let once = OneShot<Value>()
        let issued = callC(keepAlive: keepAlive, deliver: { rc, result in once.resume(reply(rc, result)) }, issue: issue)
        if issued { once.resume(at: deadline, with: timedOut) }
        return once
    }
}
