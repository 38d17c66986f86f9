import CZooKeeper
import Synchronization

extension ZooKeeperClient {
    /// The default bound on requests in flight in a pipeline.
    public static let defaultMaxInFlight = 256

    /// Sends `ops` with at most `maxInFlight` requests outstanding and hands each result to
    /// `deliver` in the order of `ops`, as soon as it and all before it have arrived.
    ///
    /// `ops` is read lazily, so a long sequence never sits in memory whole, and at most about
    /// twice `maxInFlight` results wait to be delivered. Reads that meet a connection loss are
    /// sent again until the request timeout passes. `deliver` runs on the client's completion
    /// thread: it must be quick and must not wait for other requests.
    public func pipeline<S: Sequence>(_ ops: S, maxInFlight: Int = defaultMaxInFlight,
                                      deliver: @escaping @Sendable (Int, Operation, Result<OperationResult, ZooKeeperError>) -> Void) async
        where S.Element == Operation {
        let run = PipelineRun(client: self, source: OperationSource(ops), window: max(1, maxInFlight), deliver: deliver)
        await run.start()
    }

    /// Sends all of `ops` pipelined and returns their results in the same order.
    public func pipeline(_ ops: [Operation], maxInFlight: Int = defaultMaxInFlight) async -> [Result<OperationResult, ZooKeeperError>] {
        let results = Mutex<[Result<OperationResult, ZooKeeperError>]>([])
        results.withLock { $0.reserveCapacity(ops.count) }
        await pipeline(ops, maxInFlight: maxInFlight) { _, _, result in
            results.withLock { $0.append(result) }
        }
        return results.withLock { $0 }
    }

    /// Issues one operation whose outcome goes to `done` (on the completion thread, or at once when
    /// the C call fails synchronously).
    func submit(_ op: Operation, done: @escaping @Sendable (Result<OperationResult, ZooKeeperError>) -> Void) {
        if let error = Self.precheck(op) { done(.failure(error)); return }
        // No deadline of its own (the pipeline never had one): a request the server leaves
        // unanswered ends with a connection loss once the C client gives up on the connection,
        // and `close()` fails what is still owed.
        let buffers = CBuffers()
        callC(keepAlive: buffers, deliver: { rc, reply in done(Self.outcome(op, rc, reply)) }) { zh, context in
            Self.issue(op, on: zh, context: context, watcher: nil, buffers: buffers)
        }
    }
}

/// A sequence's iterator behind a closure.
private final class OperationSource: @unchecked Sendable {
    // Sendable: `next()` is called only while holding the pipeline's state lock.
    private let nextOp: () -> Operation?

    init<S: Sequence>(_ ops: S) where S.Element == Operation {
        var iterator = ops.makeIterator()
        nextOp = { iterator.next() }
    }

    func next() -> Operation? { nextOp() }
}

/// The bookkeeping of one `pipeline` call.
private final class PipelineRun: Sendable {
    private struct State {
        var exhausted = false
        var issued = 0
        var delivered = 0
        var inFlight = 0
        var ready: [Int: (Operation, Result<OperationResult, ZooKeeperError>)] = [:]
        /// When each retried read first failed.
        var retrySince: [Int: ContinuousClock.Instant] = [:]
    }

    private let client: ZooKeeperClient
    private let window: Int
    private let deliver: @Sendable (Int, Operation, Result<OperationResult, ZooKeeperError>) -> Void
    private let source: OperationSource
    private let state = Mutex(State())
    /// Set once every operation is issued and delivered.
    private let finished = OneShot<Void>()

    init(client: ZooKeeperClient, source: OperationSource, window: Int,
         deliver: @escaping @Sendable (Int, Operation, Result<OperationResult, ZooKeeperError>) -> Void) {
        self.client = client
        self.window = window
        self.deliver = deliver
        self.source = source
    }

    func start() async {
        pump()
        await finished.wait()
    }

    /// Issues as many operations as the window allows, outside the lock.
    private func pump() {
        let batch = state.withLock { s -> [(Int, Operation)] in
            var batch: [(Int, Operation)] = []
            while !s.exhausted, s.inFlight < window, s.ready.count < window {
                guard let op = source.next() else { s.exhausted = true; break }
                batch.append((s.issued, op))
                s.issued += 1
                s.inFlight += 1
            }
            return batch
        }
        for (index, op) in batch { send(index, op) }
        finishIfDone()
    }

    private func send(_ index: Int, _ op: Operation) {
        client.submit(op) { [self] result in complete(index, op, result) }
    }

    private func complete(_ index: Int, _ op: Operation, _ result: Result<OperationResult, ZooKeeperError>) {
        if case .failure(let error) = result, op.isRead, error.code == .connectionLoss, retry(index, op) { return }
        state.withLock { s in
            s.inFlight -= 1
            s.retrySince[index] = nil
            s.ready[index] = (op, result)
            // Deliver in order, under the lock, so that order holds across threads.
            while let (op, result) = s.ready.removeValue(forKey: s.delivered) {
                deliver(s.delivered, op, result)
                s.delivered += 1
            }
        }
        pump()
    }

    /// Sends a read again shortly, unless it has been failing for longer than the request timeout.
    private func retry(_ index: Int, _ op: Operation) -> Bool {
        let now = ContinuousClock.now
        let ok = state.withLock { s -> Bool in
            let since = s.retrySince[index] ?? now
            s.retrySince[index] = since
            return now - since < client.requestTimeout
        }
        guard ok else { return false }
        schedule(after: .milliseconds(50)) { [self] in send(index, op) }
        return true
    }

    private func finishIfDone() {
        let done = state.withLock { s in s.exhausted && s.inFlight == 0 && s.ready.isEmpty }
        if done { finished.resume(()) }
    }
}
