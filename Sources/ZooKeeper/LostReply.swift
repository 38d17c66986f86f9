import CZooKeeper
import FoundationEssentials

// Lost replies (DESIGN.md 4b). A connection loss after a write was sent leaves its outcome
// unknown: the server may have applied it and the answer was lost on the way back. Sending it
// again blindly can do it twice (a second sequential node) or report a conflict with itself (a
// versioned set now meets its own new version). So once the same session is connected again,
// what the server holds is read and compared with what was written:
//
//   set      the node has the data written (and, with a version v, version v+1): applied
//   create   the node exists with the data written (an ephemeral one owned by this session);
//            a sequential create looks among the parent's children numbered from the parent's
//            child version read just before the request (the server numbers children by it),
//            for the ones holding the data written (an ephemeral one owned by this session)
//   delete   the node is gone: done ("already gone after our attempt")
//   setACL   with a version v, the node's ACL version is v+1; without, setting it again is
//            harmless
//   multi    each node it touches is compared with the state the transaction leaves; nodes a
//            transaction changes all carry its zxid, so the ones it created or changed must
//            agree on one (MultiOutcome below)
//
// A write found not applied is sent again (at most `writeAttempts` times in all); one found
// applied returns what the server holds, as the answer would have. When the session does not
// come back within the request timeout, or what the server holds does not tell, the error says
// so (`unknownOutcome`), with the path to read.

extension ZooKeeperClient {
    /// How many times one write is sent at most when its answers keep being lost.
    static let writeAttempts = 3

    /// What a lost write turned out to be.
    enum Landing: Sendable {
        case applied(OperationResult)
        case notApplied
        /// A definite failure (the write was not applied, for this reason) or an unknown outcome.
        case failed(ZooKeeperError)
    }

    /// Why the outcome is unknown, for the message.
    enum UnknownReason {
        case notBack, expired, noAnswer
        case unclear(String)
    }

    /// `op` (a write) sent and settled: applied, failed for a known reason, or an error with
    /// `unknownOutcome` set.
    func performWrite(_ op: Operation) async throws -> OperationResult {
        // A sequential node's number is its parent's child version (cversion) when it is
        // created: read before sending, it bounds the numbers a node of ours can have.
        var parentBefore: Stat? = nil
        if case .create(let path, _, let mode, _) = op, mode.isSequential, let parent = PathRules.parent(of: path) {
            parentBefore = try? await exists(parent)
        }
        for attempt in 1...Self.writeAttempts {
            do {
                return try await send(op, watch: nil, deadline: .now + requestTimeout)
            } catch let error as ZooKeeperError where attempt > 1 && error.code == .noNode && op.isDelete {
                // Gone after an earlier attempt of ours: what was asked is done.
                return .none
            } catch let error as ZooKeeperError where error.code == .operationTimeout {
                throw unknownOutcome(op.writeKind, path: op.path, .noAnswer)
            } catch let error as ZooKeeperError where error.code == .connectionLoss {
                switch await settle(op, parentBefore: parentBefore) {
                case .applied(let result): return result
                case .failed(let error): throw error
                case .notApplied: continue
                }
            }
        }
        throw ZooKeeperError(.connectionLoss, path: op.path,
                             message: "lost the connection to the servers (\(serverList)) before the answer came, \(Self.writeAttempts) times; the write was not applied")
    }

    /// For a write sent through `pipeline` whose result is a connection loss: learns whether
    /// the server applied it, as `perform` does for a single write, and sends it again when it
    /// did not. Returns what the server holds (as the answer would have), or throws the write's
    /// own failure, or an error with `unknownOutcome` set when it cannot be learned in time.
    public func settleLostWrite(_ op: Operation) async throws -> OperationResult {
        try await settleLostWrites([op])[0].get()
    }

    /// `settleLostWrite` for many writes of one pipeline (all lost with one connection), in
    /// order: the reconnect is waited for once, then each is read back.
    public func settleLostWrites(_ ops: [Operation]) async -> [Result<OperationResult, ZooKeeperError>] {
        guard !ops.isEmpty else { return [] }
        let reason = await reconnected(by: .now + requestTimeout)
        var results: [Result<OperationResult, ZooKeeperError>] = []
        for op in ops {
            if let reason {
                results.append(.failure(unknownOutcome(op.writeKind, path: op.path, reason)))
                continue
            }
            do {
                guard !op.isRead else { results.append(.success(try await perform(op))); continue }
                switch await settle(op, parentBefore: nil, waitForReconnect: false) {
                case .applied(let result): results.append(.success(result))
                case .failed(let error): results.append(.failure(error))
                case .notApplied: results.append(.success(try await performWrite(op)))
                }
            } catch let error as ZooKeeperError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(ZooKeeperError(.systemError, path: op.path, message: "\(error)")))
            }
        }
        return results
    }

    /// Waits for the session to be connected again, within the request timeout, and reads what
    /// tells whether `op` was applied.
    func settle(_ op: Operation, parentBefore: Stat?, waitForReconnect: Bool = true) async -> Landing {
        let deadline = ContinuousClock.now + requestTimeout
        if waitForReconnect, let reason = await reconnected(by: deadline) {
            return .failed(unknownOutcome(op.writeKind, path: op.path, reason))
        }
        do {
            return try await learn(op, parentBefore: parentBefore, deadline: deadline)
        } catch let error as ZooKeeperError {
            return .failed(unknownOutcome(op.writeKind, path: op.path, reason(for: error)))
        } catch {
            return .failed(unknownOutcome(op.writeKind, path: op.path, .unclear("\(error)")))
        }
    }

    /// Nil once connected; else why not, by `deadline`.
    func reconnected(by deadline: ContinuousClock.Instant) async -> UnknownReason? {
        // The client may not have noticed the loss yet: pause, then wait for a connection.
        try? await Task.sleep(for: .milliseconds(50))
        let state = await core.wait(for: max(.zero, deadline - .now)) { $0.isConnected || $0.isTerminal }
        if state.isConnected { return nil }
        return state == .expired ? .expired : .notBack
    }

    func reason(for readError: ZooKeeperError) -> UnknownReason {
        if readError.code == .sessionExpired { return .expired }
        if readError.code.isConnectionProblem { return .notBack }
        return .unclear("reading it back failed: \(readError)")
    }

    func unknownOutcome(_ kind: ZooKeeperError.Write, path: String?, _ reason: UnknownReason) -> ZooKeeperError {
        let ms = requestTimeout.milliseconds
        let code: ZooKeeperError.Code
        let what: String
        switch reason {
        case .notBack:
            code = .connectionLoss
            what = "the connection was lost after the request was sent and the servers (\(serverList)) did not come back within \(ms) ms"
        case .expired:
            code = .sessionExpired
            what = "the connection was lost after the request was sent and the session expired before its outcome could be read"
        case .noAnswer:
            code = .operationTimeout
            what = "no answer from the servers (\(serverList)) within \(ms) ms after the request was sent"
        case .unclear(let why):
            code = .connectionLoss
            what = "the connection was lost after the request was sent and what the server holds now does not tell whether it was applied (\(why))"
        }
        var error = ZooKeeperError(code, path: path, message: what + "; the write may or may not have been applied")
        error.unknownOutcome = kind
        return error
    }

    // MARK: Reading back

    /// The node's data and stat, or nil when it does not exist; reads wait for a reconnect until
    /// `deadline`.
    func readBack(_ path: String, by deadline: ContinuousClock.Instant) async throws -> (data: Data, stat: Stat)? {
        do {
            let r = try await perform(.get(path), watch: nil, deadline: deadline)
            return (r.data ?? Data(), r.stat ?? Stat())
        } catch ZooKeeperError.Code.noNode {
            return nil
        }
    }

    private func learn(_ op: Operation, parentBefore: Stat?, deadline: ContinuousClock.Instant) async throws -> Landing {
        switch op {
        case .set(let path, let data, let version):
            guard let node = try await readBack(path, by: deadline) else { return .notApplied }
            if node.data == data && (version < 0 || node.stat.version == version &+ 1) { return .applied(.stat(node.stat)) }
            // Unversioned: not what was written, so (again) it is not there: write it.
            if version < 0 || node.stat.version == version { return .notApplied }
            if node.stat.version == version &+ 1 {
                // Someone else's write took version v+1: ours would have failed.
                return .failed(ZooKeeperError(.badVersion, path: path))
            }
            return .failed(unknownOutcome(.set, path: path, .unclear("\(path) is at version \(node.stat.version) now, past \(version &+ 1)")))

        case .create(let path, let data, let mode, _) where mode.isSequential:
            return try await learnSequential(path, data: data, mode: mode, parentBefore: parentBefore, deadline: deadline)

        case .create(let path, let data, let mode, _):
            guard let node = try await readBack(path, by: deadline) else { return .notApplied }
            let owned = !mode.isEphemeral || node.stat.ephemeralOwner == sessionID
            if node.data == data && owned { return .applied(.created(path, node.stat)) }
            if !owned || node.stat.version == 0 {
                // Someone else's node (another owner, other data never changed): ours failed.
                return .failed(ZooKeeperError(.nodeExists, path: path))
            }
            return .failed(unknownOutcome(.create, path: path, .unclear("\(path) exists and has been changed since")))

        case .delete(let path, let version):
            do {
                guard let stat = try await perform(.exists(path), watch: nil, deadline: deadline).stat else { return .applied(.none) }
                if version >= 0 && stat.version != version { return .failed(ZooKeeperError(.badVersion, path: path)) }
                return .notApplied
            }

        case .setACL(let path, _, let version):
            // Setting the same ACL again changes nothing but its version.
            if version < 0 { return .notApplied }
            let stat: Stat
            do {
                stat = try await perform(.getACL(path), watch: nil, deadline: deadline).stat ?? Stat()
            } catch ZooKeeperError.Code.noNode {
                return .notApplied
            }
            if stat.aversion == version &+ 1 { return .applied(.none) }
            if stat.aversion == version { return .notApplied }
            return .failed(unknownOutcome(.setACL, path: path, .unclear("the ACL of \(path) is at version \(stat.aversion) now, past \(version &+ 1)")))

        case .exists, .get, .children, .getACL, .sync:
            return .notApplied
        }
    }

    /// A sequential create: ours is a child of the parent named `prefix` + 10 digits, numbered
    /// at least the parent's child version before the request, holding the data written (and,
    /// ephemeral, owned by this session). Exactly one such child: applied. None, and the
    /// parent's children did not change (or the node would be ephemeral and ours): not
    /// applied. Otherwise, unknown.
    private func learnSequential(_ path: String, data: Data, mode: CreateMode, parentBefore: Stat?,
                                 deadline: ContinuousClock.Instant) async throws -> Landing {
        guard let parent = PathRules.parent(of: path) else { return .notApplied }
        let prefix = String(path.dropFirst(parent == "/" ? 1 : parent.count + 1))
        let listing: OperationResult
        do {
            listing = try await perform(.children(parent), watch: nil, deadline: deadline)
        } catch ZooKeeperError.Code.noNode {
            return .notApplied
        }
        let floor = Int64(parentBefore?.cversion ?? 0)
        let candidates = (listing.children ?? []).filter { name in
            guard name.hasPrefix(prefix) else { return false }
            let digits = name.dropFirst(prefix.count)
            guard digits.count == 10, digits.allSatisfy(\.isASCII), let n = Int64(digits) else { return false }
            return n >= floor
        }
        var mine: [(String, Stat)] = []
        for name in candidates {
            let child = PathRules.join(parent, name)
            guard let node = try await readBack(child, by: deadline) else { continue }
            if node.data == data && (!mode.isEphemeral || node.stat.ephemeralOwner == sessionID) { mine.append((child, node.stat)) }
        }
        if mine.count == 1 { return .applied(.created(mine[0].0, mine[0].1)) }
        if mine.count > 1 {
            let names = mine.map { String($0.0.dropFirst(parent == "/" ? 1 : parent.count + 1)) }.joined(separator: ", ")
            return .failed(unknownOutcome(.createSequential, path: path,
                                          .unclear("\(mine.count) children of \(parent) hold the data written: \(names)")))
        }
        if mode.isEphemeral { return .notApplied }
        if let before = parentBefore, let now = listing.stat, now.cversion == before.cversion { return .notApplied }
        return .failed(unknownOutcome(.createSequential, path: path,
                                      .unclear("no child of \(parent) holds the data written, but its children changed meanwhile")))
    }
}

// MARK: - Multi

/// What a transaction leaves at one path, to compare with what the server holds after its
/// answer was lost.
struct MultiOutcome {
    struct Expected {
        var exists: Bool
        var data = Data()
        /// The node's version after the transaction, when it follows from the operations.
        var version: Int32?
        /// The version it had before, when an operation names it.
        var before: Int32?
        var createdHere = false
        var ephemeral = false
    }

    /// Paths in the order first touched, and what each should look like.
    var paths: [String] = []
    var expected: [String: Expected] = [:]

    init(_ ops: [MultiOp]) {
        for op in ops {
            // A check changes nothing; a sequential node's name is the server's: nothing to compare.
            if case .check = op { continue }
            if case .create(_, _, let mode, _) = op, mode.isSequential { continue }
            let path = op.path
            let prior = expected[path]
            if prior == nil { paths.append(path) }
            switch op {
            case .create(_, let data, let mode, _):
                expected[path] = Expected(exists: true, data: data, version: 0, before: prior?.before, createdHere: true,
                                          ephemeral: mode.isEphemeral)
            case .set(_, let data, let version):
                var e = prior ?? Expected(exists: true, before: version >= 0 ? version : nil)
                let base = prior?.version ?? (version >= 0 ? version : nil)
                e.version = base.map { $0 &+ 1 }
                e.data = data
                e.exists = true
                expected[path] = e
            case .delete(_, let version):
                expected[path] = Expected(exists: false, before: prior == nil && version >= 0 ? version : prior?.before)
            case .check:
                break
            }
        }
    }

    enum Evidence {
        /// What the transaction leaves is there; `zxid` is the transaction's when the node was
        /// created or changed by it (nil for a deleted node, which carries none).
        case applied(zxid: Int64?)
        case notApplied
        case unclear(String)
    }

    /// Compares one path with what the server holds (`node` nil: it does not exist).
    func evidence(_ path: String, _ node: (data: Data, stat: Stat)?, session: Int64) -> Evidence {
        guard let e = expected[path] else { return .unclear(path) }
        if !e.exists { return node == nil ? .applied(zxid: nil) : .notApplied }
        guard let node else { return .notApplied }
        let owned = !e.ephemeral || node.stat.ephemeralOwner == session
        if node.data == e.data && owned && (e.version == nil || node.stat.version == e.version) {
            return .applied(zxid: e.createdHere ? node.stat.czxid : node.stat.mzxid)
        }
        if let before = e.before, node.stat.version == before, !e.createdHere || node.data != e.data { return .notApplied }
        if e.createdHere && node.stat.version == 0 && e.before == nil { return .notApplied }
        return .unclear("\(path) has changed since")
    }

    enum Verdict {
        case applied
        case notApplied
        case unclear(String)
    }

    /// A transaction is all or nothing: it was applied when what it leaves is there (the nodes it
    /// created or changed carrying one zxid, its own), not applied when some part of the state
    /// it would change is still as before and none of what it creates or changes is there.
    static func verdict(_ evidence: [Evidence]) -> Verdict {
        var zxids = Set<Int64>()
        var weak = 0, not = 0
        var unclear: [String] = []
        for e in evidence {
            switch e {
            case .applied(let zxid?): zxids.insert(zxid)
            case .applied(nil): weak += 1
            case .notApplied: not += 1
            case .unclear(let why): unclear.append(why)
            }
        }
        if not > 0 {
            return zxids.isEmpty ? .notApplied : .unclear("part of what it writes is there and part is not")
        }
        if zxids.count > 1 { return .unclear("the nodes it writes were written by different transactions") }
        if zxids.count == 1 { return .applied }
        if weak > 0 && unclear.isEmpty { return .applied }
        if evidence.isEmpty { return .unclear("nothing it changes can be read back") }
        return .unclear(unclear.first ?? "nothing it changes can be read back")
    }
}

extension ZooKeeperClient {
    /// The outcome of a transaction already sent as `pending`, settled after a lost answer:
    /// applied (the results it would have answered), not applied (sent again, without a guard
    /// it was sent with), failed. With `resend` false (a batch after one that failed), nothing is
    /// sent again and the session is not waited for: not applied is a failure saying so, and a
    /// session not connected at once an unknown outcome.
    func settledMulti(_ ops: [MultiOp], _ first: PendingMulti, resend: Bool = true) async throws -> [MultiOpResult] {
        var pending = first
        for attempt in 1...Self.writeAttempts {
            do {
                return try await pending.outcome()
            } catch let error as ZooKeeperError where error.code == .operationTimeout {
                throw unknownOutcome(.multi, path: ops.first?.path, .noAnswer)
            } catch let error as ZooKeeperError where error.code == .connectionLoss {
                let (landing, results) = await settleMulti(ops, waitForReconnect: resend)
                switch landing {
                case .applied: return results
                case .failed(let error): throw error
                case .notApplied:
                    if !resend { throw Self.notApplied(ops) }
                    if attempt < Self.writeAttempts { pending = try startMulti(ops) }
                }
            }
        }
        throw ZooKeeperError(.connectionLoss, path: ops.first?.path,
                             message: "lost the connection to the servers (\(serverList)) before the answer came, \(Self.writeAttempts) times; the transaction was not applied")
    }

    /// Reconnects (within the request timeout, or only if already connected) and reads back
    /// every path the transaction touches, pipelined.
    private func settleMulti(_ ops: [MultiOp], waitForReconnect: Bool) async -> (Landing, [MultiOpResult]) {
        let path = ops.first?.path
        let deadline = ContinuousClock.now + requestTimeout
        if let reason = await reconnected(by: waitForReconnect ? deadline : .now) {
            return (.failed(unknownOutcome(.multi, path: path, reason)), [])
        }
        let outcome = MultiOutcome(ops)
        let reads = outcome.paths.map { p -> Operation in outcome.expected[p]?.exists == false ? .exists(p) : .get(p) }
        let results = await pipeline(reads)
        var evidence: [MultiOutcome.Evidence] = []
        var stats: [String: Stat] = [:]
        for (p, result) in zip(outcome.paths, results) {
            switch result {
            case .success(let r):
                if case .stat(nil) = r {
                    evidence.append(outcome.evidence(p, nil, session: sessionID))
                } else {
                    let stat = r.stat ?? Stat()
                    stats[p] = stat
                    evidence.append(outcome.evidence(p, (r.data ?? Data(), stat), session: sessionID))
                }
            case .failure(let e) where e.code == .noNode:
                evidence.append(outcome.evidence(p, nil, session: sessionID))
            case .failure(let e):
                return (.failed(unknownOutcome(.multi, path: path, reason(for: e))), [])
            }
        }
        switch MultiOutcome.verdict(evidence) {
        case .applied:
            // A sequential create's name is the server's: found by the transaction's zxid.
            let zxid = evidence.lazy.compactMap { e -> Int64? in if case .applied(let z?) = e { return z } else { return nil } }.first
            guard let names = await sequentialNames(ops, zxid: zxid) else {
                return (.failed(unknownOutcome(.multi, path: path, .unclear("the name of a sequential node it created cannot be told"))), [])
            }
            return (.applied(.none), ops.enumerated().map { i, op in
                switch op {
                case .create(let p, _, _, _): return .created(names[i] ?? p)
                case .set(let p, _, _): return .set(stats[p] ?? Stat())
                case .delete: return .deleted
                case .check: return .checked
                }
            })
        case .notApplied:
            return (.notApplied, [])
        case .unclear(let why):
            return (.failed(unknownOutcome(.multi, path: path, .unclear(why))), [])
        }
    }
}

extension ZooKeeperClient {
    /// The names the server gave the sequential creates of an applied transaction, by the
    /// operation's index: the children of each parent with the create's prefix and a sequence
    /// number, created by the transaction's `zxid`, in sequence order. Nil when a name cannot
    /// be told (no zxid known, or not as many such children as creates).
    private func sequentialNames(_ ops: [MultiOp], zxid: Int64?) async -> [Int: String]? {
        var groups: [(path: String, indices: [Int])] = []
        for (i, op) in ops.enumerated() {
            guard case .create(let p, _, let mode, _) = op, mode.isSequential else { continue }
            if let g = groups.firstIndex(where: { $0.path == p }) { groups[g].indices.append(i) } else { groups.append((p, [i])) }
        }
        if groups.isEmpty { return [:] }
        guard let zxid else { return nil }
        var names: [Int: String] = [:]
        for (path, indices) in groups {
            let parent = PathRules.parent(of: path) ?? "/"
            let prefix = String(path.dropFirst(parent == "/" ? 1 : parent.count + 1))
            guard let listed = try? await children(parent).children else { return nil }
            let candidates = listed.filter { name in
                name.hasPrefix(prefix) && name.count == prefix.count + 10 && name.dropFirst(prefix.count).allSatisfy(\.isNumber)
            }.sorted()
            let full = candidates.map { PathRules.join(parent, $0) }
            let stats = await pipeline(full.map { Operation.exists($0) })
            let made = zip(full, stats).compactMap { p, r -> String? in
                guard let stat = try? r.get().stat, stat.czxid == zxid else { return nil }
                return p
            }
            guard made.count == indices.count else { return nil }
            for (i, p) in zip(indices, made) { names[i] = p }
        }
        return names
    }
}

extension Operation {
    var isDelete: Bool {
        if case .delete = self { return true }
        return false
    }

    /// The kind of write, for an unknown outcome.
    var writeKind: ZooKeeperError.Write {
        switch self {
        case .create(_, _, let mode, _): return mode.isSequential ? .createSequential : .create
        case .delete: return .delete
        case .setACL: return .setACL
        default: return .set
        }
    }
}

extension CreateMode {
    /// Whether the server appends a sequence number to the name.
    public var isSequential: Bool {
        switch self {
        case .persistentSequential, .ephemeralSequential, .persistentSequentialWithTTL: return true
        default: return false
        }
    }
}
