import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

/// `zkctl txn [FILE | -]`: one all-or-nothing transaction (a single zoo_multi) from JSON lines.
extension CommandTable {
    static let toolkitCommands: [CommandSpec] = [txnCommand, findCommand, duCommand, quotaCommand, editCommand]

    // MARK: - txn

    static let txnCommand = CommandSpec(
        "txn", summary: "apply several writes as one all-or-nothing transaction",
        description: """
        Reads one operation per line from FILE (or stdin for '-' or no FILE), each a JSON object,
        and sends them all as one ZooKeeper multi request: either every operation is applied or
        none is. Blank lines and lines starting with '#' are skipped. The operations:
          check   {"op": "check", "path": P, "version": N}: fails the transaction unless P has version N
          create  {"op": "create", "path": P, "data": D, "sequential": true, "ephemeral": true, "acl": [...]}
          set     {"op": "set", "path": P, "data": D, "version": N}
          delete  {"op": "delete", "path": P, "version": N}
        "data" is a string (stored as UTF-8) or {"base64": "..."}, as 'zkctl get -o json' prints
        it; it may be left out (empty data). "version" is optional for set and delete (any
        version when left out). "acl" is a list of "scheme:id:perms" entries or of {"scheme",
        "id", "perms"} objects (default world:anyone:cdrwa). An ephemeral node lasts only as long
        as zkctl's session, that is until the command ends. Any other key is an error.
        Prints one line per operation, in order: the path created (with its sequence number), the
        new version of a set node, or the path deleted or checked.
        Exit 65 for a line that is not a valid operation (naming the line; nothing is sent) or
        for a transaction too large for one request (the server's 1 MB packet limit; nothing is
        sent), 75 when an operation fails on the server, naming its line and the reason (a
        version that does not match, a node that exists or is missing, a node with children):
        nothing is applied then. An answer lost with the connection is settled as for the other
        writes: what the server holds says whether the transaction was applied.
        """,
        examples: [
            #"printf '%s\n' '{"op":"check","path":"/app/config","version":4}' '{"op":"set","path":"/app/mode","data":"blue"}' | zkctl txn"#,
            "zkctl txn changes.jsonl",
            "zkctl -o json txn changes.jsonl | jq -r '.[] | select(.op == \"create\") | .created'",
        ],
        arguments: [ArgumentSpec("FILE", help: "JSON lines of operations, or - (the default) for stdin", type: .file, optional: true, completion: .file)],
        jsonOutput: #"an array with one object per operation, in order: {"line", "op", "path"}, with "created" (the path created) for a create and "stat" (the node's new stat object, man zkctl, OUTPUT) for a set"#,
        handler: runTxn)

    /// One parsed line of a `txn` input.
    struct TxnLine: Equatable {
        var line: Int
        var op: MultiOp
        var name: String { switch op { case .check: "check"; case .create: "create"; case .set: "set"; case .delete: "delete" } }
    }

    /// Parses `txn` input: one JSON object per line. A bad line is exit 65, naming the line.
    static func parseTxn(_ text: String, source: String) throws -> [TxnLine] {
        var ops: [TxnLine] = []
        var number = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.trimmingBlanksAndNewlines()
            if line.isEmpty || line.hasPrefix("#") { continue }
            func bad(_ why: String) -> CommandError { CommandError.badData("\(source) line \(number): \(why)") }
            let value: JSONValue
            do { value = try JSONValue.parse(line) } catch { throw bad("\(error)") }
            guard let o = value.objectValue else { throw bad("expected a JSON object, found \(value.typePhrase)") }
            guard let opName = o["op"]?.stringValue else { throw bad("missing \"op\" (check, create, set or delete)") }
            let allowed: Set<String>
            switch opName {
            case "check": allowed = ["op", "path", "version"]
            case "create": allowed = ["op", "path", "data", "sequential", "ephemeral", "acl"]
            case "set": allowed = ["op", "path", "data", "version"]
            case "delete": allowed = ["op", "path", "version"]
            default: throw bad("unknown op '\(Output.oneLine(opName))' (expected check, create, set or delete)")
            }
            if let extra = o.keys.first(where: { !allowed.contains($0) }) {
                throw bad("\(opName): unknown key \"\(Output.oneLine(extra))\"")
            }
            guard let path = o["path"]?.stringValue else { throw bad("\(opName): missing \"path\" (a string)") }
            if let problem = PathRules.problem(with: path) { throw bad("\(opName) \(Output.oneLine(path)): \(problem)") }
            func version(required: Bool) throws -> Int32 {
                guard let v = o["version"] else {
                    if required { throw bad("\(opName) \(path): missing \"version\"") }
                    return -1
                }
                guard let n = v.intValue, n >= 0, n <= Int(Int32.max) else {
                    throw bad("\(opName) \(path): \"version\" must be a whole number from 0 to \(Int32.max)")
                }
                return Int32(n)
            }
            func data() throws -> Data {
                switch o["data"] {
                case nil, .null?: return Data()
                case .string(let s)?: return Data(s.utf8)
                case .object(let d)? where d.keys == ["base64"]:
                    guard let s = d["base64"]?.stringValue, let bytes = Data(base64Encoded: s) else {
                        throw bad("\(opName) \(path): \"data\".\"base64\" is not valid base64")
                    }
                    return bytes
                default: throw bad("\(opName) \(path): \"data\" must be a string or {\"base64\": \"...\"}")
                }
            }
            func flag(_ key: String) throws -> Bool {
                guard let v = o[key] else { return false }
                guard let b = v.boolValue else { throw bad("\(opName) \(path): \"\(key)\" must be true or false") }
                return b
            }
            let op: MultiOp
            switch opName {
            case "check": op = .check(path, version: try version(required: true))
            case "set": op = .set(path, data: try data(), version: try version(required: false))
            case "delete":
                if let problem = protectedPathProblem(path) { throw bad(problem) }
                op = .delete(path, version: try version(required: false))
            default:
                if path == "/" { throw bad("create /: '/' always exists") }
                let sequential = try flag("sequential"), ephemeral = try flag("ephemeral")
                let mode: CreateMode = ephemeral ? (sequential ? .ephemeralSequential : .ephemeral)
                    : (sequential ? .persistentSequential : .persistent)
                op = .create(path, data: try data(), mode: mode, acl: try txnACL(o["acl"], bad: { bad("create \(path): \($0)") }))
            }
            ops.append(TxnLine(line: number, op: op))
        }
        return ops
    }

    /// A create's "acl": strings `scheme:id:perms` or `{"scheme", "id", "perms"}` objects.
    private static func txnACL(_ value: JSONValue?, bad: (String) -> CommandError) throws -> [ACL] {
        guard let value, !value.isNull else { return ACL.openUnsafe }
        guard let entries = value.arrayValue, !entries.isEmpty else { throw bad("\"acl\" must be a non-empty list") }
        var specs: [String] = []
        for entry in entries {
            if let s = entry.stringValue {
                specs.append(s)
            } else if let e = entry.objectValue, let scheme = e["scheme"]?.stringValue, let id = e["id"]?.stringValue,
                      let perms = e["perms"]?.stringValue {
                specs.append("\(scheme):\(id):\(perms)")
            } else {
                throw bad("an \"acl\" entry is \"scheme:id:perms\" or {\"scheme\", \"id\", \"perms\"}")
            }
        }
        do {
            return try Common.parseACL(specs)
        } catch let error as UsageError {
            throw bad(error.message)
        }
    }

    @Sendable static func runTxn(_ inv: Invocation) async throws -> Int32 {
        let name = inv.argument(0) ?? "-"
        let source = name == "-" ? "stdin" : name
        let bytes = try Common.readInput(name)
        guard let text = String(data: bytes, encoding: .utf8) else { throw CommandError.badData("\(source): not UTF-8 text") }
        let lines = try parseTxn(text, source: source)
        if lines.isEmpty { throw CommandError.badData("\(source): no operations") }
        let ops = lines.map(\.op)
        // Too large for one request: refused before connecting, so nothing is sent.
        let size = ZooKeeperClient.estimatedMultiSize(ops)
        if size > ZooKeeperClient.maxPacketSize {
            throw CommandError.badData("\(source): the transaction of \(ops.count) operation\(ops.count == 1 ? "" : "s") is about \(size) bytes, over the server's limit of \(ZooKeeperClient.maxPacketSize) bytes; nothing was sent")
        }
        if ops.contains(where: { if case .create(_, _, _, let acl) = $0 { acl.contains { $0.scheme == "auth" } } else { false } }),
           inv.settings.credentials.isEmpty {
            throw UsageError("an auth:: ACL entry needs credentials (ZKCTL_AUTH or --auth-file)", command: ["txn"])
        }
        let zk = try await inv.connect()
        let results: [MultiOpResult]
        do {
            // A lost answer is settled by the client (LostReply.swift); only an outcome it could
            // not learn reaches here, told in txn's words.
            results = try await reportingUnknownOutcome({ error in
                ("txn (\(ops.count) operation\(ops.count == 1 ? "" : "s") from \(source))", "zkctl get \(error.path ?? ops[0].path)")
            }) { try await zk.multi(ops) }
        } catch let error as ZooKeeperError where error.operationIndex != nil && !error.code.isConnectionProblem {
            let failed = lines[error.operationIndex!]
            let why = "\(source) line \(failed.line): \(failed.name) \(failed.op.path): \(ExitCode.reason(for: error)); nothing was applied"
            if ExitCode.code(for: error) == ExitCode.notAuthorized { throw CommandError(ExitCode.notAuthorized, why) }
            throw CommandError.conflict(why)
        }
        var json: [JSONValue] = []
        var lineTexts: [String] = []
        for (line, result) in zip(lines, results) {
            var o = JSONObject([("line", .int(line.line)), ("op", .string(line.name)), ("path", .string(line.op.path))])
            switch result {
            case .created(let path):
                o["created"] = .string(path)
                lineTexts.append("created \(path)")
            case .set(let stat):
                o["stat"] = jsonStat(stat)
                lineTexts.append("set \(line.op.path) version \(stat.version)")
            case .deleted: lineTexts.append("deleted \(line.op.path)")
            case .checked: lineTexts.append("checked \(line.op.path)")
            }
            json.append(.object(o))
        }
        inv.output.print(Printed(json: .array(json), lines: lineTexts))
        return ExitCode.success
    }
}
