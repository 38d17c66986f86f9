import FoundationEssentials
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// Plain znode commands with zkCli's names: get, stat, exists, ls, set, create, delete, acl, watch.
extension CommandTable {
    static let znodeCommands: [CommandSpec] = [
        getCommand, statCommand, existsCommand, lsCommand, setCommand, createCommand, deleteCommand, aclCommand, watchCommand,
    ]

    // MARK: - Shared pieces

    static let pathArgument = ArgumentSpec("PATH", help: "the znode", type: .znodePath, completion: .znodePath)
    static let ifVersionOption = Option<Int?>(
        "if-version", range: 0...Int(Int32.max),
        help: "act only if the node still has this version (else exit 75)")

    /// A subtree larger than this needs `--force` to be deleted.
    static let recursiveDeleteThreshold = 1000
    /// The most deletes `delete -r` puts in one transaction.
    static let maxDeleteBatch = 5000

    /// The value a write command stores: its VALUE argument or `--file`, exactly one. A VALUE of
    /// `-` reads stdin, as `--file -` does; after `--` it is the text `-`.
    static func valueSource(argument: String?, argumentIsStdin: Bool = false, file: String?, required: Bool,
                            command: [String]) throws -> ValueSource {
        switch (argument, file) {
        case (.some, .some):
            throw UsageError("give the value either as an argument or with --file, not both", command: command)
        case (.some, nil) where argumentIsStdin:
            return .file("-")
        case (.some(let text), nil):
            return .text(text)
        case (nil, .some(let name)):
            return .file(name)
        case (nil, nil):
            if required { throw UsageError("missing VALUE (or --file FILE)", command: command) }
            return .text("")
        }
    }

    enum ValueSource: Equatable {
        case text(String)
        case file(String)

        func read() throws -> Data {
            switch self {
            case .text(let t): return Data(t.utf8)
            case .file(let name): return try Common.readInput(name)
            }
        }
    }

    /// An `auth::` entry stands for the session's own identities; without credentials the server
    /// would refuse it as an invalid ACL, so say what is missing before connecting.
    static func checkAuthEntries(_ acl: [ACL], _ inv: Invocation, command: [String]) throws {
        if acl.contains(where: { $0.scheme == "auth" }) && inv.settings.credentials.isEmpty {
            throw UsageError("an auth:: ACL entry needs credentials (ZKCTL_AUTH or --auth-file)", command: command)
        }
    }

    /// `--if-version` as the client takes it (-1: any version).
    static func expectedVersion(_ inv: Invocation) -> Int32 {
        inv[ifVersionOption].map { Int32($0) } ?? -1
    }

    /// The stat for text output, with the JSON's field names in the JSON's order (so a reader of
    /// the text finds the key to give jq).
    static func statFields(_ s: Stat) -> [(String, String)] {
        [
            ("czxid", hexText(s.czxid)), ("mzxid", hexText(s.mzxid)), ("pzxid", hexText(s.pzxid)),
            ("ctime", isoTime(s.ctime)), ("mtime", isoTime(s.mtime)),
            ("version", String(s.version)), ("cversion", String(s.cversion)), ("aversion", String(s.aversion)),
            ("ephemeralOwner", hexText(s.ephemeralOwner)),
            ("dataLength", String(s.dataLength)), ("numChildren", String(s.numChildren)),
        ]
    }

    /// `name  value` lines, names padded to one width.
    static func statText(_ s: Stat) -> [String] {
        let fields = statFields(s)
        let width = fields.map(\.0.count).max() ?? 0
        return fields.map { $0.0.padded(to: width + 2) + $0.1 }
    }

    /// `{"path": ..., "stat": {...}}`.
    static func statJSON(path: String, _ s: Stat) -> JSONValue {
        .object(JSONObject([("path", .string(path)), ("stat", jsonStat(s))]))
    }

    // MARK: - get

    enum GetOptions {
        static let stat = Option<Bool>(flag: "stat", help: "also print the stat")
        static let base64 = Option<Bool>(flag: "base64", help: "print the data base64-encoded")
    }

    static let getCommand = CommandSpec(
        "get", summary: "print a znode's data",
        description: """
        Prints the data of PATH. To a file or a pipe the node's bytes are written exactly, text or
        binary, with no newline added, so 'zkctl get PATH > f' followed by 'zkctl set PATH --file f'
        leaves the node unchanged. On a terminal the data is shown as text followed by a newline:
        control characters other than newline and tab are shown escaped (\\x1b for ESC), and data
        that is not UTF-8 is described instead of written; use --base64 or -o json for those bytes.
        With --stat the node's stat follows the data on a line of its own, as 'zkctl stat' prints it.
        Exit 1 when the node does not exist, 77 when its ACL refuses reading.
        """,
        examples: ["zkctl get /app/settings", "zkctl get --stat /app/settings", "zkctl get --base64 /app/blob | base64 -d > blob.bin",
                   "zkctl -o json get /app/settings | jq -r .data"],
        arguments: [pathArgument],
        options: [
            GetOptions.stat.spec,
            GetOptions.base64.spec,
        ],
        jsonOutput: #"{"path", "data", "stat"}: "data" is a string for UTF-8 text, else {"base64": "..."} (always the latter with --base64); "stat" only with --stat (the stat object, man zkctl, OUTPUT)"#,
        handler: runGet)

    @Sendable static func runGet(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let zk = try await inv.connect()
        let (data, stat) = try await zk.get(path)
        let out = inv.output
        let base64 = inv[GetOptions.base64]
        let withStat = inv[GetOptions.stat]
        // Made only for -o json: a text get of a large node does not encode it.
        func document() -> JSONValue {
            var o = JSONObject()
            o["path"] = .string(path)
            o["data"] = base64 ? .object(JSONObject([("base64", .string(data.base64EncodedString()))])) : jsonData(data)
            if withStat { o["stat"] = jsonStat(stat) }
            return .object(o)
        }
        out.print(Printed(json: document()) { out in
            if base64 {
                out.line(data.base64EncodedString())
                if withStat { statText(stat).forEach(out.line) }
            } else if Common.stdoutIsTerminal {
                out.line(Common.displayText(data))
                if withStat { statText(stat).forEach(out.line) }
            } else {
                // To a file or a pipe: the node's bytes exactly, so `get > f` and `set --file f` (or
                // `create --file f`) copy any node, text or binary, unchanged.
                out.write(bytes: data)
                if withStat {
                    if let last = data.last, last != 0x0a { out.write("\n") }
                    statText(stat).forEach(out.line)
                }
            }
        })
        return ExitCode.success
    }

    // MARK: - stat

    static let statCommand = CommandSpec(
        "stat", summary: "print a znode's stat",
        description: """
        Prints the node's metadata, one field per line, named as in the JSON output (the names of
        ZooKeeper's Java Stat): czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion,
        ephemeralOwner, dataLength, numChildren; zkCli.sh's stat says cZxid, mZxid, pZxid,
        dataVersion and aclVersion for czxid, mzxid, pzxid, version and aversion. Times are
        ISO 8601 UTC in text; zxids and the owner session are hexadecimal. For an ephemeral node,
        ownerClient is the owning session's client address and the member it is connected to,
        when a member names it (cons, or the AdminServer's connections; see 'zkctl sessions').
        Exit 1 when the node does not exist.
        """,
        examples: ["zkctl stat /app", "zkctl -o json stat /app | jq .stat.version"],
        arguments: [pathArgument],
        jsonOutput: #"{"path", "stat": {"czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner", "dataLength", "numChildren"}}: the stat object (man zkctl, OUTPUT); ctime and mtime in ms since the epoch, ephemeralOwner a hex string; for an ephemeral node also "owner": {"client", "member"} (null when no member names the session)"#,
        handler: runStat)

    @Sendable static func runStat(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let zk = try await inv.connect()
        guard let stat = try await zk.exists(path) else { throw ZooKeeperError(.noNode, path: path) }
        // An ephemeral node: the owning session's client, when a member names it (EnsembleMonitoring).
        let owner = stat.ephemeralOwner == 0 ? nil : await ephemeralOwner(inv, client: zk, session: stat.ephemeralOwner)
        var json = statJSON(path: path, stat)
        if stat.ephemeralOwner != 0, case .object(var o) = json {
            o["owner"] = owner.map { .object(JSONObject([("client", .string($0.client)), ("member", .string($0.member))])) } ?? .null
            json = .object(o)
        }
        let ownerLine = owner.map { ["ownerClient".padded(to: 16) + "\($0.client) (on \($0.member))"] } ?? []
        inv.output.print(Printed(json: json, lines: statText(stat) + ownerLine))
        return ExitCode.success
    }

    // MARK: - exists

    static let existsCommand = CommandSpec(
        "exists", summary: "test whether a znode exists (exit 0 or 1)",
        description: """
        Prints nothing: exit 0 when PATH exists, 1 when it does not, so it can drive a shell 'if'.
        Other failures keep their exit codes (69 unavailable, 77 not authorized).
        """,
        examples: ["zkctl exists /app/ready && echo ready", "until zkctl exists /app/ready; do sleep 1; done"],
        arguments: [pathArgument],
        jsonOutput: "nothing: the exit code is the answer",
        handler: runExists)

    @Sendable static func runExists(_ inv: Invocation) async throws -> Int32 {
        let zk = try await inv.connect()
        return try await zk.exists(inv.argument(0)!) == nil ? ExitCode.notFound : ExitCode.success
    }

    // MARK: - ls

    enum LsOptions {
        static let stat = Option<Bool>(flag: "stat", help: "show each child's stat")
    }

    static let lsCommand = CommandSpec(
        "ls", summary: "list a znode's children",
        description: """
        Prints the names of PATH's children sorted, one per line (in the shell, PATH left out is
        the current path). With --stat, a table of each child's version, data size, child count
        and modification time (stats are read pipelined, so large directories are quick).
        Directories whose list of names is larger than 1 MB work. Exit 1 when the node does not
        exist.
        """,
        examples: ["zkctl ls /", "zkctl ls --stat /services/api", "zkctl -o json ls /config | jq length"],
        arguments: [ArgumentSpec("PATH", help: "the znode", type: .znodePath, completion: .znodePath, currentPathInShell: true)],
        options: [LsOptions.stat.spec],
        jsonOutput: #"an array of child names, sorted; with --stat an array of {"name", "path", "stat"} (the stat object, man zkctl, OUTPUT)"#,
        handler: runLs)

    @Sendable static func runLs(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let zk = try await inv.connect()
        let names = try await zk.children(path).children.sorted()
        let out = inv.output
        guard inv[LsOptions.stat] else {
            out.print(Printed(json: .array(names.map { .string($0) }), lines: names))
            return ExitCode.success
        }
        let results = await zk.pipeline(names.map { Operation.exists(PathRules.join(path, $0)) }, maxInFlight: inv.maxInFlight)
        var rows: [(String, Stat)] = []
        for (name, result) in zip(names, results) {
            // A child deleted since the listing is left out.
            if let stat = try result.get().stat { rows.append((name, stat)) }
        }
        out.print(Printed(json: .array(rows.map { name, stat in
            .object(JSONObject([("name", .string(name)), ("path", .string(PathRules.join(path, name))), ("stat", jsonStat(stat))]))
        })) { out in
            out.table(["NAME", "VERSION", "BYTES", "CHILDREN", "EPHEMERAL", "MODIFIED"], rows.map { name, s in
                [name, String(s.version), String(s.dataLength), String(s.numChildren), s.isEphemeral ? "yes" : "no", isoTime(s.mtime)]
            })
        })
        return ExitCode.success
    }

    // MARK: - set

    enum SetOptions {
        static let file = Option<String?>("file", value: "FILE", type: .file, help: "read the data from FILE (- for stdin)")
    }

    static let setCommand = CommandSpec(
        "set", summary: "set a znode's data",
        description: """
        Replaces the data of an existing node with VALUE, or with the bytes of FILE (binary data
        is stored as is). VALUE '-' and --file - read stdin; to store the text '-', put '--'
        before it: 'zkctl set PATH -- -'. With --if-version N the write happens only if the
        node's version is still N, which makes read-modify-write safe.
        Exit 1 when the node does not exist, 75 when its version is not N.
        When the connection drops after the request was sent, the node is read once the session
        is back (within --timeout): the data written (at version N+1 with --if-version N) means
        it was applied (exit 0); the node unchanged means it was not, and it is sent again.
        """,
        examples: ["zkctl set /app/mode maintenance", "zkctl set /app/cert --file cert.pem",
                   "zkctl set /app/mode active --if-version 3", "echo -n on | zkctl set /app/flag -",
                   "zkctl get /app/blob > blob.bin && zkctl set /app/blob-copy --file blob.bin"],
        arguments: [pathArgument, ArgumentSpec("VALUE", help: "the new data (or use --file)", optional: true)],
        options: [
            SetOptions.file.spec,
            ifVersionOption.spec,
        ],
        jsonOutput: #"{"path", "stat"} with the node's new stat object (man zkctl, OUTPUT); text output prints nothing"#,
        handler: runSet)

    @Sendable static func runSet(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let source = try valueSource(argument: inv.argument(1), argumentIsStdin: inv.parsed.isStdin(1), file: inv[SetOptions.file],
                                     required: true, command: ["set"])
        let data = try source.read()
        let zk = try await inv.connect()
        let stat = try await zk.set(path, data: data, version: expectedVersion(inv))
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("path", .string(path)), ("stat", jsonStat(stat))]))))
        return ExitCode.success
    }

    // MARK: - create

    enum CreateOptions {
        static let file = Option<String?>("file", value: "FILE", type: .file, help: "read the data from FILE (- for stdin)")
        static let sequential = Option<Bool>(flag: "sequential", help: "append a sequence number to the name")
        static let container = Option<Bool>(flag: "container", help: "create a container node")
        static let ttl = Option<Duration?>(duration: "ttl", value: "DURATION", help: "remove the node after this long unchanged and childless")
        static let parents = Option<Bool>(flag: "parents", short: "p", help: "create missing parents (and a missing chroot)")
        static let ephemeral = Option<Bool>(flag: "ephemeral", help: "inside 'zkctl shell' only: a node removed when the shell's session ends")
    }

    static let createCommand = CommandSpec(
        "create", summary: "create a znode",
        description: """
        Creates PATH with VALUE (or the bytes of FILE; empty when neither is given) and prints the
        path created, which for --sequential carries the server's 10-digit counter. VALUE '-' and
        --file - read stdin ('zkctl create PATH -- -' stores the text '-').
        --container makes a container node, removed by the server once its last child is gone.
        --ttl makes a node the server removes when it has had no children and no change for that
        long (the server needs zookeeper.extendedTypesEnabled=true); it combines with --sequential
        but not with --container. --parents creates missing parents as empty persistent nodes,
        and the connect string's chroot first when it does not exist (open ACL).
        --acl sets the ACL of the node (and of parents it creates); the default is world:anyone:cdrwa.
        --ephemeral is offered only inside 'zkctl shell', where the node lives until the shell's
        session ends (with --sequential too); on the command line it is refused (exit 64): the
        node would vanish as soon as the command's own session ended.
        Exit 75 when the node exists, 1 when the parent or the chroot is missing (without --parents).

        When the connection drops after the request was sent, zkctl waits for the session to come
        back (within --timeout) and looks for the node before deciding: one holding the data
        written is ours (exit 0, its path printed). For --sequential the name is the server's,
        so zkctl reads the parent's child version just before creating (the server numbers the
        new child by it) and afterwards looks among the children with that prefix and a number
        at least that high for the ones holding the data written: exactly one is ours; none, with
        the parent's children unchanged, means it was not created and it is sent again; several
        (someone else created the same data at the same time), or none while other children came
        and went, is exit 69 'the write may or may not have been applied: check with zkctl ls
        PARENT'. Curator's protected names (a _c_<uuid>- prefix) are not used: they would change
        the name asked for.
        """,
        examples: ["zkctl create /app/settings '{\"debug\":false}'", "zkctl create --parents /app/a/b/c",
                   "zkctl create --sequential /queue/job- payload", "zkctl create --ttl 1h /tmp/marker",
                   "zkctl create /secret --acl digest:$(zkctl digest < admin-credentials):cdrwa"],
        arguments: [pathArgument, ArgumentSpec("VALUE", help: "the data (or use --file)", optional: true)],
        options: [
            CreateOptions.file.spec,
            CreateOptions.sequential.spec,
            CreateOptions.container.spec,
            CreateOptions.ttl.spec,
            CreateOptions.parents.spec,
            Common.aclOption.spec,
            CreateOptions.ephemeral.spec,
        ],
        jsonOutput: #"{"path"}: the path created (with its sequence number for --sequential)"#,
        handler: runCreate)

    /// `create --ephemeral`: inside the shell only, and not with --container or --ttl.
    static func ephemeralMode(_ inv: Invocation, sequential: Bool) throws -> CreateMode {
        guard inv.inShell else {
            throw UsageError("--ephemeral is offered only inside 'zkctl shell': the node would vanish as soon as this command's session ended",
                             command: ["create"])
        }
        if inv[CreateOptions.container] { throw UsageError("--container and --ephemeral cannot be combined", command: ["create"]) }
        if inv[CreateOptions.ttl] != nil { throw UsageError("--ttl and --ephemeral cannot be combined", command: ["create"]) }
        return sequential ? .ephemeralSequential : .ephemeral
    }

    /// The create mode for the flags given.
    static func createMode(sequential: Bool, container: Bool, ttl: Duration?) throws -> CreateMode {
        if let ttl {
            if container { throw UsageError("--container and --ttl cannot be combined", command: ["create"]) }
            let ms = ttl.milliseconds
            guard ms > 0 else { throw UsageError("--ttl must be longer than 0", command: ["create"]) }
            return sequential ? .persistentSequentialWithTTL(milliseconds: ms) : .persistentWithTTL(milliseconds: ms)
        }
        if container {
            if sequential { throw UsageError("--container and --sequential cannot be combined", command: ["create"]) }
            return .container
        }
        return sequential ? .persistentSequential : .persistent
    }

    @Sendable static func runCreate(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        if path == "/" { throw UsageError("'/' always exists", command: ["create"]) }
        var mode = try createMode(sequential: inv[CreateOptions.sequential], container: inv[CreateOptions.container], ttl: inv[CreateOptions.ttl])
        if inv[CreateOptions.ephemeral] { mode = try ephemeralMode(inv, sequential: inv[CreateOptions.sequential]) }
        let acl: [ACL]
        do {
            acl = try Common.acl(for: inv)
        } catch let error as UsageError {
            throw UsageError(error.message, command: ["create"])
        }
        try checkAuthEntries(acl, inv, command: ["create"])
        let source = try valueSource(argument: inv.argument(1), argumentIsStdin: inv.parsed.isStdin(1), file: inv[CreateOptions.file],
                                     required: false, command: ["create"])
        let data = try source.read()
        // Under a missing chroot, --parents creates the chroot too.
        let zk = try await inv[CreateOptions.parents] ? inv.connectCreatingChroot() : inv.connect()
        let created: String
        do {
            created = try await zk.create(path, data: data, mode: mode, acl: acl, createParents: inv[CreateOptions.parents])
        } catch let error as ZooKeeperError where error.code == .unimplemented && mode.isTTL {
            throw CommandError.unavailable("\(path): the server does not accept TTL nodes (it needs zookeeper.extendedTypesEnabled=true)")
        } catch let error as ZooKeeperError where error.code == .noNode && error.path == path {
            let parent = PathRules.parent(of: path) ?? "/"
            throw CommandError.notFound("\(parent): no such znode (use --parents to create it)")
        }
        if mode.isEphemeral { inv.madeEphemeral(created, on: zk) }
        inv.output.print(Printed(json: .object(JSONObject([("path", .string(created))])), lines: [created]))
        return ExitCode.success
    }

    // MARK: - delete

    enum DeleteOptions {
        static let recursive = Option<Bool>(flag: "recursive", short: "r", help: "delete the whole subtree")
        static let force = Option<Bool>(flag: "force", help: "with --recursive: delete even a subtree of more than \(recursiveDeleteThreshold) nodes")
    }

    static let deleteCommand = CommandSpec(
        "delete", aliases: ["rm"], summary: "delete a znode (or a subtree)",
        description: """
        Deletes PATH, which must have no children unless --recursive is given. With --if-version N
        the node is deleted only if its version is still N (exit 75 otherwise, nothing deleted).
        --recursive walks the subtree and deletes it bottom-up in multi-operation batches; nodes
        that change meanwhile are retried one by one. A subtree of more than
        \(recursiveDeleteThreshold) nodes also needs --force. '/' and '/zookeeper' are never deleted.
        Exit 1 when the node does not exist, 75 when it has children (without --recursive).
        When the connection drops after a delete was sent, a node found gone once the session is
        back (within --timeout) counts as deleted (exit 0), with --recursive too.

        With --recursive, a node this session may not read (so its children cannot be listed) is
        kept with its subtree and the nodes above it, and named on stderr ('zkctl: PATH: not
        authorized, skipped'); the rest is deleted and the exit code is 77 (0 with
        --skip-unreadable, which makes those lines warnings). An unreadable PATH is exit 77 at once.

        Ctrl-C during --recursive lets the transaction already sent finish (within --timeout) and
        then says how many znodes were deleted, as the server acknowledged them: "interrupted:
        deleted N of M znodes under PATH; run the same command again to delete the rest" (exit 130).
        """,
        examples: ["zkctl delete /app/old", "zkctl delete --recursive /app/cache", "zkctl delete -r --force /big/tree",
                   "zkctl delete /app/lock --if-version 0"],
        arguments: [pathArgument],
        options: [
            ifVersionOption.spec,
            DeleteOptions.recursive.spec,
            DeleteOptions.force.spec,
            skipUnreadableOption.spec,
        ],
        jsonOutput: #"{"path", "deleted"}: the number of znodes deleted (text output prints nothing)"#,
        handler: runDelete)

    /// Why a path may not be deleted, or nil.
    static func protectedPathProblem(_ path: String) -> String? {
        if path == "/" { return "refusing to delete '/'" }
        if path == "/zookeeper" || path.hasPrefix("/zookeeper/") { return "refusing to delete '\(path)': ZooKeeper's own tree" }
        return nil
    }

    @Sendable static func runDelete(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        if let problem = protectedPathProblem(path) { throw UsageError(problem, command: ["delete"]) }
        if inv[DeleteOptions.force] && !inv[DeleteOptions.recursive] {
            throw UsageError("--force only applies with --recursive", command: ["delete"])
        }
        if inv[skipUnreadableOption] && !inv[DeleteOptions.recursive] {
            throw UsageError("--skip-unreadable only applies with --recursive", command: ["delete"])
        }
        let version = expectedVersion(inv)
        let zk = try await inv.connect()
        var deleted = 1
        let unreadable = UnreadableNodes(inv)
        if inv[DeleteOptions.recursive] {
            let progress = BulkProgress()
            let out = inv.output
            let limit = inv.settings.timeout.value + .seconds(1)
            inv.onInterrupt {
                let settled = progress.stopAndWait(limit: limit)
                guard let total = progress.total else {
                    out.error("interrupted while reading \(path); nothing was deleted")
                    return
                }
                if settled && progress.done >= total {
                    out.error("interrupted after the last delete: deleted \(progress.done) znodes under \(path); nothing is left to do")
                    return
                }
                let atLeast = settled ? "" : "at least "
                let unknown = settled ? "" : " (the last transaction had no answer yet: its outcome is unknown)"
                out.error("interrupted: deleted \(atLeast)\(progress.done) of \(total) znodes under \(path)\(unknown); run the same command again to delete the rest")
            }
            defer { progress.settle() }
            let counter = ProgressCounter("nodes read")
            inv.showProgress("delete", counter)
            // A transaction deep in the tree whose outcome is unknown: the tree is what to look at.
            deleted = try await reportingUnknownOutcome({ _ in ("delete --recursive \(path)", "zkctl exists \(path)") }) {
                try await RecursiveDelete(zk: zk, maxInFlight: inv.maxInFlight, unreadable: unreadable, progress: progress, counter: counter)
                    .run(root: path, rootVersion: version, force: inv[DeleteOptions.force])
            }
        } else {
            do {
                try await zk.delete(path, version: version)
            } catch let error as ZooKeeperError where error.code == .notEmpty {
                throw CommandError.conflict("\(path): has children (use --recursive to delete the subtree)")
            }
        }
        inv.endProgress()
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("path", .string(path)), ("deleted", .int(deleted))]))))
        return unreadable.exitCode(ExitCode.success)
    }
}

extension CreateMode {
    fileprivate var isTTL: Bool {
        switch self {
        case .persistentWithTTL, .persistentSequentialWithTTL: return true
        default: return false
        }
    }
}
