import Synchronization

/// A value that is set once and awaited: the first `resume` wins, later ones are dropped. Whoever
/// comes first among a reply, a synchronous failure, a deadline or an event sets it, and the task
/// waiting for it is resumed exactly once.
///
/// Thread safety: the value and the waiting continuation live behind one mutex; `resume` takes the
/// continuation out under the lock and resumes it after releasing it, so it may be called from any
/// thread, the C client's completion thread included (it never blocks there). At most one task
/// waits at a time.
///
/// A deadline (`resume(at:with:)`, `wait(until:else:)`) holds the one-shot weakly: once the value
/// is set and the waiter has gone on, the pending timer keeps neither the value nor anything the
/// setter holds (a request's data, its C buffers) alive until the deadline passes.
public final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiter: CheckedContinuation<Value, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    /// Sets the value, if it is not set yet, and wakes the waiter. Returns whether this call set it.
    @discardableResult
    public func resume(_ value: Value) -> Bool {
        let (first, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Value, Never>?) in
            guard s.value == nil else { return (false, nil) }
            s.value = value
            defer { s.waiter = nil }
            return (true, s.waiter)
        }
        waiter?.resume(returning: value)
        return first
    }

    /// The value, once it is set.
    public var value: Value? { state.withLock { $0.value } }

    /// Once `deadline` passes, sets the value `late()` returns, unless it is set by then. `late`
    /// runs on the event thread (`EventThread`), so it must not block; it must not capture what the deadline should not keep
    /// alive (the timer itself holds this one-shot weakly).
    public func resume(at deadline: ContinuousClock.Instant, with late: @escaping @Sendable () -> Value) {
        EventThread.shared.schedule(at: deadline) { [weak self] in
            guard let self, self.value == nil else { return }
            self.resume(late())
        }
    }

    /// Waits until the value is set.
    public func wait() async -> Value {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { s -> Value? in
                if let value = s.value { return value }
                precondition(s.waiter == nil, "OneShot: a second task waits")
                s.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Waits until the value is set, or `deadline` passes, whichever comes first; at the deadline
    /// the value is what `late()` returns.
    public func wait(until deadline: ContinuousClock.Instant, else late: @escaping @Sendable () -> Value) async -> Value {
        if value == nil { resume(at: deadline, with: late) }
        return await wait()
    }
}

/// Runs `body` once after `delay` on the event thread (`EventThread`); it must not block.
func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) {
    EventThread.shared.schedule(at: .now + delay, body)
}
