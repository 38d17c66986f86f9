import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

/// `zkctl quota get|set|rm|list`: ZooKeeper's quotas, in the layout zkCli.sh's setquota writes.
extension CommandTable {
    // MARK: - quota

    static let quotaRoot = "/zookeeper/quota"

    enum QuotaOptions {
        static let count = Option<Int?>("count", value: "N", range: 0...Int(Int32.max), help: "limit on the number of nodes (PATH included)")
        static let bytes = Option<Int?>("bytes", value: "N", range: 0...Int.max, help: "limit on the data bytes of the subtree")
        static let hard = Option<Bool>(flag: "hard", help: "a hard limit (the server refuses writes over it, if it enforces quotas) instead of a soft one (a warning in the server's log)")
        static let rmCount = Option<Bool>(flag: "count", help: "remove only the count limit")
        static let rmBytes = Option<Bool>(flag: "bytes", help: "remove only the bytes limit")
        static let rmHard = Option<Bool>(flag: "hard", help: "with --count or --bytes: remove the hard limit instead of the soft one")
    }

    static let quotaJSON = #"{"path", "count": {"soft", "hard", "used"}, "bytes": {"soft", "hard", "used"}}: a limit not set is null; "used" is the server's own count (zookeeper_stats)"#

    static let quotaCommand = CommandSpec(
        "quota", summary: "show, set and remove ZooKeeper quotas",
        description: """
        Quotas limit the number of nodes and the data bytes of a subtree. They live where zkCli.sh's
        setquota and listquota keep them: /zookeeper/quota/PATH/zookeeper_limits holds the limits
        (count=N,bytes=N=;byteHardLimit=N;countHardLimit=N, -1 for no limit) and
        /zookeeper/quota/PATH/zookeeper_stats what the server counts. zkctl and zkCli.sh read each
        other's quotas.
        A soft limit only makes the server log a warning. A hard limit makes it refuse a create or
        set that would go over it, but only when the server runs with
        -Dzookeeper.enforceQuota=true (ZooKeeper 3.7 and later; off by default): the write then
        fails with 'over the hard quota' (exit 75). As in zkCli.sh, a subtree has one quota: a path
        under or above a path with a quota cannot get one of its own.
        """,
        examples: ["zkctl quota set /app --count 10000 --bytes 50000000", "zkctl quota set /app --count 12000 --hard",
                   "zkctl quota get /app", "zkctl quota list", "zkctl quota rm /app --bytes", "zkctl quota rm /app"],
        subcommands: [quotaGetCommand, quotaSetCommand, quotaRmCommand, quotaListCommand])

    static let quotaGetCommand = CommandSpec(
        "get", summary: "show PATH's quota and usage",
        description: "Prints PATH's soft and hard limits and what the server counts. Exit 1 when PATH has no quota.",
        examples: ["zkctl quota get /app", "zkctl -o json quota get /app | jq .count.used"],
        arguments: [pathArgument], jsonOutput: quotaJSON, handler: runQuotaGet)

    static let quotaSetCommand = CommandSpec(
        "set", summary: "set PATH's quota limits",
        description: """
        Sets the count and/or bytes limit of PATH (soft, or hard with --hard), keeping the limits
        not given, as zkCli.sh's setquota -n/-b/-N/-B does. A new quota is created in one
        transaction (the server then counts the subtree); an existing one is changed with
        compare-and-set. PATH must exist. Exit 75 when a path above or below PATH has a quota
        (or the limits changed meanwhile), 1 when PATH does not exist.
        """,
        examples: ["zkctl quota set /app --count 10000", "zkctl quota set /app --bytes 1000000 --hard"],
        arguments: [pathArgument],
        options: [QuotaOptions.count.spec, QuotaOptions.bytes.spec, QuotaOptions.hard.spec],
        jsonOutput: quotaJSON + " (after the change)", handler: runQuotaSet)

    static let quotaRmCommand = CommandSpec(
        "rm", aliases: ["delete"], summary: "remove PATH's quota (or one limit)",
        description: """
        Without options, removes PATH's quota entirely (its limits, its stats and the empty nodes
        above them under /zookeeper/quota), as zkCli.sh's delquota does. --count or --bytes
        removes only that soft limit (with --hard, the hard one). Exit 1 when PATH has no quota.
        """,
        examples: ["zkctl quota rm /app", "zkctl quota rm /app --count --hard"],
        arguments: [pathArgument],
        options: [QuotaOptions.rmCount.spec, QuotaOptions.rmBytes.spec, QuotaOptions.rmHard.spec],
        jsonOutput: #"{"path", "removed": true} when the whole quota went, else the quota as for get"#, handler: runQuotaRm)

    static let quotaListCommand = CommandSpec(
        "list", aliases: ["ls"], summary: "list every quota",
        description: """
        Walks /zookeeper/quota and prints every path with a quota, its limits and usage, sorted by
        path. A limits node zkctl cannot read is named on stderr and left out; the exit code is
        then 65.
        """,
        examples: ["zkctl quota list", "zkctl -o json quota list | jq -r '.[] | select(.count.used > .count.soft) | .path'"],
        jsonOutput: "an array of quotas, each as for 'zkctl quota get'", handler: runQuotaList)

    /// One quota: the limits (-1: none) and what the server counts.
    struct Quota: Equatable {
        var path: String
        var count: Int64 = -1
        var bytes: Int64 = -1
        var countHard: Int64 = -1
        var bytesHard: Int64 = -1
        var usedCount: Int64?
        var usedBytes: Int64?

        /// zkCli.sh 3.8's text for the limits node.
        var limitsText: String { "count=\(count),bytes=\(bytes)=;byteHardLimit=\(bytesHard);countHardLimit=\(countHard)" }

        var json: JSONValue {
            func limit(_ v: Int64) -> JSONValue { v < 0 ? .null : .number(String(v)) }
            func used(_ v: Int64?) -> JSONValue { v.map { .number(String($0)) } ?? .null }
            return .object(JSONObject([
                ("path", .string(path)),
                ("count", .object(JSONObject([("soft", limit(count)), ("hard", limit(countHard)), ("used", used(usedCount))]))),
                ("bytes", .object(JSONObject([("soft", limit(bytes)), ("hard", limit(bytesHard)), ("used", used(usedBytes))]))),
            ]))
        }

        var row: [String] {
            func t(_ v: Int64) -> String { v < 0 ? "-" : String(v) }
            return [path, t(count), t(countHard), usedCount.map(String.init) ?? "?", t(bytes), t(bytesHard), usedBytes.map(String.init) ?? "?"]
        }

        static let header = ["PATH", "COUNT", "HARD", "USED", "BYTES", "HARD", "USED"]
    }

    /// The `key=value` pairs of a limits or stats node: the old `count=N,bytes=N` and 3.7's
    /// `count=N,bytes=N=;byteHardLimit=N;countHardLimit=N`. Nil when it is neither.
    static func parseQuotaStats(_ text: String) -> [String: Int64]? {
        var values: [String: Int64] = [:]
        let flat = text.trimmingBlanksAndNewlines().replacingEvery("=;", with: ";")
        for pair in flat.split(whereSeparator: { $0 == "," || $0 == ";" }) {
            let kv = pair.split(separator: "=", omittingEmptySubsequences: false)
            guard kv.count == 2, let v = Int64(kv[1]) else { return nil }
            values[String(kv[0])] = v
        }
        guard values["count"] != nil, values["bytes"] != nil else { return nil }
        return values
    }

    static func quotaNode(_ path: String) -> String { path == "/" ? quotaRoot : quotaRoot + path }

    /// PATH's quota, or nil when it has none; a limits node zkCli.sh would not read is exit 65.
    static func readQuota(_ zk: ZooKeeperClient, _ path: String) async throws -> (Quota, version: Int32)? {
        let node = quotaNode(path)
        let results = await zk.pipeline([.get(node + "/zookeeper_limits"), .get(node + "/zookeeper_stats")])
        let limits: OperationResult
        switch results[0] {
        case .success(let r): limits = r
        case .failure(let e) where e.code == .noNode: return nil
        case .failure(let e): throw e
        }
        let text = String(decoding: limits.data ?? Data(), as: UTF8.self)
        guard let l = parseQuotaStats(text) else {
            throw CommandError.badData("\(node)/zookeeper_limits: not a quota zkCli.sh writes: '\(Output.oneLine(text))'")
        }
        var q = Quota(path: path, count: l["count"]!, bytes: l["bytes"]!, countHard: l["countHardLimit"] ?? -1, bytesHard: l["byteHardLimit"] ?? -1)
        if case .success(let s) = results[1], let used = parseQuotaStats(String(decoding: s.data ?? Data(), as: UTF8.self)) {
            q.usedCount = used["count"]
            q.usedBytes = used["bytes"]
        }
        return (q, limits.stat?.version ?? -1)
    }

    static func quotaPathProblem(_ path: String) -> String? {
        if path == "/" { return "'/' cannot have a quota" }
        if path == "/zookeeper" || path.hasPrefix("/zookeeper/") { return "'\(path)' is ZooKeeper's own tree" }
        return nil
    }

    static func printQuota(_ inv: Invocation, _ q: Quota) {
        inv.output.print(Printed(json: q.json) { out in out.table(Quota.header, [q.row]) })
    }

    @Sendable static func runQuotaGet(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let zk = try await inv.connect()
        guard let (q, _) = try await readQuota(zk, path) else { throw CommandError.notFound("\(path): no quota") }
        printQuota(inv, q)
        return ExitCode.success
    }

    /// The paths under /zookeeper/quota that hold limits (as znode paths of the tree).
    static func quotaPaths(_ zk: ZooKeeperClient, under root: String = "/", maxInFlight: Int) async throws -> [String] {
        var found: [String] = []
        let start = quotaNode(root)
        do {
            try await zk.walk(start, maxInFlight: maxInFlight) { level in
                for node in level where node.children.contains("zookeeper_limits") {
                    let p = String(node.path.dropFirst(quotaRoot.count))
                    found.append(p.isEmpty ? "/" : p)
                }
            }
        } catch let e as ZooKeeperError where e.code == .noNode && e.path == start {
            return []
        }
        return found.sorted()
    }

    @Sendable static func runQuotaSet(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        if let problem = quotaPathProblem(path) { throw UsageError(problem, command: ["quota", "set"]) }
        let count = inv[QuotaOptions.count].map(Int64.init), bytes = inv[QuotaOptions.bytes].map(Int64.init)
        if count == nil && bytes == nil { throw UsageError("give --count N, --bytes N or both", command: ["quota", "set"]) }
        let hard = inv[QuotaOptions.hard]
        let zk = try await inv.connect()
        guard try await zk.exists(path) != nil else { throw ZooKeeperError(.noNode, path: path) }
        func apply(_ q: inout Quota) {
            if let count { if hard { q.countHard = count } else { q.count = count } }
            if let bytes { if hard { q.bytesHard = bytes } else { q.bytes = bytes } }
        }
        let node = quotaNode(path)
        if let (existing, version) = try await readQuota(zk, path) {
            var q = existing
            apply(&q)
            do {
                _ = try await zk.set(node + "/zookeeper_limits", data: Data(q.limitsText.utf8), version: version)
            } catch let e as ZooKeeperError where e.code == .badVersion {
                throw CommandError.conflict("\(path): the quota changed meanwhile; nothing was written (run the command again)")
            }
        } else {
            // One quota per subtree, as zkCli.sh: none above PATH, none below it.
            var above = path
            while let parent = PathRules.parent(of: above), parent != "/" {
                if try await zk.exists(quotaNode(parent) + "/zookeeper_limits") != nil {
                    throw CommandError.conflict("\(path): \(parent) above it has a quota (a subtree has one quota)")
                }
                above = parent
            }
            if let below = try await quotaPaths(zk, under: path, maxInFlight: inv.maxInFlight).first {
                throw CommandError.conflict("\(path): \(below) below it has a quota (a subtree has one quota)")
            }
            var q = Quota(path: path)
            apply(&q)
            // The missing nodes down to PATH's quota node, then the stats and the limits, in one
            // transaction; the server counts the subtree when the limits node appears.
            var ops: [MultiOp] = []
            var chain: [String] = []
            var p = node
            while p != quotaRoot, try await zk.exists(p) == nil {
                chain.insert(p, at: 0)
                p = PathRules.parent(of: p) ?? quotaRoot
            }
            ops += chain.map { MultiOp.create($0) }
            ops.append(.create(node + "/zookeeper_stats", data: Data("count=0,bytes=0".utf8)))
            ops.append(.create(node + "/zookeeper_limits", data: Data(q.limitsText.utf8)))
            do {
                _ = try await reportingUnknownOutcome({ _ in ("quota set \(path)", "zkctl quota get \(path)") }) { try await zk.multi(ops) }
            } catch let e as ZooKeeperError where e.code == .nodeExists {
                throw CommandError.conflict("\(path): a quota was set meanwhile; nothing was written (run the command again)")
            }
        }
        guard let (q, _) = try await readQuota(zk, path) else { throw CommandError.conflict("\(path): the quota was removed meanwhile") }
        inv.output.print(Printed.silentInText(json: q.json))
        return ExitCode.success
    }

    @Sendable static func runQuotaRm(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let onlyCount = inv[QuotaOptions.rmCount], onlyBytes = inv[QuotaOptions.rmBytes], hard = inv[QuotaOptions.rmHard]
        if hard && !onlyCount && !onlyBytes { throw UsageError("--hard applies with --count or --bytes", command: ["quota", "rm"]) }
        let zk = try await inv.connect()
        guard let (existing, version) = try await readQuota(zk, path) else { throw CommandError.notFound("\(path): no quota") }
        let node = quotaNode(path)
        if onlyCount || onlyBytes {
            var q = existing
            if onlyCount { if hard { q.countHard = -1 } else { q.count = -1 } }
            if onlyBytes { if hard { q.bytesHard = -1 } else { q.bytes = -1 } }
            do {
                _ = try await zk.set(node + "/zookeeper_limits", data: Data(q.limitsText.utf8), version: version)
            } catch let e as ZooKeeperError where e.code == .badVersion {
                throw CommandError.conflict("\(path): the quota changed meanwhile; nothing was written (run the command again)")
            }
            guard let (after, _) = try await readQuota(zk, path) else { throw CommandError.conflict("\(path): the quota was removed meanwhile") }
            inv.output.print(Printed.silentInText(json: after.json))
            return ExitCode.success
        }
        // The limits (as read: a change meanwhile fails the transaction), the stats, and the
        // quota nodes left empty up to /zookeeper/quota.
        var ops: [MultiOp] = [.delete(node + "/zookeeper_limits", version: version), .delete(node + "/zookeeper_stats")]
        var p = node
        while p != quotaRoot, let stat = try await zk.exists(p) {
            let emptied = p == node ? stat.numChildren <= 2 : stat.numChildren <= 1
            guard emptied else { break }
            ops.append(.delete(p))
            p = PathRules.parent(of: p) ?? quotaRoot
        }
        do {
            _ = try await reportingUnknownOutcome({ _ in ("quota rm \(path)", "zkctl quota get \(path)") }) { try await zk.multi(ops) }
        } catch let e as ZooKeeperError where [ZooKeeperError.Code.badVersion, .notEmpty, .noNode].contains(e.code) {
            throw CommandError.conflict("\(path): the quota changed meanwhile; nothing was removed (run the command again)")
        }
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("path", .string(path)), ("removed", .bool(true))]))))
        return ExitCode.success
    }

    @Sendable static func runQuotaList(_ inv: Invocation) async throws -> Int32 {
        let zk = try await inv.connect()
        var quotas: [Quota] = []
        var unreadable = 0
        for path in try await quotaPaths(zk, maxInFlight: inv.maxInFlight) {
            do {
                if let (q, _) = try await readQuota(zk, path) { quotas.append(q) }
            } catch let e as CommandError where e.exitCode == ExitCode.badData {
                // One limits node zkctl cannot read does not hide the others.
                inv.output.error(e.message)
                unreadable += 1
            }
        }
        inv.output.print(Printed(json: .array(quotas.map(\.json))) { out in
            if !quotas.isEmpty { out.table(Quota.header, quotas.map(\.row)) }
        })
        return unreadable > 0 ? ExitCode.badData : ExitCode.success
    }
}
