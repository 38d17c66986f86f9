import Glibc
import Synchronization

/// What a bulk write (delete -r, import) has had acknowledged by the server, so that an interrupt
/// can say exactly what was done. On SIGINT the runner runs the command's interrupt cleanup
/// (`Invocation.onInterrupt`) before it closes the sessions; the cleanup asks the writer to stop
/// sending (`stopRequested`, checked before each transaction) and waits, bounded, until what was
/// already sent has been answered (`settle`, when the writer stops or ends), then reports. Before
/// `startWriting` nothing has been sent, so an interrupt has nothing to wait for.
final class BulkProgress: Sendable {
    private struct State {
        var stop = false
        /// Between `startWriting` and `settle`: requests may be on their way.
        var writing = false
        /// Operations the server acknowledged.
        var done = 0
        /// Creates among them (import).
        var created = 0
        /// The operations planned, once known.
        var total: Int? = nil
        /// Where the writes go, and how many creates are planned (for the report).
        var target = ""
        var toCreate = 0
    }
    private let state = Mutex(State())

    var stopRequested: Bool { state.withLock { $0.stop } }
    var done: Int { state.withLock { $0.done } }
    var created: Int { state.withLock { $0.created } }
    var total: Int? { state.withLock { $0.total } }
    var target: String { state.withLock { $0.target } }
    var toCreate: Int { state.withLock { $0.toCreate } }

    func describe(target: String, toCreate: Int) {
        state.withLock { s in
            s.target = target
            s.toCreate = toCreate
        }
    }

    /// The writes begin; throws `Stopped` if an interrupt came first (it then reports that
    /// nothing was written, so nothing may be).
    func startWriting(total: Int) throws {
        try state.withLock { s in
            if s.stop { throw Stopped() }
            s.total = total
            s.writing = true
        }
    }

    func add(_ count: Int, created: Int = 0) {
        state.withLock { s in
            s.done += count
            s.created += created
        }
    }

    /// The writer has stopped: nothing it sent is still unanswered.
    func settle() { state.withLock { $0.writing = false } }

    /// Asks the writer to stop and waits at most `limit` for it to settle; false if it did not
    /// (a transaction sent is still unanswered: its outcome is unknown).
    func stopAndWait(limit: Duration) -> Bool {
        state.withLock { $0.stop = true }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if !state.withLock({ $0.writing }) { return true }
            usleep(10_000)
        }
        return !state.withLock { $0.writing }
    }

    /// Thrown by the writer where it stops on request; the runner exits 130 whatever it throws.
    struct Stopped: Error {}

    func stopIfAsked() throws {
        if stopRequested { throw Stopped() }
    }
}
