import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// `delete --recursive`: walk the subtree, then delete it level by level from the deepest, each
/// level in `multi` batches. A batch that fails because a node changed under it (a child added,
/// a node already gone) is retried node by node, pipelined; a node that gained children is
/// walked and deleted again, a bounded number of times. Nodes the session may not read go to
/// `unreadable` and are kept, with every node above them (they will not be empty). `progress`
/// counts what the server acknowledged and is checked before each transaction, so that an
/// interrupt stops the deleting between two of them.
struct RecursiveDelete {
    let zk: ZooKeeperClient
    let maxInFlight: Int
    var unreadable: UnreadableNodes? = nil
    var progress: BulkProgress? = nil
    /// The progress line's count: nodes read, then nodes deleted.
    var counter: ProgressCounter? = nil
    static let maxAttempts = 3

    /// Deletes the subtree at `root` and returns how many nodes were deleted.
    func run(root: String, rootVersion: Int32, force: Bool) async throws -> Int {
        try await deleteSubtree(root, rootVersion: rootVersion, force: force, attempt: 0)
    }

    private func deleteSubtree(_ root: String, rootVersion: Int32, force: Bool, attempt: Int) async throws -> Int {
        var levels: [[String]] = []
        var rootStat: Stat? = nil
        try await zk.walk(root, maxInFlight: maxInFlight, unreadable: unreadable?.record) { level in
            try progress?.stopIfAsked()
            if rootStat == nil, let first = level.first, first.depth == 0 { rootStat = first.stat }
            levels.append(level.map(\.path))
            counter?.add(level.count)
        }
        guard let rootStat else {
            if attempt > 0 { return 0 }
            throw ZooKeeperError(.noNode, path: root)
        }
        // The nodes above an unreadable one keep it as a child: they cannot be deleted.
        var kept = Set<String>()
        for path in unreadable?.paths ?? [] where path.hasPrefix(root == "/" ? "/" : root + "/") {
            var p = PathRules.parent(of: path)
            while let q = p, !kept.contains(q) {
                kept.insert(q)
                if q == root { break }
                p = PathRules.parent(of: q)
            }
        }
        if !kept.isEmpty { levels = levels.map { $0.filter { !kept.contains($0) } } }
        let total = levels.reduce(0) { $0 + $1.count }
        if attempt == 0 {
            // Nothing is deleted when the version is already wrong.
            if rootVersion >= 0 && rootStat.version != rootVersion {
                throw ZooKeeperError(.badVersion, path: root)
            }
            if total > CommandTable.recursiveDeleteThreshold && !force {
                throw UsageError("\(root) holds \(total) znodes (more than \(CommandTable.recursiveDeleteThreshold)); add --force to delete them all",
                                 command: ["delete"])
            }
            try progress?.startWriting(total: total)
            counter?.start("nodes deleted", total: total)
        }
        var deleted = 0
        for level in levels.reversed() {
            let ops = level.map { MultiOp.delete($0, version: $0 == root ? rootVersion : -1) }
            for batch in MultiBatcher.batches(ops, maxCount: CommandTable.maxDeleteBatch) {
                try progress?.stopIfAsked()
                do {
                    _ = try await zk.multi(batch)
                    deleted += batch.count
                    progress?.add(batch.count)
                    counter?.add(batch.count)
                } catch let error as ZooKeeperError where error.code == .noNode || error.code == .notEmpty {
                    deleted += try await deleteOneByOne(batch, root: root, rootVersion: rootVersion, attempt: attempt)
                }
            }
        }
        return deleted
    }

    private func deleteOneByOne(_ batch: [MultiOp], root: String, rootVersion: Int32, attempt: Int) async throws -> Int {
        let ops = batch.map { op -> ZooKeeper.Operation in
            if case .delete(let p, let v) = op { return .delete(p, version: v) }
            return .delete(op.path)
        }
        // Read lazily: once an interrupt asks to stop, no further request is sent; each delete is
        // counted as its answer arrives.
        let progress = self.progress
        let counter = self.counter
        let results = Mutex<[Result<OperationResult, ZooKeeperError>]>([])
        await zk.pipeline(ops.lazy.prefix { _ in !(progress?.stopRequested ?? false) }, maxInFlight: maxInFlight) { _, _, result in
            if case .success = result { progress?.add(1); counter?.add(1) }
            results.withLock { $0.append(result) }
        }
        var deleted = 0
        var grown: [String] = []
        var answered = results.withLock { $0 }
        // Answers lost with the connection: a node gone now is deleted.
        let lost = answered.indices.filter { if case .failure(let e) = answered[$0] { e.code == .connectionLoss } else { false } }
        for (i, settled) in zip(lost, await zk.settleLostWrites(lost.map { ops[$0] })) {
            answered[i] = settled
            if case .success = settled { progress?.add(1) }
        }
        for (op, result) in zip(ops, answered) {
            switch result {
            case .success: deleted += 1
            case .failure(let e) where e.code == .noNode: continue
            case .failure(let e) where e.code == .notEmpty: grown.append(op.path)
            case .failure(let e): throw e
            }
        }
        try progress?.stopIfAsked()
        for path in grown {
            guard attempt + 1 < Self.maxAttempts else {
                throw CommandError.conflict("\(path): children keep being added while deleting; try again")
            }
            deleted += try await deleteSubtree(path, rootVersion: path == root ? rootVersion : -1, force: true, attempt: attempt + 1)
        }
        return deleted
    }
}
