import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

extension CommandTable {
    enum TreeOptions {
        static let path = Option<String?>("path", short: "p", value: "PATH", type: .znodePath, help: "the subtree's root, as an option")
        static let depth = Option<Int?>("depth", short: "d", value: "N", range: 0...10_000, help: "levels below PATH to show (0 = PATH only)")
        static let stat = Option<Bool>(flag: "stat", help: "add version, data size and child count")
        static let data = Option<Bool>(flag: "data", help: "add short values")
        static let ascii = Option<Bool>(flag: "ascii", help: "draw with plain ASCII instead of box characters")
    }

    static let treeCommand = CommandSpec(
        "tree", summary: "draw a subtree",
        description: """
        Walks the subtree breadth-first with pipelined requests and draws it sorted by name.
        JSON output is one nested document {"path", "name", "children": [...]}; ndjson output
        streams one node per line, level by level, for very large trees. A node at the --depth
        limit that has children of its own carries "truncated": true instead of "children".

        \(unreadableDescription)
        """,
        examples: ["zkctl tree /config --depth 3", "zkctl tree --stat --data /services", "zkctl -o json tree / | jq '.children[].path'",
                   "zkctl -o json tree / --depth 1 | jq -r '.children[] | select(.truncated) | .path'"],
        arguments: [ArgumentSpec("PATH", help: "the subtree's root (default /)", type: .znodePath, optional: true, completion: .znodePath)],
        options: [
            TreeOptions.path.spec,
            TreeOptions.depth.spec,
            TreeOptions.stat.spec,
            TreeOptions.data.spec,
            TreeOptions.ascii.spec,
            skipUnreadableOption.spec,
        ],
        jsonOutput: #"one nested document: a node is {"path", "name", "stat" (with --stat: the stat object, man zkctl, OUTPUT), "data" (as in 'zkctl get'; with --data), "children": [nodes]}; a node whose children were not listed because of --depth has no "children" but "truncated": true and "numChildren": N (a leaf there still has "children": []); -o ndjson prints one node per line, parents first, without "children""#,
        handler: runTree)

    @Sendable static func runTree(_ inv: Invocation) async throws -> Int32 {
        if inv.argument(0) != nil && inv[TreeOptions.path] != nil {
            throw UsageError("give the path either as an argument or with --path, not both", command: ["tree"])
        }
        let root = inv.argument(0) ?? inv[TreeOptions.path] ?? "/"
        let depth = inv[TreeOptions.depth]
        let withData = inv[TreeOptions.data]
        let withStat = inv[TreeOptions.stat]
        let zk = try await inv.connect()
        let out = inv.output
        let skipped = UnreadableNodes(inv)
        let counter = ProgressCounter("nodes read")
        inv.showProgress("tree", counter)

        // -o ndjson prints each node as the walk reads it; the nested document and the drawing
        // are made once the whole tree is read.
        let count = try await out.stream({ emit in
            try await zk.walk(root, maxDepth: depth, data: withData, maxInFlight: inv.maxInFlight,
                              unreadable: skipped.record) { level in
                for node in level { try emit(node) }
                counter.add(level.count)
            }
            inv.endProgress()
        }, ndjson: { node in
            nodeJSON(node, withStat: withStat, withData: withData, children: nil, maxDepth: depth)
        }, collected: { all -> Printed in
            var nodes: [String: WalkedNode] = [:]
            for node in all { nodes[node.path] = node }
            guard let top = nodes[root] else { throw ZooKeeperError(.noNode, path: root) }
            func nested(_ node: WalkedNode) -> JSONValue {
                let kids = node.children.compactMap { nodes[PathRules.join(node.path, $0)] }
                return nodeJSON(node, withStat: withStat, withData: withData, children: kids.map(nested), maxDepth: depth)
            }
            return Printed(json: nested(top)) { out in
                let (branch, last, pipe, blank) = inv[TreeOptions.ascii] ? ("|-- ", "`-- ", "|   ", "    ") : ("├── ", "└── ", "│   ", "    ")
                func label(_ node: WalkedNode, name: String) -> String {
                    var text = out.styled(name, node.children.isEmpty ? .bold : .blue)
                    if withStat {
                        text += out.styled(" [v\(node.stat.version), \(node.stat.dataLength) B, \(node.stat.numChildren) children\(node.stat.isEphemeral ? ", ephemeral" : "")]", .dim)
                    }
                    if withData, let data = node.data, !data.isEmpty {
                        text += " = " + shortValue(data)
                    }
                    return text
                }
                // Depth-first printing with an explicit stack (deep trees must not overflow the call stack).
                func visibleChildren(_ node: WalkedNode) -> [(String, WalkedNode)] {
                    node.children.compactMap { name in nodes[PathRules.join(node.path, name)].map { (name, $0) } }
                }
                out.line(label(top, name: root))
                var stack: [(kids: [(String, WalkedNode)], prefix: String, index: Int)] = [(visibleChildren(top), "", 0)]
                while let (kids, prefix, index) = stack.popLast() {
                    guard index < kids.count else { continue }
                    // A tree far larger than the output could take stops once writing fails.
                    if out.stdoutFailure != nil { break }
                    let (name, child) = kids[index]
                    let isLast = index == kids.count - 1
                    out.line(prefix + (isLast ? last : branch) + label(child, name: name))
                    stack.append((kids, prefix, index + 1))
                    stack.append((visibleChildren(child), prefix + (isLast ? blank : pipe), 0))
                }
            }
        })
        if count == 0 { throw ZooKeeperError(.noNode, path: root) }
        return skipped.exitCode(ExitCode.success)
    }

    /// One node of `tree -o json|ndjson`. A node at the depth limit with children of its own was
    /// not listed: it says so ("truncated", and how many from its stat) instead of looking like a leaf.
    static func nodeJSON(_ node: WalkedNode, withStat: Bool, withData: Bool, children: [JSONValue]?, maxDepth: Int? = nil) -> JSONValue {
        var o = JSONObject()
        o["path"] = .string(node.path)
        o["name"] = .string(node.path == "/" ? "/" : String(node.path.split(separator: "/").last ?? ""))
        if withStat { o["stat"] = jsonStat(node.stat) }
        if withData { o["data"] = jsonData(node.data ?? Data()) }
        if let maxDepth, node.depth >= maxDepth, node.stat.numChildren > 0 {
            o["truncated"] = .bool(true)
            o["numChildren"] = .int(Int(node.stat.numChildren))
        } else if let children {
            o["children"] = .array(children)
        }
        return .object(o)
    }

    /// A value cut to one short line for `tree --data`.
    static func shortValue(_ data: Data) -> String {
        guard let text = String(data: data, encoding: .utf8) else { return "<\(data.count) bytes of binary>" }
        // Newlines as spaces, other control characters escaped: data never reaches the terminal raw.
        let oneLine = Output.oneLine(text.map { $0.isNewline ? " " : String($0) }.joined())
        return oneLine.count > 60 ? String(oneLine.prefix(57)) + "..." : oneLine
    }
}
