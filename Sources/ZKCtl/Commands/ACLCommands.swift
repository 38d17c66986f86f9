import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// `zkctl acl get|set`: a znode's ACL, read or replaced (also for a whole subtree).
extension CommandTable {
    // MARK: - acl

    static let aclCommand = CommandSpec(
        "acl", summary: "read or set a znode's ACL",
        description: """
        ACL entries are written scheme:id:perms, perms being letters of cdrwa (create, delete,
        read, write, admin): world:anyone:r, digest:user:HASH:cdrwa (HASH from 'zkctl digest'),
        auth::cdrwa (every identity of this session), ip:10.0.0.0/8:r.
        """,
        examples: ["zkctl acl get /app", "zkctl acl set /app world:anyone:r digest:admin:HASH:cdrwa"],
        subcommands: [aclGetCommand, aclSetCommand])

    static let aclGetCommand = CommandSpec(
        "get", summary: "print a znode's ACL",
        description: """
        Prints one scheme:id:perms line per ACL entry. Reading an ACL needs read or admin
        permission; without admin, the server shows digest entries as digest:user:x.
        Exit 1 when the node does not exist.
        """,
        examples: ["zkctl acl get /app", "zkctl -o json acl get /app | jq -r '.[].scheme'"],
        arguments: [pathArgument],
        jsonOutput: #"[{"scheme", "id", "perms"}, ...]"#,
        handler: runACLGet)

    @Sendable static func runACLGet(_ inv: Invocation) async throws -> Int32 {
        let zk = try await inv.connect()
        let acl = try await zk.getACL(inv.argument(0)!).acl
        inv.output.print(Printed(json: Common.aclJSON(acl), lines: acl.map(Common.aclText)))
        return ExitCode.success
    }

    enum ACLSetOptions {
        static let recursive = Option<Bool>(flag: "recursive", short: "r", help: "apply to the whole subtree")
        static let force = Option<Bool>(flag: "force", help: "with --recursive: set an ACL that leaves this session no admin permission")
    }

    static let aclSetCommand = CommandSpec(
        "set", summary: "replace a znode's ACL",
        description: """
        Replaces the ACL of PATH with the SPEC entries. --recursive applies them to every node of
        the subtree (pipelined). With --if-version N the ACL is set only if PATH's ACL version
        (aclVersion) is still N; with --recursive that check is made on PATH before anything else
        is changed. Keep an entry that lets you administer the node, or you lock yourself out:
        with --recursive, an ACL that grants this session's identities (world:anyone, auth::, and
        the digest users of its credentials) no admin permission is refused (exit 64) unless
        --force is given, as zkctl could not change the subtree's ACLs back. ip, x509 and sasl
        entries are not counted as this session's: zkctl cannot tell whether they match it.
        Exit 1 when the node does not exist, 75 on a version mismatch, 77 without admin permission.

        With --recursive, a node below PATH that this session may not read is left as it is with
        its subtree and named on stderr ('zkctl: PATH: not authorized, skipped'); the rest is
        changed and the exit code is 77 (0 with --skip-unreadable, which makes those lines
        warnings).
        """,
        examples: ["zkctl acl set /app world:anyone:r auth::cdrwa",
                   "zkctl acl set --recursive /app digest:admin:HASH:cdrwa world:anyone:r",
                   "zkctl acl set /app ip:10.0.0.0/8:cdrwa --if-version 2"],
        arguments: [pathArgument, ArgumentSpec("SPEC", help: "an ACL entry scheme:id:perms", variadic: true)],
        options: [
            ACLSetOptions.recursive.spec,
            ACLSetOptions.force.spec,
            ifVersionOption.spec,
            skipUnreadableOption.spec,
        ],
        jsonOutput: #"{"path", "acl", "updated"}: the ACL set and the number of znodes changed (text output prints nothing)"#,
        handler: runACLSet)

    /// Whether `acl` grants admin permission to an identity this session certainly has:
    /// world:anyone, auth:: (the session's authenticated users) when it has credentials, or the
    /// digest id of one of its credentials.
    static func grantsAdmin(_ acl: [ACL], credentials: [String]) -> Bool {
        let digests = Set(credentials.map { ACL.digestID(forCredential: $0) })
        return acl.contains { entry in
            guard entry.permissions.contains(.admin) else { return false }
            switch entry.scheme {
            case "world": return entry.id == "anyone"
            case "auth": return !credentials.isEmpty
            case "digest": return digests.contains(entry.id)
            default: return false
            }
        }
    }

    @Sendable static func runACLSet(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let acl: [ACL]
        do {
            acl = try Common.parseACL(Array(inv.arguments.dropFirst()))
        } catch let error as UsageError {
            throw UsageError(error.message, command: ["acl", "set"])
        }
        try checkAuthEntries(acl, inv, command: ["acl", "set"])
        if inv[skipUnreadableOption] && !inv[ACLSetOptions.recursive] {
            throw UsageError("--skip-unreadable only applies with --recursive", command: ["acl", "set"])
        }
        if inv[ACLSetOptions.force] && !inv[ACLSetOptions.recursive] {
            throw UsageError("--force only applies with --recursive", command: ["acl", "set"])
        }
        if inv[ACLSetOptions.recursive] && !inv[ACLSetOptions.force] && !grantsAdmin(acl, credentials: inv.settings.credentials) {
            throw UsageError("refusing to set on all of \(path) an ACL that gives this session no admin permission (it could not be undone); add --force to do it anyway",
                             command: ["acl", "set"])
        }
        let version = expectedVersion(inv)
        let zk = try await inv.connect()
        var updated = 1
        let unreadable = UnreadableNodes(inv)
        if inv[ACLSetOptions.recursive] {
            // Everything below PATH first (the walk needs read access), then PATH with the version
            // check, then the rest pipelined.
            var below: [String] = []
            var found = false
            let counter = ProgressCounter("nodes read")
            inv.showProgress("acl set", counter)
            try await zk.walk(path, maxInFlight: inv.maxInFlight, unreadable: unreadable.record) { level in
                for node in level where node.depth > 0 { below.append(node.path) }
                if level.contains(where: { $0.depth == 0 }) { found = true }
                counter.add(level.count)
            }
            guard found else { throw ZooKeeperError(.noNode, path: path) }
            try await zk.setACL(path, acl: acl, version: version)
            counter.start("ACLs set", total: below.count)
            let ops = below.map { Operation.setACL($0, acl: acl) }
            let answered = Mutex<[Result<OperationResult, ZooKeeperError>]>([])
            // The pipeline delivers in order.
            await zk.pipeline(ops, maxInFlight: inv.maxInFlight) { _, _, result in
                counter.add(1)
                answered.withLock { $0.append(result) }
            }
            var results = answered.withLock { $0 }
            // Answers lost with the connection: learn what became of them (setting the same ACL
            // again is harmless).
            let lost = results.indices.filter { if case .failure(let e) = results[$0] { e.code == .connectionLoss } else { false } }
            for (i, settled) in zip(lost, await zk.settleLostWrites(lost.map { ops[$0] })) { results[i] = settled }
            for result in results {
                switch result {
                case .success: updated += 1
                case .failure(let e) where e.code == .noNode: continue
                case .failure(let e): throw e
                }
            }
        } else {
            try await zk.setACL(path, acl: acl, version: version)
        }
        inv.endProgress()
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("path", .string(path)), ("acl", Common.aclJSON(acl)), ("updated", .int(updated))]))))
        return unreadable.exitCode(ExitCode.success)
    }
}
