import FoundationEssentials
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

extension CommandTable {
    static let backupCommands: [CommandSpec] = [exportCommand, importCommand, diffCommand]

    // MARK: export

    enum ExportOptions {
        static let file = Option<String?>("file", short: "f", value: "FILE", type: .file, help: "write the document to FILE instead of stdout")
    }

    static let exportCommand = CommandSpec(
        "export", summary: "write a subtree to a versioned JSON backup",
        description: """
        Reads every persistent node under PATH (default /; /zookeeper is never included) with its
        data, ACL and type and writes one JSON document (format "zkctl-export", version 1; see
        docs/export-format.md). Paths in the document are relative to PATH, which is recorded as
        "root". Data that is UTF-8 text is written as a string ("data"), anything else as base64
        ("dataBase64"). ZooKeeper servers (3.5 to 3.9) report containers and TTL nodes to clients
        as plain persistent nodes, so they are exported as "persistent"; import still creates
        "container" and "ttl" nodes a file asks for.

        ACLs are read as the server shows them: without admin permission on a node, it hides the
        hash of digest entries (user:x). Export then warns, and import refuses such a file; export
        with --auth as a user with admin rights.

        Ephemeral nodes belong to a live session and are left out; the document's
        "skippedEphemeral" field and a note on stderr say how many.

        The tree is read level by level with pipelined requests and written as it is read, so a
        large tree is never held in memory whole. With --file the document goes to FILE.partial
        first and is renamed to FILE only once complete; an export that fails leaves no FILE.

        A node whose ACL refuses this session reading it is left out with its subtree and named
        on stderr ('zkctl: PATH: not authorized, skipped'). The document stays valid and lists
        those nodes in "skippedUnreadable"; but the export is incomplete, so it exits 77 and, with
        --file, writes no file. With --skip-unreadable that is a warning: the file is written, the
        summary says how many nodes were skipped, and the exit code is 0. An unreadable PATH is
        exit 77 at once. Standard output that cannot be written (a full disk) is exit 73, and the
        summary then claims nothing.
        """,
        examples: [
            "zkctl export /config > config-backup.json",
            "zkctl export / --file full-backup.json",
            "zkctl -s prod:2181 export /app -f app.json && zkctl -s staging:2181 import app.json --overwrite",
        ],
        arguments: [ArgumentSpec("PATH", help: "the subtree to export (default /)", type: .znodePath, optional: true, completion: .znodePath)],
        options: [
            ExportOptions.file.spec,
            skipUnreadableOption.spec,
        ],
        jsonOutput: "the export document itself, whatever the output format: {\"format\":\"zkctl-export\",\"version\":1,\"root\",\"exported\",\"nodes\":[{\"path\",\"type\",\"ttl\"?,\"data\"|\"dataBase64\",\"acl\"}],\"nodeCount\",\"skippedEphemeral\",\"skippedUnreadable\"?:[PATH...]} (docs/export-format.md)",
        handler: runExport)

    @Sendable static func runExport(_ inv: Invocation) async throws -> Int32 {
        let root = inv.argument(0) ?? "/"
        if isZooKeeperInternal(root) {
            throw UsageError("'\(root)' is ZooKeeper's own subtree and is never exported", command: ["export"])
        }
        let zk = try await inv.connect()
        guard try await zk.exists(root) != nil else { throw ZooKeeperError(.noNode, path: root) }

        let file = inv[ExportOptions.file].flatMap { $0 == "-" ? nil : $0 }
        let sink = try ExportSink(file: file, output: inv.output)
        let unreadable = UnreadableNodes(inv)
        var written = 0
        var skipped = 0
        var redacted = 0
        let counter = ProgressCounter("nodes read")
        inv.showProgress("export", counter)
        // The header goes out with the root's line, so that an unreadable root writes nothing.
        let exported = Date()
        var started = false
        func start() {
            if !started { sink.write(BackupFormat.header(root: root, exported: exported)); started = true }
        }
        do {
            try await zk.walk(root, data: true, acl: true, maxInFlight: inv.maxInFlight, exclude: isZooKeeperInternal,
                              unreadable: unreadable.record) { level in
                start()
                for node in level {
                    guard let type = BackupNodeType(ZnodeKind(ephemeralOwner: node.stat.ephemeralOwner)) else {
                        skipped += 1
                        continue
                    }
                    guard let rel = BackupFormat.relative(node.path, to: root) else { continue }
                    let acl = node.acl ?? []
                    if acl.contains(where: BackupFormat.isRedacted) { redacted += 1 }
                    let line = BackupFormat.nodeLine(BackupNode(path: rel, type: type, data: node.data ?? Data(), acl: acl))
                    sink.write(written == 0 ? line : ",\n" + line)
                    written += 1
                }
                counter.add(level.count)
                // Stops the walk once the output is lost (a full disk, a closed pipe).
                try sink.flushIfLarge()
            }
            let unreadableRel = unreadable.paths.compactMap { BackupFormat.relative($0, to: root) }
            start()
            sink.write(BackupFormat.footer(nodeCount: written, skippedEphemeral: skipped, skippedUnreadable: unreadableRel))
            if !unreadable.isEmpty && !unreadable.warnOnly, let file {
                // Incomplete: no file that looks like a whole backup.
                sink.abandon()
                throw CommandError(ExitCode.notAuthorized,
                                   "export of \(root) incomplete: \(unreadable.summary) skipped; nothing was written to '\(file)' (--skip-unreadable writes the rest)")
            }
            try sink.finish()
        } catch let error as OutputError {
            sink.abandon()
            throw error
        } catch {
            sink.abandon()
            if file == nil && started {
                // The document on stdout was cut off: say so in the one error line.
                throw CommandError(ExitCode.code(for: error), ExitCode.message(for: error) + "; the export written to standard output is incomplete")
            }
            throw error
        }
        // The work is done: the line goes before the summary, so no redraw lands after it.
        inv.endProgress()
        var note = "exported \(written) node\(written == 1 ? "" : "s") from \(root)"
        if skipped > 0 { note += "; left out \(skipped) ephemeral node\(skipped == 1 ? "" : "s")" }
        if !unreadable.isEmpty { note += "; skipped \(unreadable.summary) (not authorized)" }
        if unreadable.isEmpty || unreadable.warnOnly {
            inv.output.note(note)
        } else {
            inv.output.error(note + "; the export is incomplete")
        }
        if redacted > 0 {
            inv.output.warn("the server hid the digest ACL ids of \(redacted) node\(redacted == 1 ? "" : "s") (no admin permission there); import refuses them: export with --auth as a user that has admin rights")
        }
        return unreadable.exitCode(ExitCode.success)
    }

    // MARK: import

    enum ImportOptions {
        static let to = Option<String?>("to", value: "PATH", type: .znodePath, help: "where the file's root goes (default: the root recorded in the file)")
        static let dryRun = Option<Bool>(flag: "dry-run", help: "print the plan and change nothing")
        static let overwrite = Option<Bool>(flag: "overwrite", help: "replace the data and ACL of existing nodes that differ")
        static let skipExisting = Option<Bool>(flag: "skip-existing", help: "leave existing nodes that differ as they are")
        static let prune = Option<Bool>(flag: "prune", help: "also remove nodes under the target that the file does not hold")
    }

    static let importCommand = CommandSpec(
        "import", summary: "recreate a tree from an export (or a zk-shell JSON dump)",
        description: """
        Reads FILE (a zkctl export, or the JSON dump written by zk-shell's 'cp ... json://'; the
        format is detected) and checks all of it before anything is written: a malformed or
        truncated file is exit 65 and changes nothing. The tree is recreated under --to PATH (default:
        the root recorded in the file), parents before children, with the file's data, ACLs and
        node types. Missing ancestors of PATH are created empty with an open ACL.

        First the target's state is read (pipelined) and a plan is made: create missing nodes, skip
        nodes that are already equal, and for nodes that exist with other data or ACL: stop with
        exit 75 and write nothing (default), replace them (--overwrite) or leave them (--skip-existing).
        --prune also removes nodes under PATH that the file does not hold (never ephemeral ones,
        nor those the export could not read: a file that lists "skippedUnreadable" is incomplete,
        and import warns that those nodes are not restored).
        --dry-run prints the plan and changes nothing.

        Writes go in transactions (multi) kept under the server's packet limit: an import that fits
        in one is all-or-nothing. A larger one that stops halfway (say the server went away) is
        finished by running the same command again: equal nodes are skipped, nothing is duplicated.
        Ctrl-C sends nothing more, lets the transactions already sent finish (within --timeout)
        and says what the server acknowledged: "interrupted: imported N of M nodes into PATH ...;
        run the same import again to finish" (exit 130).
        TTL and container nodes are created outside transactions, right after their parents'
        transaction; ACL changes on existing nodes come last. A node whose ACL would stop this session from creating
        its children is created with create and admin added for world:anyone and given its own ACL
        once its children exist.

        The summary (created, updated, skipped, removed) goes to stderr, or to stdout as one JSON
        document with -o json.
        """,
        examples: [
            "zkctl import config-backup.json",
            "zkctl import config-backup.json --to /config-copy --dry-run",
            "zkctl import app.json --overwrite --prune",
            "zkctl import zkshell-dump.json --to /restored",
        ],
        arguments: [ArgumentSpec("FILE", help: "the export (or zk-shell dump) to read; - for stdin", type: .file, completion: .file)],
        options: [
            ImportOptions.to.spec,
            ImportOptions.dryRun.spec,
            ImportOptions.overwrite.spec,
            ImportOptions.skipExisting.spec,
            ImportOptions.prune.spec,
        ],
        jsonOutput: "{\"file\",\"format\",\"root\",\"dryRun\",\"created\",\"updated\",\"skipped\",\"removed\",\"conflicts\"}; with --dry-run also \"plan\":[{\"action\":\"create|update|remove|conflict\",\"path\",\"what\"?}]",
        handler: runImport)

    @Sendable static func runImport(_ inv: Invocation) async throws -> Int32 {
        guard let file = inv.argument(0) else { throw UsageError("missing argument FILE for 'import'", command: ["import"]) }
        if inv[ImportOptions.overwrite] && inv[ImportOptions.skipExisting] {
            throw UsageError("--overwrite and --skip-existing exclude each other", command: ["import"])
        }
        let policy: ImportConflictPolicy = inv[ImportOptions.overwrite] ? .overwrite : inv[ImportOptions.skipExisting] ? .skipExisting : .fail
        let dryRun = inv[ImportOptions.dryRun]
        let prune = inv[ImportOptions.prune]
        // An interrupt lets the transactions already sent finish (within --timeout), sends
        // nothing more, and says what the server acknowledged.
        let progress = BulkProgress()
        let out = inv.output
        let limit = inv.settings.timeout.value + .seconds(1)
        inv.onInterrupt {
            let settled = progress.stopAndWait(limit: limit)
            guard let total = progress.total, !(settled && progress.done == 0) else {
                out.error("interrupted before anything was written; nothing was changed")
                return
            }
            if settled && progress.done == total {
                out.error("interrupted after the last write: imported \(progress.created) nodes into \(progress.target); nothing is left to do")
                return
            }
            let atLeast = settled ? "" : "at least "
            let unknown = settled ? "" : "; the last transactions had no answer yet, their outcome is unknown"
            out.error("interrupted: imported \(atLeast)\(progress.created) of \(progress.toCreate) nodes into \(progress.target) (\(atLeast)\(progress.done) of \(total) writes)\(unknown); run the same import again to finish (it skips what exists)")
        }

        let counter = ProgressCounter("reading the file", counted: false)
        inv.showProgress("import", counter)
        let snapshot = try readSnapshot(file)
        counter.start("comparing with the target", total: nil, counted: false)
        let targetRoot = inv[ImportOptions.to] ?? snapshot.root
        if isZooKeeperInternal(targetRoot) {
            throw UsageError("'\(targetRoot)' is ZooKeeper's own subtree; import elsewhere", command: ["import"])
        }
        if !snapshot.skippedUnreadable.isEmpty {
            let n = snapshot.skippedUnreadable.count
            let shown = snapshot.skippedUnreadable.prefix(3).joined(separator: ", ") + (n > 3 ? " and \(n - 3) more" : "")
            inv.output.warn("\(file) is incomplete: its export could not read \(n) node\(n == 1 ? "" : "s") (\(shown)); \(n == 1 ? "it and its subtree are" : "they and their subtrees are") not restored\(prune ? " and not pruned" : "")")
        }
        // Everything that can be checked without a server, before connecting.
        // Reading checked every path under the file's own root already, so each path is valid
        // under any valid root too (the rules are about characters and segments).
        let pathsChecked = targetRoot == snapshot.root || PathRules.problem(with: targetRoot) == nil
        // Below any other root than "/", nothing lands in /zookeeper (the root itself was checked).
        let internalPossible = targetRoot == "/"
        for node in snapshot.nodes {
            let path = BackupFormat.absolute(node.path, under: targetRoot)
            if !pathsChecked, let problem = PathRules.problem(with: path) { throw CommandError.badData("\(file): bad path '\(path)': \(problem)") }
            if internalPossible, isZooKeeperInternal(path) { throw CommandError.badData("\(file): '\(path)' would land in ZooKeeper's own subtree") }
            let op = MultiOp.create(path, data: node.data ?? Data(), mode: .persistent, acl: node.acl ?? ACL.openUnsafe)
            if !MultiBatcher.fitsAlone(op) {
                throw CommandError.badData("\(file): '\(path)' holds \(node.data?.count ?? 0) bytes, more than the server takes in one request")
            }
        }

        let zk = try await inv.connect()
        let ancestors = snapshot.nodes.isEmpty ? [] : try await readAncestors(of: targetRoot, zk: zk, maxInFlight: inv.maxInFlight)
        let existing = try await readExisting(snapshot.nodes, under: targetRoot, zk: zk, maxInFlight: inv.maxInFlight)
        // What the export could not read is not known to be absent: --prune leaves it alone.
        let unknown = snapshot.skippedUnreadable.map { BackupFormat.absolute($0, under: targetRoot) }
        let pruneList = prune ? try await pruneCandidates(snapshot.nodes, under: targetRoot, zk: zk, maxInFlight: inv.maxInFlight)
            .filter { c in !unknown.contains { c.path == $0 || c.path.hasPrefix($0 + "/") } } : []
        var identities: Set<String> = ["world:anyone"]
        for credential in inv.settings.credentials { identities.insert("digest:" + ACL.digestID(forCredential: credential)) }
        let plan = ImportPlan.make(nodes: snapshot.nodes, targetRoot: targetRoot, existing: existing, ancestors: ancestors,
                                   prune: pruneList, policy: policy, identities: identities)
        let conflicts = plan.conflicts

        if dryRun {
            printPlan(plan, inv: inv, file: file, snapshot: snapshot, targetRoot: targetRoot)
            if !conflicts.isEmpty { throw conflictError(conflicts) }
            return ExitCode.success
        }
        if !conflicts.isEmpty { throw conflictError(conflicts) }

        let steps = plan.steps()
        let total = steps.reduce(0) { $0 + $1.count }
        progress.describe(target: targetRoot, toCreate: plan.created)
        try progress.startWriting(total: total)
        defer { progress.settle() }
        counter.start("writes", total: total)
        func creates(_ ops: [MultiOp]) -> Int { ops.reduce(0) { if case .create = $1 { return $0 + 1 }; return $0 } }
        var done = 0
        do {
            var i = 0
            while i < steps.count {
                try progress.stopIfAsked()
                if case .pipelined(let ops) = steps[i] {
                    // Read lazily: nothing more is sent once an interrupt asks to stop.
                    let failure = Mutex<ZooKeeperError?>(nil)
                    let acknowledged = Mutex(0)
                    let lost = Mutex<[Operation]>([])
                    await zk.pipeline(ops.lazy.prefix { _ in !progress.stopRequested }, maxInFlight: inv.maxInFlight) { _, op, result in
                        switch result {
                        case .success:
                            var created = 0
                            if case .create = op { created = 1 }
                            progress.add(1, created: created)
                            counter.add(1)
                            acknowledged.withLock { $0 += 1 }
                        case .failure(let error) where error.code == .connectionLoss:
                            lost.withLock { $0.append(op) }
                        case .failure(let error):
                            failure.withLock { if $0 == nil { $0 = error } }
                        }
                    }
                    done += acknowledged.withLock { $0 }
                    if let error = failure.withLock({ $0 }) { throw error }
                    // Writes whose answers were lost: learn what became of them, in order.
                    let lostOps = lost.withLock { $0 }
                    for (op, settled) in zip(lostOps, await zk.settleLostWrites(lostOps)) {
                        _ = try settled.get()
                        var created = 0
                        if case .create = op { created = 1 }
                        progress.add(1, created: created)
                        done += 1
                    }
                    try progress.stopIfAsked()
                    i += 1
                    continue
                }
                // A run of transactions, four in flight (the server applies them in order, and
                // none after one that fails), counted on the progress line as each is applied.
                var batches: [[MultiOp]] = []
                while i < steps.count, case .multi(let ops) = steps[i] { batches.append(ops); i += 1 }
                var failure: (any Error)? = nil
                let results = await zk.multi(batches: batches, maxInFlight: 4, stop: { progress.stopRequested },
                                             applied: { counter.add(batches[$0].count) })
                for (ops, result) in zip(batches, results) {
                    switch result {
                    case .success:
                        done += ops.count
                        progress.add(ops.count, created: creates(ops))
                    case .failure(let error): failure = failure ?? error
                    }
                }
                if let failure { throw failure }
                // Batches left unsent by an interrupt.
                try progress.stopIfAsked()
            }
        } catch {
            if done > 0 || steps.count > 1, !progress.stopRequested {
                inv.output.error("import stopped after \(done) of \(total) writes; run the same import again to finish it")
            }
            throw error
        }
        printSummary(plan, inv: inv, file: file, snapshot: snapshot, targetRoot: targetRoot, dryRun: false)
        return ExitCode.success
    }

    /// Reads and checks an export or zk-shell dump; every problem is exit 65 (66 if unreadable).
    static func readSnapshot(_ file: String) throws -> BackupSnapshot {
        // Only the bytes stay while the nodes are made, read straight into the array.
        let bytes = try Common.readBytes(file)
        do {
            return try BackupFormat.read(bytes: bytes)
        } catch {
            throw CommandError.badData("\(file): \(error.message); nothing was changed")
        }
    }

    /// The import root's ancestors (top first, without `/`) and whether each exists.
    static func readAncestors(of root: String, zk: ZooKeeperClient, maxInFlight: Int) async throws -> [(path: String, exists: Bool)] {
        var paths: [String] = []
        var p = PathRules.parent(of: root)
        while let q = p, q != "/" { paths.insert(q, at: 0); p = PathRules.parent(of: q) }
        let results = await zk.pipeline(paths.map { Operation.exists($0) }, maxInFlight: maxInFlight)
        return try zip(paths, results).map { path, result in (path, try result.get().stat != nil) }
    }

    /// The target's state for every node of the file: data, ACL and version, or nil when missing.
    static func readExisting(_ nodes: [BackupNode], under root: String, zk: ZooKeeperClient, maxInFlight: Int) async throws -> [ExistingNode?] {
        // Importing into a root that does not exist yet (the common case) needs no reads: no node
        // of the file can exist under it.
        if try await zk.exists(root) == nil { return Array(repeating: nil, count: nodes.count) }
        struct Gather {
            var states: [ExistingNode?] = []
            var pending: (Data, Stat)? = nil
            var error: ZooKeeperError? = nil
        }
        let gather = Mutex(Gather())
        gather.withLock { $0.states.reserveCapacity(nodes.count) }
        let ops = nodes.lazy.flatMap { node -> [Operation] in
            let path = BackupFormat.absolute(node.path, under: root)
            return [.get(path), .getACL(path)]
        }
        await zk.pipeline(ops, maxInFlight: maxInFlight) { index, _, result in
            gather.withLock { g in
                let missing: Bool
                switch result {
                case .failure(let e) where e.code == .noNode: missing = true
                case .failure(let e): if g.error == nil { g.error = e }; missing = true
                case .success: missing = false
                }
                if index % 2 == 0 {
                    if missing { g.pending = nil } else if case .success(let r) = result { g.pending = (r.data ?? Data(), r.stat ?? Stat()) }
                } else {
                    if !missing, let (data, stat) = g.pending, case .success(let r) = result {
                        g.states.append(ExistingNode(data: data, acl: r.acl ?? [], version: stat.version,
                                                     kind: ZnodeKind(ephemeralOwner: stat.ephemeralOwner)))
                    } else {
                        g.states.append(nil)
                    }
                    g.pending = nil
                }
            }
        }
        let (states, error) = gather.withLock { ($0.states, $0.error) }
        if let error { throw error }
        return states
    }

    /// Existing nodes under the root that the file does not hold, deepest first. Ephemeral nodes
    /// (and so their ancestors) are kept.
    static func pruneCandidates(_ nodes: [BackupNode], under root: String, zk: ZooKeeperClient, maxInFlight: Int) async throws -> [(path: String, version: Int32)] {
        var wanted = Set<String>()
        wanted.reserveCapacity(nodes.count)
        for n in nodes { wanted.insert(BackupFormat.absolute(n.path, under: root)) }
        var found: [(path: String, version: Int32)] = []
        var keep = Set<String>()
        try await zk.walk(root, maxInFlight: maxInFlight, exclude: isZooKeeperInternal) { level in
            for node in level where !wanted.contains(node.path) {
                if node.stat.ephemeralOwner != 0 && ZnodeKind(ephemeralOwner: node.stat.ephemeralOwner) == .ephemeral {
                    var p = PathRules.parent(of: node.path)
                    while let q = p, !keep.contains(q) { keep.insert(q); p = PathRules.parent(of: q) }
                    continue
                }
                found.append((node.path, node.stat.version))
            }
        }
        return found.reversed().filter { !keep.contains($0.path) }
    }

    static func conflictError(_ conflicts: [(path: String, what: [String])]) -> CommandError {
        let shown = conflicts.prefix(3).map { "\($0.path) (\($0.what.joined(separator: ", ")))" }.joined(separator: ", ")
        let more = conflicts.count > 3 ? " and \(conflicts.count - 3) more" : ""
        let n = conflicts.count
        return CommandError.conflict("\(n) existing node\(n == 1 ? " differs" : "s differ") from the file: \(shown)\(more); nothing was written (use --overwrite to replace them or --skip-existing to keep them)")
    }

    static func printPlan(_ plan: ImportPlan, inv: Invocation, file: String, snapshot: BackupSnapshot, targetRoot: String) {
        func planJSON() -> JSONValue {
            var items: [JSONValue] = []
            for action in plan.actions {
                var o = JSONObject()
                switch action {
                case .create: o["action"] = "create"
                case .update(_, _, _, _, let what): o["action"] = "update"; o["what"] = .array(what.map { .string($0) })
                case .remove: o["action"] = "remove"
                case .conflict(_, let what): o["action"] = "conflict"; o["what"] = .array(what.map { .string($0) })
                case .skip: continue
                }
                o["path"] = .string(action.path)
                items.append(.object(o))
            }
            var doc = summaryObject(plan, file: file, snapshot: snapshot, targetRoot: targetRoot, dryRun: true)
            doc["plan"] = .array(items)
            return .object(doc)
        }
        inv.output.print(Printed(json: planJSON()) { out in
            for action in plan.actions {
                switch action {
                case .create(let p, _, _, _, _): out.line("create \(p)")
                case .update(let p, _, _, _, let what): out.line("update \(p) (\(what.joined(separator: ", ")))")
                case .remove(let p, _): out.line("remove \(p)")
                case .conflict(let p, let what): out.line("conflict \(p) (\(what.joined(separator: ", ")))")
                case .skip: continue
                }
            }
            out.note("dry run, nothing changed: would create \(plan.created), update \(plan.updated), skip \(plan.skipped), remove \(plan.removed) under \(targetRoot)")
        })
    }

    static func printSummary(_ plan: ImportPlan, inv: Invocation, file: String, snapshot: BackupSnapshot, targetRoot: String, dryRun: Bool) {
        inv.endProgress()
        inv.output.print(Printed(json: .object(summaryObject(plan, file: file, snapshot: snapshot, targetRoot: targetRoot, dryRun: dryRun))) { out in
            out.note("imported \(file) into \(targetRoot): \(plan.created) created, \(plan.updated) updated, \(plan.skipped) skipped, \(plan.removed) removed")
        })
    }

    static func summaryObject(_ plan: ImportPlan, file: String, snapshot: BackupSnapshot, targetRoot: String, dryRun: Bool) -> JSONObject {
        JSONObject([
            ("file", .string(file)), ("format", .string(snapshot.source.rawValue)), ("root", .string(targetRoot)),
            ("dryRun", .bool(dryRun)), ("created", .int(plan.created)), ("updated", .int(plan.updated)),
            ("skipped", .int(plan.skipped)), ("removed", .int(plan.removed)), ("conflicts", .int(plan.conflicts.count)),
        ])
    }

    // MARK: diff

    static let diffCommand = CommandSpec(
        "diff", summary: "compare two trees (live paths or export files)",
        description: """
        Compares SOURCE with TARGET. Each is a live path (it starts with '/') or a file: a zkctl
        export or a zk-shell JSON dump (anything else; write file:NAME for a file whose name starts
        with '/'). Nodes are compared by their path relative to each side's root, so /app on one
        server compares with an export of /app-copy. Ephemeral nodes of a live side are left out,
        as export leaves them out.

        Text output has one line per difference, in tree order, with paths relative to the roots
        ('.' is the root itself):
          + PATH            only in TARGET
          - PATH            only in SOURCE
          ~ PATH (WHAT)     in both, but the data, acl or type differs
        JSON output is one document: {"source","target","equal","added":[...],"removed":[...],
        "changed":[{"path","what":[...]}]}.

        Exit 0 when the trees are equal and 1 when they differ, like diff(1); 2 when a live side's
        root does not exist (so that a script can tell "differs" from "nothing to compare"). A
        file that cannot be read is 66, one that does not parse 65.

        A node of a live side that this session may not read is skipped with its subtree and
        named on stderr ('zkctl: PATH: not authorized, skipped'); differences at or under such a
        node are not shown, since they are not known. The comparison of the rest is printed and
        the exit code is 77; with --skip-unreadable those lines are warnings and the exit code is
        0 or 1 as above. An unreadable root is exit 77 at once.
        """,
        examples: [
            "zkctl diff /config backup.json",
            "zkctl diff /app /app-staging",
            "zkctl -o json diff old.json new.json | jq .changed",
        ],
        arguments: [
            ArgumentSpec("SOURCE", help: "a live path (/...) or an export file", completion: .file),
            ArgumentSpec("TARGET", help: "a live path (/...) or an export file", completion: .file),
        ],
        options: [skipUnreadableOption.spec],
        jsonOutput: "{\"source\",\"target\",\"equal\",\"added\":[PATH...],\"removed\":[PATH...],\"changed\":[{\"path\",\"what\":[\"data\"|\"acl\"|\"type\"]}]}, paths relative to each side's root (\".\" is the root)",
        handler: runDiff)

    @Sendable static func runDiff(_ inv: Invocation) async throws -> Int32 {
        guard let sourceArg = inv.argument(0), let targetArg = inv.argument(1) else {
            throw UsageError("diff needs SOURCE and TARGET", command: ["diff"])
        }
        var client: ZooKeeperClient? = nil
        let unreadable = UnreadableNodes(inv)
        // Skipped nodes of either side, relative to its root: what is not known is not compared.
        var unknown: [String] = []
        func load(_ side: String) async throws -> BackupSnapshot {
            if !side.hasPrefix("/") {
                // A file's unreadable nodes are as unknown as a live side's.
                let snapshot = try readSnapshot(side.hasPrefix("file:") ? String(side.dropFirst(5)) : side)
                unknown += snapshot.skippedUnreadable
                return snapshot
            }
            if let problem = PathRules.problem(with: side) { throw UsageError("bad path '\(side)': \(problem)", command: ["diff"]) }
            if isZooKeeperInternal(side) { throw UsageError("'\(side)' is ZooKeeper's own subtree", command: ["diff"]) }
            let zk: ZooKeeperClient
            if let client { zk = client } else { zk = try await inv.connect(); client = zk }
            do {
                let before = unreadable.count
                let snapshot = try await liveSnapshot(side, zk: zk, maxInFlight: inv.maxInFlight, unreadable: unreadable)
                unknown += unreadable.paths[before...].compactMap { BackupFormat.relative($0, to: side) }
                return snapshot
            } catch ZooKeeperError.Code.noNode {
                let hint = FileManager.default.fileExists(atPath: side) ? " (for the file of that name, write file:\(side))" : ""
                throw CommandError(diffMissingRoot, "\(side): no such znode\(hint)")
            }
        }
        let source = try await load(sourceArg)
        let target = try await load(targetArg)
        let entries = TreeDiff.compare(source.nodes, target.nodes, compareTypes: source.source != .live && target.source != .live)
            .filter { entry in !unknown.contains { entry.path == $0 || $0.isEmpty || entry.path.hasPrefix($0 + "/") } }
        func diffJSON() -> JSONValue {
            var added: [JSONValue] = [], removed: [JSONValue] = [], changed: [JSONValue] = []
            for e in entries {
                switch e {
                case .added(let p): added.append(.string(BackupFormat.display(p)))
                case .removed(let p): removed.append(.string(BackupFormat.display(p)))
                case .changed(let p, let what):
                    changed.append(.object(JSONObject([("path", .string(BackupFormat.display(p))), ("what", .array(what.map { .string($0) }))])))
                }
            }
            return .object(JSONObject([
                ("source", .string(sourceArg)), ("target", .string(targetArg)), ("equal", .bool(entries.isEmpty)),
                ("added", .array(added)), ("removed", .array(removed)), ("changed", .array(changed)),
            ]))
        }
        inv.output.print(Printed(json: diffJSON(), lines: entries.map { e in
            switch e {
            case .added(let p): "+ " + BackupFormat.display(p)
            case .removed(let p): "- " + BackupFormat.display(p)
            case .changed(let p, let what): "~ \(BackupFormat.display(p)) (\(what.joined(separator: ", ")))"
            }
        }))
        return unreadable.exitCode(entries.isEmpty ? ExitCode.success : diffDiffers)
    }

    /// diff's exit code when the trees differ (as diff(1)).
    static let diffDiffers: Int32 = 1
    /// diff's exit code when a live side's root does not exist (diff(1)'s "trouble"; not 1, which
    /// means the trees differ).
    static let diffMissingRoot: Int32 = 2

    /// A live subtree as a snapshot: persistent nodes only, /zookeeper left out. Nodes the session
    /// may not read are left out and handed to `unreadable` (without it, they end the walk).
    static func liveSnapshot(_ root: String, zk: ZooKeeperClient, maxInFlight: Int,
                             unreadable: UnreadableNodes? = nil) async throws -> BackupSnapshot {
        var nodes: [BackupNode] = []
        var skipped = 0
        var sawRoot = false
        try await zk.walk(root, data: true, acl: true, maxInFlight: maxInFlight, exclude: isZooKeeperInternal,
                          unreadable: unreadable?.record) { level in
            for node in level {
                if node.path == root { sawRoot = true }
                guard let type = BackupNodeType(ZnodeKind(ephemeralOwner: node.stat.ephemeralOwner)) else { skipped += 1; continue }
                guard let rel = BackupFormat.relative(node.path, to: root) else { continue }
                nodes.append(BackupNode(path: rel, type: type, data: node.data ?? Data(), acl: node.acl ?? []))
            }
        }
        guard sawRoot else { throw ZooKeeperError(.noNode, path: root) }
        return BackupSnapshot(source: .live, root: root, nodes: nodes, skippedEphemeral: skipped)
    }

    /// `/zookeeper` and everything under it: the server's own nodes, never backed up or written.
    @Sendable static func isZooKeeperInternal(_ path: String) -> Bool {
        path == "/zookeeper" || path.hasPrefix("/zookeeper/")
    }
}
