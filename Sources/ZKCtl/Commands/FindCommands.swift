import FoundationEssentials
import Glibc
import ZooKeeper
import ZooKeeperRecipes

/// `zkctl find` and `zkctl du`: pipelined walks of a subtree that select or sum nodes.
extension CommandTable {
    // MARK: - find

    enum FindOptions {
        static let name = Option<String?>("name", value: "GLOB", help: "the node's name matches this shell pattern (*, ?, [...])")
        static let regex = Option<String?>("regex", value: "RE", help: "the node's whole path contains a match of this regular expression")
        static let data = Option<String?>("data", value: "RE", help: "the node's data (UTF-8 text) contains a match of this regular expression")
        static let ephemeral = Option<Bool>(flag: "ephemeral", help: "only ephemeral nodes")
        static let persistent = Option<Bool>(flag: "persistent", help: "only nodes that are not ephemeral")
        static let owner = Option<String?>("owner", value: "SESSION", help: "only ephemeral nodes of this session id (hex 0x... as 'zkctl stat' prints it, or decimal)")
        static let minBytes = Option<Int?>("min-bytes", value: "N", range: 0...Int(Int32.max), help: "only nodes with at least N bytes of data")
        static let minChildren = Option<Int?>("min-children", value: "N", range: 0...Int(Int32.max), help: "only nodes with at least N children")
        static let olderThan = Option<Duration?>(duration: "older-than", help: "only nodes last modified longer ago than this")
        static let newerThan = Option<Duration?>(duration: "newer-than", help: "only nodes modified within this long")
        static let depth = Option<Int?>("depth", short: "d", value: "N", range: 0...10_000, help: "look at most N levels below PATH (0 = PATH only)")
        static let null = Option<Bool>(flag: "null", short: "0", help: "end each path with a NUL byte instead of a newline (for xargs -0)")
    }

    static let findCommand = CommandSpec(
        "find", summary: "print the paths of the nodes that match filters",
        description: """
        Walks the subtree at PATH breadth-first with pipelined requests and prints the path of every
        node (PATH included) that passes all the filters given, one per line, in walk order (a
        level's nodes before the next level's, each level sorted by parent and name). Without
        filters every node is printed. With -0 each path ends with a NUL byte, for 'xargs -0'.
        Only what the filters need is read: each node's stat comes with its list of children, and
        data is read only with --data (whose pattern matches data that is UTF-8 text; other data
        never matches). --name matches the node's last name with a shell pattern, --regex
        searches the whole path (anchor it with ^ and $). Times are the node's mtime.
        Exit 1 when no node matched (or PATH does not exist), 64 for an invalid pattern.

        \(unreadableDescription)
        """,
        examples: [
            "zkctl find /services --ephemeral", "zkctl find / --name 'lock-*' --older-than 7d",
            "zkctl find /app --data 'password' --depth 3", "zkctl find /queue --min-children 1000",
            "zkctl find /tmp --older-than 30d -0 | xargs -0 -n 1 zkctl delete",
            "zkctl -o json find /app --min-bytes 100000 | jq -r '.[] | [.stat.dataLength, .path] | @tsv'",
        ],
        arguments: [ArgumentSpec("PATH", help: "the subtree's root", type: .znodePath, completion: .znodePath)],
        options: [
            FindOptions.name.spec, FindOptions.regex.spec, FindOptions.data.spec, FindOptions.ephemeral.spec, FindOptions.persistent.spec,
            FindOptions.owner.spec, FindOptions.minBytes.spec, FindOptions.minChildren.spec, FindOptions.olderThan.spec,
            FindOptions.newerThan.spec, FindOptions.depth.spec, FindOptions.null.spec, skipUnreadableOption.spec,
        ],
        jsonOutput: #"an array of the matching nodes, in walk order: {"path", "stat"} (the stat object, man zkctl, OUTPUT); -o ndjson prints one such object per line as the walk finds them; no match prints [] (exit 1)"#,
        handler: runFind)

    /// What `find` selects by: every given filter must pass.
    struct FindFilter {
        var name: String?
        var regex: SearchPattern?
        var data: SearchPattern?
        var ephemeral: Bool?
        var owner: Int64?
        var minBytes: Int?
        var minChildren: Int?
        /// mtime must be before this (ms since the epoch).
        var modifiedBefore: Int64?
        /// mtime must be at or after this (ms since the epoch).
        var modifiedSince: Int64?

        var needsData: Bool { data != nil }

        func matches(_ node: WalkedNode) -> Bool {
            let s = node.stat
            if let ephemeral, s.isEphemeral != ephemeral { return false }
            if let owner, s.ephemeralOwner != owner { return false }
            if let minBytes, Int(s.dataLength) < minBytes { return false }
            if let minChildren, Int(s.numChildren) < minChildren { return false }
            if let modifiedBefore, s.mtime >= modifiedBefore { return false }
            if let modifiedSince, s.mtime < modifiedSince { return false }
            if let name {
                let last = node.path == "/" ? "/" : String(node.path.split(separator: "/").last ?? "")
                if fnmatch(name, last, 0) != 0 { return false }
            }
            if let regex, !Self.search(regex, node.path) { return false }
            if let data {
                guard let bytes = node.data, let text = String(data: bytes, encoding: .utf8), Self.search(data, text) else { return false }
            }
            return true
        }

        static func search(_ re: SearchPattern, _ text: String) -> Bool {
            re.matches(text)
        }
    }

    /// A regular expression from an option; an invalid one is a usage error naming the option.
    static func regularExpression(_ pattern: String?, option: String, command: [String]) throws -> SearchPattern? {
        guard let pattern else { return nil }
        do {
            return try SearchPattern(pattern)
        } catch {
            throw UsageError("--\(option) '\(Output.oneLine(pattern))' is not a valid regular expression", command: command)
        }
    }

    /// A session id as `stat` prints it (0x...) or in decimal.
    static func sessionID(_ text: String) -> Int64? {
        let t = text.lowercased()
        if t.hasPrefix("0x") { return UInt64(t.dropFirst(2), radix: 16).map { Int64(bitPattern: $0) } }
        return Int64(t)
    }

    static func findFilter(_ inv: Invocation) throws -> FindFilter {
        let command = ["find"]
        var f = FindFilter()
        if inv[FindOptions.name] != nil && inv[FindOptions.regex] != nil {
            throw UsageError("give --name or --regex, not both", command: command)
        }
        if inv[FindOptions.ephemeral] && inv[FindOptions.persistent] {
            throw UsageError("give --ephemeral or --persistent, not both", command: command)
        }
        if inv[FindOptions.olderThan] != nil && inv[FindOptions.newerThan] != nil {
            throw UsageError("give --older-than or --newer-than, not both", command: command)
        }
        f.name = inv[FindOptions.name]
        f.regex = try regularExpression(inv[FindOptions.regex], option: "regex", command: command)
        f.data = try regularExpression(inv[FindOptions.data], option: "data", command: command)
        if inv[FindOptions.ephemeral] { f.ephemeral = true }
        if inv[FindOptions.persistent] { f.ephemeral = false }
        if let owner = inv[FindOptions.owner] {
            guard let id = sessionID(owner), id != 0 else {
                throw UsageError("--owner '\(Output.oneLine(owner))' is not a session id (0x... or a decimal number)", command: command)
            }
            f.owner = id
        }
        f.minBytes = inv[FindOptions.minBytes]
        f.minChildren = inv[FindOptions.minChildren]
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        if let d = inv[FindOptions.olderThan] { f.modifiedBefore = now - d.milliseconds }
        if let d = inv[FindOptions.newerThan] { f.modifiedSince = now - d.milliseconds }
        return f
    }

    @Sendable static func runFind(_ inv: Invocation) async throws -> Int32 {
        let root = inv.argument(0)!
        let filter = try findFilter(inv)
        let separator = inv[FindOptions.null] ? "\0" : "\n"
        let zk = try await inv.connect()
        let out = inv.output
        let skipped = UnreadableNodes(inv)
        let counter = ProgressCounter("nodes read")
        inv.showProgress("find", counter)
        var walked = 0
        let matched = try await out.stream({ emit in
            try await zk.walk(root, maxDepth: inv[FindOptions.depth], data: filter.needsData, maxInFlight: inv.maxInFlight,
                              unreadable: skipped.record) { level in
                walked += level.count
                counter.add(level.count)
                try out.check()
                for node in level where filter.matches(node) { try emit(node) }
            }
            inv.endProgress()
        }, ndjson: { node in
            statJSON(path: node.path, node.stat)
        }, collected: { nodes -> Printed in
            Printed(json: .array(nodes.map { statJSON(path: $0.path, $0.stat) })) { out in
                for node in nodes { out.write(node.path + separator) }
            }
        })
        if walked == 0 { throw ZooKeeperError(.noNode, path: root) }
        return skipped.exitCode(matched == 0 ? ExitCode.notFound : ExitCode.success)
    }

    // MARK: - du

    enum DuOptions {
        static let depth = Option<Int?>("depth", short: "d", value: "N", range: 0...10_000, help: "report subtrees down to N levels below PATH (default 1: PATH and its children)")
        static let top = Option<Int?>("top", value: "N", range: 1...1_000_000, help: "show only the N biggest subtrees")
    }

    static let duCommand = CommandSpec(
        "du", summary: "sum nodes and data bytes per subtree",
        description: """
        Walks the whole subtree at PATH (pipelined; only stats are read, never data) and reports,
        for PATH and each node down to --depth levels below it (default 1), the number of nodes
        in its subtree (itself included), the data bytes they hold, and the largest single node,
        biggest first (by bytes, then nodes, then path). --top N keeps the N biggest rows. A
        node at the --depth limit counts everything below it. Use it to find what makes a
        snapshot large; 'zkctl find PATH --min-bytes N' then names the big nodes.
        Exit 1 when PATH does not exist.

        \(unreadableDescription)
        """,
        examples: ["zkctl du /", "zkctl du /app --depth 2 --top 10", "zkctl -o json du / | jq -r '.[0].path'"],
        arguments: [ArgumentSpec("PATH", help: "the subtree's root (default /)", type: .znodePath, optional: true, completion: .znodePath)],
        options: [DuOptions.depth.spec, DuOptions.top.spec, skipUnreadableOption.spec],
        jsonOutput: #"an array of {"path", "depth", "nodes", "bytes", "largest": {"path", "bytes"}}, biggest "bytes" first ("depth" counts levels below PATH; "nodes" and "bytes" cover the whole subtree)"#,
        handler: runDu)

    /// One subtree's sums for `du`.
    struct SubtreeUsage: Equatable {
        var path: String
        var depth: Int
        var nodes = 0
        var bytes = 0
        var largestPath: String
        var largestBytes = -1

        mutating func add(_ path: String, bytes b: Int) {
            nodes += 1
            bytes += b
            if b > largestBytes { largestBytes = b; largestPath = path }
        }

        var json: JSONValue {
            .object(JSONObject([("path", .string(path)), ("depth", .int(depth)), ("nodes", .int(nodes)), ("bytes", .int(bytes)),
                                ("largest", .object(JSONObject([("path", .string(largestPath)), ("bytes", .int(largestBytes))])))]))
        }
    }

    /// Sums walked nodes into the subtrees `du` reports: every node down to `maxDepth` below
    /// the root has a row, and a node counts in each of its reported ancestors (and its own).
    struct DiskUsage {
        let root: String
        let maxDepth: Int
        private(set) var rows: [String: SubtreeUsage] = [:]

        init(root: String, maxDepth: Int) {
            self.root = root
            self.maxDepth = maxDepth
        }

        mutating func add(_ node: WalkedNode) {
            if node.depth <= maxDepth { rows[node.path] = SubtreeUsage(path: node.path, depth: node.depth, largestPath: node.path) }
            // The node's ancestors at depths 0...min(depth, maxDepth): its path cut to each.
            let below = node.path.dropFirst(root == "/" ? 1 : root.count + 1)
            let names = node.depth == 0 ? [] : below.split(separator: "/", omittingEmptySubsequences: false)
            var path = root
            rows[path]?.add(node.path, bytes: Int(node.stat.dataLength))
            for name in names.prefix(maxDepth) {
                path = path == "/" ? "/" + name : path + "/" + name
                rows[path]?.add(node.path, bytes: Int(node.stat.dataLength))
            }
        }

        /// Biggest first: bytes, then nodes, then path.
        func sorted(top: Int?) -> [SubtreeUsage] {
            let all = rows.values.sorted { a, b in
                if a.bytes != b.bytes { return a.bytes > b.bytes }
                if a.nodes != b.nodes { return a.nodes > b.nodes }
                return a.path < b.path
            }
            return top.map { Array(all.prefix($0)) } ?? all
        }
    }

    @Sendable static func runDu(_ inv: Invocation) async throws -> Int32 {
        let root = inv.argument(0) ?? "/"
        var usage = DiskUsage(root: root, maxDepth: inv[DuOptions.depth] ?? 1)
        let zk = try await inv.connect()
        let out = inv.output
        let skipped = UnreadableNodes(inv)
        let counter = ProgressCounter("nodes read")
        inv.showProgress("du", counter)
        try await zk.walk(root, maxInFlight: inv.maxInFlight, unreadable: skipped.record) { level in
            try out.check()
            for node in level { usage.add(node) }
            counter.add(level.count)
        }
        inv.endProgress()
        if usage.rows.isEmpty { throw ZooKeeperError(.noNode, path: root) }
        let rows = usage.sorted(top: inv[DuOptions.top])
        out.print(Printed(json: .array(rows.map(\.json))) { out in
            out.table(["BYTES", "NODES", "LARGEST", "PATH"], rows.map { r in
                [String(r.bytes), String(r.nodes), "\(r.largestBytes) \(r.largestPath)", r.path]
            })
        })
        return skipped.exitCode(ExitCode.success)
    }
}

/// A `--regex`/`--data` pattern: found anywhere in the text (not anchored), matched scalar by
/// scalar as ICU's NSRegularExpression matched before.
struct SearchPattern: @unchecked Sendable {
    // @unchecked: a Regex is a value that is only read once made.
    let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
    }

    func matches(_ text: String) -> Bool {
        if (try? regex.firstMatch(in: text)) != nil { return true }
        // ICU's `$` also matches before a line end that ends the text; Swift's only at the end.
        guard let last = text.unicodeScalars.last, Self.lineEnds.contains(last) else { return false }
        var body = text.unicodeScalars.dropLast()
        if last == "\n", body.last == "\r" { body = body.dropLast() }
        return (try? regex.firstMatch(in: String(body))) != nil
    }

    private static let lineEnds: Set<Unicode.Scalar> = ["\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{2028}", "\u{2029}"]
}
