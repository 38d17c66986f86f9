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
///
/// Each batch leaves room for the two checks `multi(batches:)` puts in front of a batch sent
/// while the one before is in flight (`guardRoom`: checks of paths no longer than the longest
/// the batcher has seen), so that a full batch still goes out with them.
public struct MultiBatcher: Sendable {
    public let limit: Int
    public let maxCount: Int
    private var current: [MultiOp] = []
    private var size = ZooKeeperClient.estimatedMultiSize([])
    /// The longest path added so far, in any batch.
    private var longestPath = 0

    public init(limit: Int = ZooKeeperClient.maxPacketSize, maxCount: Int = .max) {
        self.limit = limit
        self.maxCount = max(1, maxCount)
    }

    /// Adds `op` to the open batch. When it does not fit there, the open batch is returned,
    /// finished, and `op` starts the next one. An operation too large for any batch still gets
    /// one of its own (`multi` then refuses it with a clear error).
    public mutating func add(_ op: MultiOp) -> [MultiOp]? {
        var finished: [MultiOp]? = nil
        longestPath = max(longestPath, op.path.utf8.count)
        if !current.isEmpty && (size + op.estimatedSize + Self.guardRoom(longestPath: longestPath) > limit || current.count >= maxCount) {
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

    /// How many operations a transaction holds once a change is several anyway. With four in
    /// flight, transactions of a thousand small creates load 100k nodes 6–15 % sooner than ones
    /// cut at the packet limit (about 7,000 of them): the server starts on the first sooner and
    /// has less left once the last is sent (benchmarks/FINDINGS.md §17).
    public static let spreadCount = 1000

    /// `batches` as they are when there is one (a change that fits in one transaction stays all
    /// or nothing); otherwise each cut into transactions of at most `count` operations. A part
    /// of a batch fits wherever the batch did.
    public static func spread(_ batches: [[MultiOp]], count: Int = spreadCount) -> [[MultiOp]] {
        guard batches.count > 1 else { return batches }
        return batches.flatMap { chunks($0, count: count) }
    }

    /// `ops` in consecutive parts of at most `count` (`ops` itself when it is short enough).
    public static func chunks(_ ops: [MultiOp], count: Int = spreadCount) -> [[MultiOp]] {
        let count = max(1, count)
        guard ops.count > count else { return [ops] }
        return stride(from: 0, to: ops.count, by: count).map { Array(ops[$0..<min($0 + count, ops.count)]) }
    }

    /// The size of the guard checks (`ZooKeeperClient.guardChecks`) of paths up to `longestPath` bytes.
    static func guardRoom(longestPath: Int) -> Int {
        2 * MultiOp.check(String(), version: 0).estimatedSize + 2 * longestPath
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

    /// Runs each of `batches` as one transaction, in order, with up to `maxInFlight` of them
    /// sent before the first has answered (the server applies a session's requests in the order
    /// sent, so a batch may create the parents of the next). What the server applies is the
    /// batches up to the first that fails, never one after it: a batch sent while the one before
    /// it has not answered starts with checks of nodes that one leaves (`guardChecks`), so the
    /// server refuses it unless the one before was applied, and a batch after one that leaves no
    /// such node waits until nothing is in flight. A batch refused by that check alone although
    /// the one before it was applied (sent again after a lost answer, or the node changed in
    /// between) is sent again without it, with nothing after it in flight.
    ///
    /// The results are those of the batches sent, in order: after the first failure, each batch
    /// already on its way says what became of it (a failure saying it was not applied, or, where
    /// a concurrent writer made the node it checks, its own outcome). `stop` is asked before each
    /// batch is sent: once it says yes, nothing more is sent and the batches already sent are
    /// awaited, so that the results say exactly what the server did with each batch sent.
    /// `applied` is told each batch's index, in order, once it is known to be applied.
    public func multi(batches: [[MultiOp]], maxInFlight: Int = 4, stop: () -> Bool = { false },
                      applied: (Int) -> Void = { _ in }) async -> [Result<[MultiOpResult], any Error>] {
        var results: [Result<[MultiOpResult], any Error>] = []
        var sent: [PendingMulti] = []
        var next = 0
        var failed = false
        var refused: (any Error)? = nil
        // The next batch goes out only when nothing is in flight (no check possible, or one sent again).
        var alone = false
        // The session may not read the nodes it checks: send each batch after the last answered.
        var unguarded = false
        let window = max(1, maxInFlight)
        while true {
            while !failed, refused == nil, next < batches.count, sent.count < window, !(alone && !sent.isEmpty), !stop() {
                var checks: [MultiOp] = []
                if let previous = sent.last {
                    checks = unguarded ? [] : Self.guardChecks(after: previous.ops)
                    if checks.isEmpty { alone = true; break }
                }
                do {
                    sent.append(try startMulti(batches[next], after: checks))
                    next += 1
                    alone = false
                } catch let error as ZooKeeperError where !checks.isEmpty && error.code == .requestTooLarge {
                    // Over the limit only with the check, perhaps: without it once the window is empty.
                    alone = true
                } catch {
                    // Refused before sending: nothing of it reached the server.
                    refused = error
                }
            }
            if sent.isEmpty { break }
            let pending = sent.removeFirst()
            do {
                // A lost answer is settled here, in order: the next batch's is looked at after.
                // After a failure nothing is sent again, only learnt.
                results.append(.success(try await settledMulti(pending.ops, pending, resend: !failed)))
                applied(results.count - 1)
            } catch let refusal as GuardRefusal where !failed {
                // The batch before was applied (it answered since): the check only found it not
                // applied yet, or its node changed. Sent again on its own.
                if refusal.error.code == .notAuthorized { unguarded = true }
                alone = true
                do {
                    results.append(.success(try await settledMulti(pending.ops, startMulti(pending.ops))))
                    applied(results.count - 1)
                } catch {
                    results.append(.failure(error))
                    failed = true
                }
            } catch is GuardRefusal {
                results.append(.failure(Self.notApplied(pending.ops)))
            } catch {
                results.append(.failure(error))
                failed = true
            }
        }
        if let refused { results.append(.failure(refused)) }
        return results
    }

    /// Checks that pass only once `ops` have been applied: two operations (the last and the
    /// first that qualify) that each leave a node at a known version (a create: version 0; a set
    /// with version v: v+1) on a path no other operation touches, preferring creates whose ACL
    /// lets anyone read (a check needs the read permission). Two, so that a transaction refused
    /// because one of those nodes was already there is still caught by the other. Empty when
    /// no operation qualifies.
    static func guardChecks(after ops: [MultiOp]) -> [MultiOp] {
        func check(_ index: Int) -> (check: MultiOp, readable: Bool)? {
            let found: (MultiOp, Bool)
            switch ops[index] {
            case .create(let path, _, let mode, let acl) where !mode.isSequential:
                found = (.check(path, version: 0),
                         acl.contains { $0.scheme == "world" && $0.id == "anyone" && $0.permissions.contains(.read) })
            case .set(let path, _, let version) where version >= 0:
                found = (.check(path, version: version &+ 1), false)
            default:
                return nil
            }
            let path = found.0.path
            if ops.indices.contains(where: { $0 != index && ops[$0].path == path }) { return nil }
            return found
        }
        func pick(_ indices: some Sequence<Int>) -> MultiOp? {
            var fallback: MultiOp? = nil
            for index in indices {
                guard let (c, readable) = check(index) else { continue }
                if readable { return c }
                if fallback == nil { fallback = c }
            }
            return fallback
        }
        guard let last = pick(ops.indices.reversed().prefix(8)) else { return [] }
        guard let first = pick(ops.indices.prefix(8)), first.path != last.path else { return [last] }
        return [last, first]
    }

    /// The failure of a batch that was not applied because an earlier one failed.
    static func notApplied(_ ops: [MultiOp]) -> ZooKeeperError {
        ZooKeeperError(.runtimeInconsistency, path: ops.first?.path, message: "not applied: an earlier transaction failed")
    }

    /// Checks and sends one transaction, after `checks` (guards from `guardChecks`: they come
    /// first in the request and their results are not among the results); its outcome is
    /// awaited from what this returns.
    func startMulti(_ ops: [MultiOp], after checks: [MultiOp] = []) throws -> PendingMulti {
        let offset = checks.count
        let count = ops.count + offset
        // One pass: the checks, the size estimate (`estimatedMultiSize`) and the bytes of one C
        // region for the whole request, where consecutive creates with the same ACL share its C
        // vector (the C client only reads it while it serialises the request).
        var size = Self.estimatedMultiSize([])
        var regionSize = CBuffers.regionSize(zoo_op_t.self, count: count) + CBuffers.regionSize(zoo_op_result_t.self, count: count)
        for check in checks {
            size += check.estimatedSize
            regionSize += CBuffers.regionSize(string: check.path.utf8.count)
        }
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
        for (i, check) in checks.enumerated() {
            if case .check(let path, let version) = check { zoo_check_op_init(cOps + i, buffers.string(path), version) }
        }
        var shared: (acl: [ACL], vector: UnsafeMutablePointer<ACL_vector>)? = nil
        for (i, op) in ops.enumerated() {
            let slot = cOps + offset + i
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
        return PendingMulti(ops: ops, guards: offset, buffers: buffers, results: cResults, answer: answer)
    }
}

/// A transaction sent and not yet read back: the completion (or the deadline, whichever comes
/// first) sets the return code in `answer`; `outcome` waits for it and reads the C results. The
/// deadline holds only `answer`, weakly, so an answered batch frees its buffers at once.
final class PendingMulti: @unchecked Sendable {
    // Sendable: `ops`, `buffers` and `results` are read only after the completion has run (the
    // C client writes `results` before it), and `answer` is a Sendable one-shot.
    let ops: [MultiOp]
    /// How many guard checks come before `ops` in the request (and in `results`).
    let guards: Int
    private let buffers: CBuffers
    private let results: UnsafeMutablePointer<zoo_op_result_t>
    private let answer: OneShot<Result<Int32, ZooKeeperError>>

    init(ops: [MultiOp], guards: Int, buffers: CBuffers, results: UnsafeMutablePointer<zoo_op_result_t>,
         answer: OneShot<Result<Int32, ZooKeeperError>>) {
        self.ops = ops
        self.guards = guards
        self.buffers = buffers
        self.results = results
        self.answer = answer
    }

    func outcome() async throws -> [MultiOpResult] {
        let rc = try await answer.wait().get()
        // `buffers` (held by self) keeps the results readable; the guard's result comes first.
        let results = self.results + guards
        if rc != ZOK.rawValue {
            // The failing op carries the real code; the others say "runtime inconsistency".
            // A refusal by the server (an API error, which the C client also gives as the
            // transaction's code) at the guard; after a lost connection nothing was read.
            if rc < ZAPIERROR.rawValue, (0..<guards).contains(where: { self.results[$0].err == rc }) {
                throw GuardRefusal(error: ZooKeeperError(rc: rc, path: nil))
            }
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

/// The server refused a transaction at its guard check: the batch before it was not applied
/// (yet) when this one came, or the checked node has changed since.
struct GuardRefusal: Error {
    var error: ZooKeeperError
}

extension ZooKeeperError {
    init(rc: Int32, path: String?, operationIndex: Int?) {
        self.init(Code(rawValue: rc), path: path, operationIndex: operationIndex)
    }
}
