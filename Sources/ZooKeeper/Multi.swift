import CZooKeeper
import FoundationEssentials
import Glibc
import Synchronization

/// One operation of an all-or-nothing `multi` transaction.
public enum MultiOp: Sendable, Hashable {
    case create(String, data: Data = Data(), mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe)
    case set(String, data: Data, version: Int32 = -1)
    case delete(String, version: Int32 = -1)
    /// Fails the transaction unless the node has this version.
    case check(String, version: Int32)

    public var path: String {
        switch self {
        case .create(let p, _, _, _), .set(let p, _, _), .delete(let p, _), .check(let p, _): return p
        }
    }

    /// A generous estimate of the operation's size inside a multi request.
    public var estimatedSize: Int {
        let base = 48 + path.utf8.count
        switch self {
        case .create(_, let data, _, let acl): return base + data.count + aclSize(acl)
        case .set(_, let data, _): return base + data.count
        case .delete, .check: return base
        }
    }
}

/// Cuts multi operations, in the order given, into transactions the server takes: each under
/// the packet limit by `ZooKeeperClient.estimatedMultiSize` and of at most `maxCount`
/// operations. The one place that owns the packet-limit rule for multis: add operations one at a
/// time (when other work sits between them) or batch a whole list with `batches`.
public struct MultiBatcher: Sendable {
    public let limit: Int
    public let maxCount: Int
    private var current: [MultiOp] = []
    private var size = ZooKeeperClient.estimatedMultiSize([])

    public init(limit: Int = ZooKeeperClient.maxPacketSize, maxCount: Int = .max) {
        self.limit = limit
        self.maxCount = max(1, maxCount)
    }

    /// Adds `op` to the open batch. When it does not fit there, the open batch is returned,
    /// finished, and `op` starts the next one. An operation too large for any batch still gets
    /// one of its own (`multi` then refuses it with a clear error).
    public mutating func add(_ op: MultiOp) -> [MultiOp]? {
        var finished: [MultiOp]? = nil
        if !current.isEmpty && (size + op.estimatedSize > limit || current.count >= maxCount) {
            finished = finish()
        }
        current.append(op)
        size += op.estimatedSize
        return finished
    }

    /// The open batch, if it holds anything; the batcher is empty afterwards.
    public mutating func finish() -> [MultiOp]? {
        guard !current.isEmpty else { return nil }
        defer {
            current = []
            size = ZooKeeperClient.estimatedMultiSize([])
        }
        return current
    }

    /// `ops` cut into batches, in order.
    public static func batches(_ ops: some Sequence<MultiOp>, limit: Int = ZooKeeperClient.maxPacketSize,
                               maxCount: Int = .max) -> [[MultiOp]] {
        var batcher = MultiBatcher(limit: limit, maxCount: maxCount)
        var result: [[MultiOp]] = []
        for op in ops { if let done = batcher.add(op) { result.append(done) } }
        if let last = batcher.finish() { result.append(last) }
        return result
    }

    /// Whether `op` fits in a transaction of its own.
    public static func fitsAlone(_ op: MultiOp, limit: Int = ZooKeeperClient.maxPacketSize) -> Bool {
        ZooKeeperClient.estimatedMultiSize([]) + op.estimatedSize <= limit  // estimatedMultiSize([op]), with no array made
    }
}

/// What one operation of a successful `multi` did.
public enum MultiOpResult: Sendable, Hashable {
    case created(String)
    case set(Stat)
    case deleted
    case checked
}

extension ZooKeeperClient {
    /// The size estimate of a whole multi request; compare with `maxPacketSize` to batch.
    public static func estimatedMultiSize(_ ops: [MultiOp]) -> Int {
        ops.reduce(64) { $0 + $1.estimatedSize }
    }

    /// Runs `ops` as one transaction: all succeed or none does. On failure the error carries the
    /// failing operation's code, path and index. When the answer is lost (the connection
    /// dropped after sending), what the server holds tells whether the transaction was applied
    /// (LostReply.swift): applied, its results; not applied, it is sent again; unknown within the
    /// request timeout, an error with `unknownOutcome` set.
    public func multi(_ ops: [MultiOp]) async throws -> [MultiOpResult] {
        if ops.isEmpty { return [] }
        return try await settledMulti(ops, startMulti(ops))
    }

    /// Runs each of `batches` as one transaction, in order, with up to `maxInFlight` of them sent
    /// before the first has answered (the server applies a session's requests in the order sent,
    /// so a batch may create the parents of the next). Once one fails, no further batch is sent;
    /// the results are those of the batches sent, in order, so a failure may be followed by the
    /// outcome of batches already on their way. `stop` is asked before each batch is sent: once
    /// it says yes, nothing more is sent and the batches already sent are awaited, so that the
    /// results say exactly what the server did with each batch sent.
    public func multi(batches: [[MultiOp]], maxInFlight: Int = 2,
                      stop: () -> Bool = { false }) async -> [Result<[MultiOpResult], any Error>] {
        var results: [Result<[MultiOpResult], any Error>] = []
        var sent: [PendingMulti] = []
        var next = 0
        var failed = false
        var refused: (any Error)? = nil
        while true {
            while !failed, refused == nil, next < batches.count, sent.count < max(1, maxInFlight), !stop() {
                do {
                    sent.append(try startMulti(batches[next]))
                    next += 1
                } catch {
                    // Refused before sending: nothing of it reached the server.
                    refused = error
                }
            }
            if sent.isEmpty { break }
            let pending = sent.removeFirst()
            do {
                // A lost answer is settled here, in order: the next batch's is looked at after.
                results.append(.success(try await settledMulti(pending.ops, pending)))
            } catch {
                results.append(.failure(error))
                failed = true
            }
        }
        if let refused { results.append(.failure(refused)) }
        return results
    }

    /// Checks and sends one transaction; its outcome is awaited from what this returns.
    func startMulti(_ ops: [MultiOp]) throws -> PendingMulti {
        let count = ops.count
        // One pass: the checks, the size estimate (`estimatedMultiSize`) and the bytes of one C
        // region for the whole request, where consecutive creates with the same ACL share its C
        // vector (the C client only reads it while it serialises the request).
        var size = Self.estimatedMultiSize([])
        var regionSize = CBuffers.regionSize(zoo_op_t.self, count: count) + CBuffers.regionSize(zoo_op_result_t.self, count: count)
        var lastACL: [ACL]? = nil
        for op in ops {
            // The 3.8.0 C client cannot read the reply to a container or TTL create inside a multi
            // (it asserts and aborts the process after the server committed), so refuse them here.
            if case .create(_, _, let mode, _) = op, mode.ttl != nil || mode == .container {
                throw ZooKeeperError(.badArguments, path: op.path, message: "container and TTL nodes cannot be created in a multi")
            }
            if let problem = PathRules.problem(with: op.path) {
                throw ZooKeeperError(.invalidPath, path: op.path, message: problem)
            }
            size += op.estimatedSize
            regionSize += CBuffers.regionSize(string: op.path.utf8.count)
            switch op {
            case .create(let path, let data, _, let acl):
                regionSize += CBuffers.regionSize(bytes: data.count) + CBuffers.regionSize(CChar.self, count: path.utf8.count + 32)
                if acl != lastACL { regionSize += CBuffers.regionSize(acl: acl); lastACL = acl }
            case .set(_, let data, _):
                regionSize += CBuffers.regionSize(bytes: data.count) + CBuffers.regionSize(CZooKeeper.Stat.self, count: 1)
            case .delete, .check:
                break
            }
        }
        if size > Self.maxPacketSize {
            throw ZooKeeperError(.requestTooLarge, path: ops.first?.path,
                                 message: "transaction of about \(size) bytes is over the server's limit of \(Self.maxPacketSize) bytes")
        }
        let buffers = CBuffers(capacity: regionSize)
        let cOps = buffers.allocate(zoo_op_t.self, count: count)
        let cResults = buffers.allocate(zoo_op_result_t.self, count: count)
        var shared: (acl: [ACL], vector: UnsafeMutablePointer<ACL_vector>)? = nil
        for (i, op) in ops.enumerated() {
            let slot = cOps + i
            switch op {
            case .create(let path, let data, let mode, let acl):
                let capacity = path.utf8.count + 32
                let vector: UnsafeMutablePointer<ACL_vector>
                if let s = shared, s.acl == acl {
                    vector = s.vector
                } else {
                    vector = buffers.aclVector(acl)
                    shared = (acl, vector)
                }
                zoo_create_op_init(slot, buffers.string(path), buffers.bytes(data), Int32(data.count),
                                   vector, mode.flags, buffers.allocate(CChar.self, count: capacity), Int32(capacity))
            case .set(let path, let data, let version):
                zoo_set_op_init(slot, buffers.string(path), buffers.bytes(data), Int32(data.count), version,
                                buffers.allocate(CZooKeeper.Stat.self, count: 1))
            case .delete(let path, let version):
                zoo_delete_op_init(slot, buffers.string(path), version)
            case .check(let path, let version):
                zoo_check_op_init(slot, buffers.string(path), version)
            }
        }
        let timeout = requestTimeout
        let path = ops.first?.path
        let answer = start(deadline: .now + timeout, keepAlive: buffers, timedOut: {
            Result<Int32, ZooKeeperError>.failure(ZooKeeperError(.operationTimeout, path: path, message: "no answer within \(timeout.milliseconds) ms"))
        }, reply: { rc, _ in .success(rc) }) { zh, context in
            zoo_amulti(zh, Int32(count), cOps, cResults, voidCompletion, context)
        }
        return PendingMulti(ops: ops, buffers: buffers, results: cResults, answer: answer)
    }
}

/// A transaction sent and not yet read back: the completion (or the deadline, whichever comes
/// first) sets the return code in `answer`; `outcome` waits for it and reads the C results. The
/// deadline holds only `answer`, weakly, so an answered batch frees its buffers at once.
final class PendingMulti: @unchecked Sendable {
    // Sendable: `ops`, `buffers` and `results` are read only after the completion has run (the
    // C client writes `results` before it), and `answer` is a Sendable one-shot.
    let ops: [MultiOp]
    private let buffers: CBuffers
    private let results: UnsafeMutablePointer<zoo_op_result_t>
    private let answer: OneShot<Result<Int32, ZooKeeperError>>

    init(ops: [MultiOp], buffers: CBuffers, results: UnsafeMutablePointer<zoo_op_result_t>,
         answer: OneShot<Result<Int32, ZooKeeperError>>) {
        self.ops = ops
        self.buffers = buffers
        self.results = results
        self.answer = answer
    }

    func outcome() async throws -> [MultiOpResult] {
        let rc = try await answer.wait().get()
        // `buffers` (held by self) keeps the results readable.
        if rc != ZOK.rawValue {
            // The failing op carries the real code; the others say "runtime inconsistency".
            for i in ops.indices {
                let err = results[i].err
                if err != ZOK.rawValue && err != ZRUNTIMEINCONSISTENCY.rawValue {
                    throw ZooKeeperError(rc: err, path: ops[i].path, operationIndex: i)
                }
            }
            throw ZooKeeperError(rc: rc, path: nil)
        }
        return ops.enumerated().map { i, op in
            switch op {
            case .create:
                // The server names the node it made: the path asked for, unless sequential. The
                // same text is the same string, without a copy.
                guard let value = results[i].value else { return .created(op.path) }
                var path = op.path
                let same = path.withUTF8 { p in strlen(value) == p.count && memcmp(value, p.baseAddress!, p.count) == 0 }
                return .created(same ? path : String(cString: value))
            case .set: return .set(results[i].stat.map { Stat($0.pointee) } ?? Stat())
            case .delete: return .deleted
            case .check: return .checked
            }
        }
    }
}

extension ZooKeeperError {
    init(rc: Int32, path: String?, operationIndex: Int?) {
        self.init(Code(rawValue: rc), path: path, operationIndex: operationIndex)
    }
}
