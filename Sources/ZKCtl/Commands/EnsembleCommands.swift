import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

extension CommandTable {
    static let ensembleCommands: [CommandSpec] = [ensembleCommand, metricsCommand, sessionsCommand]

    /// Options the probing commands share.
    enum ProbeOptions {
        static let adminPort = Option<Int?>(
            "admin-port", value: "PORT", range: 1...65535,
            help: "the members' AdminServer port, asked when a four-letter word is not allowed (default ZKCTL_ADMIN_PORT, else 8080)")
        static let maxLag = Option<Int?>("max-lag", value: "ZXIDS", range: 0...Int(Int32.max),
                                         help: "how many zxids behind the leader a member may be and still count as synced (default 1000)")
    }

    /// `--admin-port`, else `ZKCTL_ADMIN_PORT`, else 8080.
    static func adminPort(_ inv: Invocation) throws -> Int {
        if let port = inv[ProbeOptions.adminPort] { return port }
        if let text = ProcessInfo.processInfo.environment["ZKCTL_ADMIN_PORT"], !text.isEmpty {
            guard let port = Int(text), (1...65535).contains(port) else {
                throw UsageError("bad ZKCTL_ADMIN_PORT '\(text)': must be a port between 1 and 65535")
            }
            return port
        }
        return ServerProbe.defaultAdminPort
    }

    static func maxLag(_ inv: Invocation) -> UInt64 { UInt64(inv[ProbeOptions.maxLag] ?? 1000) }

    static let ensembleCommand = CommandSpec(
        "ensemble", summary: "list the members, change the membership, check a rolling restart",
        description: """
        The members are those of the ensemble's own configuration (/zookeeper/config). Each is
        probed with the four-letter word srvr on its client port or, where srvr is not allowed,
        through its AdminServer (--admin-port). A member's lag is how many zxids it is behind the
        leader.
        """,
        examples: ["zkctl ensemble list", "zkctl ensemble can-restart 2 --wait 5m && systemctl restart zookeeper",
                   "zkctl ensemble add 'server.4=zk4:2888:3888:observer;2181'"],
        subcommands: [ensembleList, ensembleCanRestart, ensembleAdd, ensembleRemove, ensembleSet])

    // MARK: Members

    /// One `server.N=` line of `/zookeeper/config`.
    struct Member: Sendable, Hashable {
        var id: Int
        var host: String
        var quorumPort: Int
        var electionPort: Int
        var role: String  // participant | observer
        var clientHost: String
        var clientPort: Int?
        /// The line as written, `server.N=...`.
        var line: String

        var address: String { "\(host):\(quorumPort):\(electionPort)" }
        var client: String? { clientPort.map { ConnectString.Server(host: clientHost, port: $0).description } }
        var isVoter: Bool { role != "observer" }

        /// Parses `server.N=host:quorum:election[:role][;[clienthost:]clientport]`.
        init?(line raw: String) {
            let text = raw.trimmingBlanks()
            guard text.hasPrefix("server."), let eq = text.firstIndex(of: "="),
                  let id = Int(text[text.index(text.startIndex, offsetBy: 7)..<eq]), id >= 0 else { return nil }
            let value = text[text.index(after: eq)...]
            let halves = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
            let quorum = halves[0].split(separator: ":", omittingEmptySubsequences: false)
            guard quorum.count == 3 || quorum.count == 4, !quorum[0].isEmpty,
                  let q = Int(quorum[1]), let e = Int(quorum[2]), (1...65535).contains(q), (1...65535).contains(e) else { return nil }
            let role = quorum.count == 4 ? String(quorum[3]) : "participant"
            guard role == "participant" || role == "observer" else { return nil }
            self.id = id
            self.host = String(quorum[0])
            self.quorumPort = q
            self.electionPort = e
            self.role = role
            self.clientHost = host
            self.clientPort = nil
            if halves.count == 2 {
                let client = halves[1]
                var portText = Substring(client)
                if let colon = client.lastIndex(of: ":") {
                    clientHost = String(client[..<colon])
                    portText = client[client.index(after: colon)...]
                }
                if clientHost == "0.0.0.0" || clientHost == "::" || clientHost.isEmpty { clientHost = host }
                guard let port = Int(portText), (1...65535).contains(port) else { return nil }
                clientPort = port
            }
            self.line = text
        }
    }

    /// `/zookeeper/config`: its members and its version (hex, as written there).
    struct EnsembleConfig: Sendable {
        var members: [Member]
        var version: String

        init(_ text: String) {
            members = text.split(whereSeparator: \.isNewline).compactMap { Member(line: String($0)) }
            version = text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("version=") }.map { String($0.dropFirst(8)) } ?? ""
        }

        var voters: [Member] { members.filter(\.isVoter) }
    }

    /// What one member said about itself.
    struct MemberState: Sendable {
        var member: Member
        var source: ServerProbe.Source?
        var fields: [String: String] = [:]
        var error: String?
        var reachable = false

        var mode: String {
            if let m = fields["Mode"] { return m }
            return reachable ? "not serving" : "down"
        }
        var isServing: Bool { ["leader", "follower", "observer", "standalone"].contains(fields["Mode"] ?? "") }
        var zxid: UInt64? { fields["Zxid"].flatMap { UInt64($0.hasPrefix("0x") ? String($0.dropFirst(2)) : $0, radix: 16) } }
    }

    static func readConfig(_ client: ZooKeeperClient) async throws -> EnsembleConfig {
        let (data, _) = try await client.getConfig()
        let config = EnsembleConfig(String(decoding: data, as: UTF8.self))
        guard !config.members.isEmpty else {
            throw CommandError.unavailable("/zookeeper/config names no members (a standalone server has no ensemble configuration)")
        }
        return config
    }

    /// Every member's srvr figures, at once, each within `timeout`.
    static func probeMembers(_ members: [Member], adminPort: Int, timeout: Duration) async -> [MemberState] {
        await withTaskGroup(of: (Int, MemberState).self) { group in
            for (i, m) in members.enumerated() {
                group.addTask {
                    var state = MemberState(member: m)
                    guard let port = m.clientPort else {
                        state.error = "no client port in its configuration line"
                        return (i, state)
                    }
                    switch await ServerProbe.serverStats(host: m.clientHost, port: port, adminPort: adminPort, timeout: timeout) {
                    case .success(let answer):
                        state.source = answer.source
                        state.fields = answer.fields
                        state.reachable = true
                    case .failure(let failure):
                        state.error = failure.message
                        state.reachable = failure.reachable
                    }
                    return (i, state)
                }
            }
            var out = members.map { MemberState(member: $0) }
            for await (i, s) in group { out[i] = s }
            return out
        }
    }

    static func leaderZxid(_ states: [MemberState]) -> UInt64? {
        states.first { $0.fields["Mode"] == "leader" }?.zxid
    }

    static func lag(_ state: MemberState, leader: UInt64?) -> UInt64? {
        guard let leader, let z = state.zxid else { return nil }
        return leader > z ? leader - z : 0
    }

    static func probeTimeout(_ inv: Invocation) -> Duration { min(inv.settings.timeout.value, .seconds(5)) }

    static func memberJSON(_ s: MemberState, leader: UInt64?, version: String) -> JSONValue {
        var o = JSONObject()
        o["id"] = .int(s.member.id)
        o["address"] = .string(s.member.address)
        o["role"] = .string(s.member.role)
        o["client"] = s.member.client.map { .string($0) } ?? .null
        o["mode"] = .string(s.mode)
        o["zxid"] = s.fields["Zxid"].map { .string($0) } ?? .null
        o["lag"] = lag(s, leader: leader).map { .int(Int(clamping: $0)) } ?? .null
        o["outstanding"] = s.fields["Outstanding"].flatMap { Int($0) }.map { .int($0) } ?? .null
        let latency = (s.fields["Latency min/avg/max"] ?? "").split(separator: "/").map(String.init)
        o["latency"] = latency.count == 3
            ? .object(JSONObject([("min", .number(latency[0])), ("avg", .number(latency[1])), ("max", .number(latency[2]))])) : .null
        o["source"] = s.source.map { .string($0.rawValue) } ?? .null
        o["configVersion"] = .string(version)
        o["error"] = s.error.map { .string($0) } ?? .null
        return .object(o)
    }

    // MARK: list

    static let ensembleList = CommandSpec(
        "list", aliases: ["ls"], summary: "every member, its role, mode, zxid and lag",
        description: """
        Reads /zookeeper/config and probes every member at once: mode (leader, follower,
        observer, or down / not serving), last zxid, lag behind the leader in zxids, outstanding
        requests and latency (min/avg/max ms), and which transport answered (4lw or
        admin-server). The first line is the configuration's version, which 'ensemble add',
        'remove' and 'set' take with --if-version. Exit 0 when every member serves, 69 when
        some member does not.
        """,
        examples: ["zkctl ensemble list", "zkctl -o json ensemble list | jq '.[] | select(.mode == \"leader\") | .id'"],
        options: [ProbeOptions.adminPort.spec],
        jsonOutput: """
        an array of members, each {"id", "address" (host:quorum:election), "role" (participant|observer), "client" (host:port),
        "mode" (leader|follower|observer|down|not serving), "zxid" (hex), "lag" (zxids behind the leader, null when
        unknown), "outstanding", "latency": {"min", "avg", "max"}, "source" (4lw|admin-server), "configVersion", "error"}
        """,
        handler: runEnsembleList)

    @Sendable static func runEnsembleList(_ inv: Invocation) async throws -> Int32 {
        let client = try await inv.connect()
        let config = try await readConfig(client)
        let states = await probeMembers(config.members, adminPort: try adminPort(inv), timeout: probeTimeout(inv))
        let leader = leaderZxid(states)
        inv.output.print(Printed(json: .array(states.map { memberJSON($0, leader: leader, version: config.version) })) { out in
            out.line("Config version: \(config.version)")
            let rows = states.map { s -> [String] in
                let mode = s.isServing ? s.mode : out.styled(s.mode, .red)
                return [String(s.member.id), s.member.address, s.member.role, s.member.client ?? "-", mode, s.fields["Zxid"] ?? "-",
                        lag(s, leader: leader).map(String.init) ?? "-", s.fields["Outstanding"] ?? "-",
                        s.fields["Latency min/avg/max"] ?? "-", s.source?.rawValue ?? "-", s.error ?? ""]
            }
            out.table(["ID", "ADDRESS", "ROLE", "CLIENT", "MODE", "ZXID", "LAG", "OUTSTANDING", "LATENCY", "SOURCE", "ERROR"], rows)
        })
        return states.allSatisfy(\.isServing) ? ExitCode.success : ExitCode.unavailable
    }

    // MARK: can-restart

    enum CanRestartOptions {
        static let wait = Option<Duration?>(duration: "wait", help: "poll (every second) until it is safe or this much time has passed")
    }

    static let ensembleCanRestart = CommandSpec(
        "can-restart", summary: "exit 0 when stopping a member now leaves a synced quorum",
        description: """
        Exit 0 when the member (its id, or its client host:port) may be stopped now: every other
        voting member serves, none is more than --max-lag zxids behind the leader, and the voters
        left (for the leader: its synced followers) still form a quorum. Exit 69 with the reason
        otherwise, 1 when no member matches. With --wait it asks again every second until it is
        safe or the time has passed. For rolling restarts, one member at a time, the leader last:
          zkctl ensemble can-restart 2 --wait 5m && systemctl restart zookeeper
        """,
        examples: ["zkctl ensemble can-restart 2", "zkctl ensemble can-restart zk3:2181 --wait 5m && ssh zk3 systemctl restart zookeeper"],
        arguments: [ArgumentSpec("MEMBER", help: "the member's id (server.N) or its client host:port")],
        options: [CanRestartOptions.wait.spec, ProbeOptions.maxLag.spec, ProbeOptions.adminPort.spec],
        jsonOutput: """
        {"member": id, "client", "mode", "safe": true|false, "reasons": [text] (why not), "voters", "votersLeft" (serving
        and synced voters once it stops), "needed" (a quorum), "syncedFollowers" (the leader's, null when unknown), "waitedMs"}
        """,
        handler: runCanRestart)

    struct RestartVerdict: Sendable {
        var member: Member
        var mode: String
        var reasons: [String]
        var voters: Int
        var left: Int
        var needed: Int
        var syncedFollowers: Int?
    }

    static func restartVerdict(_ target: String, client: ZooKeeperClient, adminPort: Int, timeout: Duration, maxLag: UInt64) async throws -> RestartVerdict {
        let config = try await readConfig(client)
        let member = config.members.first { String($0.id) == target }
            ?? config.members.first { $0.client == target || "\($0.clientHost):\($0.clientPort ?? 0)" == target || "\($0.host):\($0.clientPort ?? 0)" == target }
        guard let member else {
            throw CommandError.notFound("no member '\(target)' in the ensemble (members: \(config.members.map { "\($0.id)" }.joined(separator: ", ")))")
        }
        let states = await probeMembers(config.members, adminPort: adminPort, timeout: timeout)
        let leaderState = states.first { $0.fields["Mode"] == "leader" }
        let leader = leaderState?.zxid
        let voters = config.voters
        let needed = voters.count / 2 + 1
        var reasons: [String] = []
        var left = 0
        for s in states where s.member.isVoter && s.member.id != member.id {
            let name = "member \(s.member.id) (\(s.member.client ?? s.member.host))"
            if !s.isServing {
                reasons.append("\(name) is \(s.mode)\(s.error.map { ": \($0)" } ?? "")")
            } else if let l = lag(s, leader: leader), l > maxLag {
                reasons.append("\(name) is \(l) zxids behind the leader")
            } else {
                left += 1
            }
        }
        if leaderState == nil { reasons.append("no member leads") }
        // The leader's own count of the followers that are synced with it.
        var synced: Int?
        if let leaderState, let port = leaderState.member.clientPort,
           case .success(let answer) = await ServerProbe.monitor(host: leaderState.member.clientHost, port: port, adminPort: adminPort, timeout: timeout) {
            synced = answer.fields["synced_followers"].flatMap { Int($0) }
        }
        if member.isVoter && left < needed {
            reasons.append("\(left) of \(voters.count) voters would be left serving and synced, a quorum needs \(needed)")
        }
        if let synced, let leaderState, member.isVoter, member.id != leaderState.member.id {
            let target = states.first { $0.member.id == member.id }
            let targetSynced = target.map { $0.isServing && (lag($0, leader: leader) ?? 0) <= maxLag } ?? false
            let after = synced - (targetSynced ? 1 : 0) + 1
            if after < needed { reasons.append("the leader has \(synced) synced follower\(synced == 1 ? "" : "s"); without this one \(after) of \(voters.count) voters stay synced, a quorum needs \(needed)") }
        }
        let mode = states.first { $0.member.id == member.id }?.mode ?? "down"
        return RestartVerdict(member: member, mode: mode, reasons: reasons, voters: voters.count, left: left, needed: needed, syncedFollowers: synced)
    }

    @Sendable static func runCanRestart(_ inv: Invocation) async throws -> Int32 {
        let target = inv.argument(0) ?? ""
        let port = try adminPort(inv)
        let client = try await inv.connect()
        let started = ContinuousClock.now
        let deadline = inv[CanRestartOptions.wait].map { started + $0 }
        var verdict: RestartVerdict
        var rounds = 0
        while true {
            rounds += 1
            do {
                verdict = try await restartVerdict(target, client: client, adminPort: port, timeout: probeTimeout(inv), maxLag: maxLag(inv))
            } catch let error as CommandError {
                throw error
            } catch let error as ZooKeeperError where deadline != nil && error.code.isConnectionProblem {
                // No answer for now (a member restarting): ask again until the wait is over.
                guard let deadline, ContinuousClock.now + .seconds(1) < deadline else { throw error }
                try await Task.sleep(for: .seconds(1))
                continue
            }
            guard !verdict.reasons.isEmpty, let deadline, ContinuousClock.now + .seconds(1) < deadline, rounds < 100_000 else { break }
            try await Task.sleep(for: .seconds(1))
        }
        let waited = (ContinuousClock.now - started).milliseconds
        let safe = verdict.reasons.isEmpty
        let v = verdict
        var o = JSONObject()
        o["member"] = .int(v.member.id)
        o["client"] = v.member.client.map { .string($0) } ?? .null
        o["mode"] = .string(v.mode)
        o["safe"] = .bool(safe)
        o["reasons"] = .array(v.reasons.map { .string($0) })
        o["voters"] = .int(v.voters)
        o["votersLeft"] = .int(v.left)
        o["needed"] = .int(v.needed)
        o["syncedFollowers"] = v.syncedFollowers.map { .int($0) } ?? .null
        o["waitedMs"] = .int(Int(waited))
        let name = "member \(v.member.id) (\(v.member.client ?? v.member.host), \(v.mode))"
        if safe {
            inv.output.print(Printed(json: .object(o), lines: [
                "\(name) can be restarted: \(v.left) of \(v.voters) voters stay serving and synced, a quorum needs \(v.needed)"]))
            return ExitCode.success
        }
        inv.output.print(Printed.silentInText(json: .object(o)))
        let after = deadline == nil ? "" : " after waiting \(waited) ms"
        inv.output.error("\(name) cannot be restarted now\(after): \(v.reasons.joined(separator: "; "))")
        return ExitCode.unavailable
    }

    // MARK: add / remove / set

    enum ReconfigOptions {
        static let ifVersion = Option<String?>("if-version", value: "VERSION",
                                               help: "change only if /zookeeper/config is still at this version (hex, as 'ensemble list' shows it)")
        static let dryRun = Option<Bool>(flag: "dry-run", help: "print the change and the quorum before and after; change nothing")
        static let force = Option<Bool>(flag: "force", help: "change even when the members up now would not form a quorum, or a new member is down or behind")
    }

    static let reconfigOptions: [OptionSpec] = [
        ReconfigOptions.ifVersion.spec, ReconfigOptions.dryRun.spec, ReconfigOptions.force.spec,
        ProbeOptions.maxLag.spec, ProbeOptions.adminPort.spec,
    ]

    static let reconfigDescription = """
    The change goes through ZooKeeper's reconfig. It is refused (exit 75, with the reason) when
    the voting members that serve now would not form a quorum of the new membership, or when a
    member it adds or promotes is not running or is more than --max-lag zxids behind the leader;
    --force sends it anyway. --if-version V changes only a configuration still at version V (a
    stale one exits 75); --dry-run prints the change and the quorum before and after and changes
    nothing. The server needs reconfigEnabled=true (else exit 69) and lets only a superuser
    (zookeeper.DigestAuthenticationProvider.superDigest, then --auth) or every client with
    skipACL=yes reconfigure (else exit 77). Prints the new configuration. When the answer is lost
    (a change that moves the leader closes its connections), zkctl reads the configuration again
    once the session is back and reports the change when it took effect (exit 69 when it cannot
    tell).
    """

    static let reconfigJSON = """
    {"changed": true|false (false with --dry-run), "version" (the new configuration's, hex), "previousVersion", "members":
    [{"id", "address", "role", "client"}], "before": {"voters", "serving", "needed"}, "after": {"voters", "serving", "needed"},
    "joining": [lines], "leaving": [ids]}
    """

    static let ensembleAdd = CommandSpec(
        "add", summary: "add members, or change a member's role or addresses",
        description: """
        Adds each SERVER (server.N=host:quorum:election[:role];[client-host:]client-port) to the
        ensemble; a SERVER whose id is a member already replaces its line, which is how an
        observer is promoted to a participant. Start the new server first, configured with the
        current members and itself.
        """ + "\n\n" + reconfigDescription,
        examples: ["zkctl ensemble add 'server.4=zk4:2888:3888:observer;2181'",
                   "zkctl ensemble add 'server.4=zk4:2888:3888:participant;2181' --if-version 100000003"],
        arguments: [ArgumentSpec("SERVER", help: "a server line server.N=host:quorum:election[:role];[client-host:]client-port", variadic: true)],
        options: reconfigOptions, jsonOutput: reconfigJSON, handler: runEnsembleAdd)

    static let ensembleRemove = CommandSpec(
        "remove", aliases: ["rm"], summary: "remove members by id",
        description: "Removes each member ID (the N of server.N) from the ensemble.\n\n" + reconfigDescription,
        examples: ["zkctl ensemble remove 3", "zkctl ensemble remove 4 5 --dry-run"],
        arguments: [ArgumentSpec("ID", help: "a member's id", type: .int(0...Int(Int32.max)), variadic: true)],
        options: reconfigOptions, jsonOutput: reconfigJSON, handler: runEnsembleRemove)

    static let ensembleSet = CommandSpec(
        "set", summary: "replace the whole membership with the server lines of FILE",
        description: """
        Makes the membership exactly the server.N= lines of FILE (- for stdin), one a line; blank
        lines, lines starting with # and a version= line are skipped.
        """ + "\n\n" + reconfigDescription,
        examples: ["zkctl ensemble set members.cfg --dry-run", "zkctl -o json ensemble list | jq -r ... | zkctl ensemble set -"],
        arguments: [ArgumentSpec("FILE", help: "the new membership, one server line a line (- for stdin)", completion: .file)],
        options: reconfigOptions, jsonOutput: reconfigJSON, handler: runEnsembleSet)

    enum ReconfigChange {
        case incremental(joining: [Member], leaving: [Int])
        case whole([Member])
    }

    @Sendable static func runEnsembleAdd(_ inv: Invocation) async throws -> Int32 {
        var joining: [Member] = []
        for text in inv.arguments {
            guard let m = Member(line: text), m.clientPort != nil else {
                throw UsageError("bad server line '\(text)': expected server.N=host:quorum:election[:participant|observer];[client-host:]client-port")
            }
            joining.append(m)
        }
        return try await reconfigure(inv, .incremental(joining: joining, leaving: []))
    }

    @Sendable static func runEnsembleRemove(_ inv: Invocation) async throws -> Int32 {
        let ids = inv.arguments.compactMap { Int($0) }
        return try await reconfigure(inv, .incremental(joining: [], leaving: ids))
    }

    @Sendable static func runEnsembleSet(_ inv: Invocation) async throws -> Int32 {
        let name = inv.argument(0) ?? "-"
        let text = String(decoding: try Common.readInput(name), as: UTF8.self)
        var members: [Member] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("version=") { continue }
            guard let m = Member(line: line) else { throw CommandError.badData("\(name), line \(n + 1): not a server line: \(line)") }
            members.append(m)
        }
        guard !members.isEmpty else { throw CommandError.badData("\(name): no server lines") }
        return try await reconfigure(inv, .whole(members))
    }

    static func reconfigure(_ inv: Invocation, _ change: ReconfigChange) async throws -> Int32 {
        let port = try adminPort(inv)
        var version: Int64 = -1
        if let text = inv[ReconfigOptions.ifVersion] {
            let hex = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text
            guard let v = Int64(hex, radix: 16) else { throw UsageError("bad --if-version '\(text)': expected the hex version 'ensemble list' shows") }
            version = v
        }
        let client = try await inv.connect()
        let before = try await readConfig(client)

        // The membership after the change.
        var after = before.members
        var joiningLines: [String] = []
        var leavingIDs: [Int] = []
        var added: [Member] = []  // new members, and observers made participants
        switch change {
        case .incremental(let joining, let leaving):
            for id in leaving where !before.members.contains(where: { $0.id == id }) {
                throw CommandError.notFound("no member \(id) in the ensemble (members: \(before.members.map { "\($0.id)" }.joined(separator: ", ")))")
            }
            after.removeAll { leaving.contains($0.id) }
            for m in joining {
                if let i = after.firstIndex(where: { $0.id == m.id }) {
                    if m.isVoter && !after[i].isVoter { added.append(m) }
                    after[i] = m
                } else {
                    after.append(m)
                    added.append(m)
                }
            }
            joiningLines = joining.map(\.line)
            leavingIDs = leaving
        case .whole(let members):
            for m in members {
                let old = before.members.first { $0.id == m.id }
                if old == nil || (m.isVoter && !(old?.isVoter ?? false)) { added.append(m) }
            }
            after = members
        }

        // Who serves now, old members and new.
        var everyone = before.members
        for m in after where !everyone.contains(where: { $0.id == m.id && $0.client == m.client }) { everyone.append(m) }
        let states = await probeMembers(everyone, adminPort: port, timeout: probeTimeout(inv))
        let leader = leaderZxid(states)
        func serving(_ m: Member) -> MemberState? { states.first { $0.member.client == m.client && $0.isServing } }
        let votersBefore = before.voters, votersAfter = after.filter(\.isVoter)
        let servingBefore = votersBefore.filter { serving($0) != nil }.count
        let servingAfter = votersAfter.filter { serving($0) != nil }.count
        let neededBefore = votersBefore.count / 2 + 1, neededAfter = votersAfter.count / 2 + 1

        var refusals: [String] = []
        if votersAfter.isEmpty { refusals.append("the new membership has no voting member") }
        if servingAfter < neededAfter {
            refusals.append("the members up now would not form a quorum: \(servingAfter) of the \(votersAfter.count) voters after the change serve, a quorum needs \(neededAfter)")
        }
        for m in added {
            let name = "member \(m.id) (\(m.client ?? m.host))"
            guard let s = serving(m) else { refusals.append("\(name) is not running: start it first"); continue }
            if let l = lag(s, leader: leader), l > maxLag(inv) { refusals.append("\(name) is \(l) zxids behind the leader") }
        }

        func quorumJSON(_ voters: Int, _ up: Int, _ needed: Int) -> JSONValue {
            .object(JSONObject([("voters", .int(voters)), ("serving", .int(up)), ("needed", .int(needed))]))
        }
        func membersJSON(_ ms: [Member]) -> JSONValue {
            .array(ms.map { m in .object(JSONObject([("id", .int(m.id)), ("address", .string(m.address)), ("role", .string(m.role)),
                                                      ("client", m.client.map { .string($0) } ?? .null)])) })
        }
        func result(changed: Bool, version newVersion: String, members: [Member]) -> Printed {
            var o = JSONObject()
            o["changed"] = .bool(changed)
            o["version"] = .string(newVersion)
            o["previousVersion"] = .string(before.version)
            o["members"] = membersJSON(members)
            o["before"] = quorumJSON(votersBefore.count, servingBefore, neededBefore)
            o["after"] = quorumJSON(votersAfter.count, servingAfter, neededAfter)
            if case .incremental = change {
                o["joining"] = .array(joiningLines.map { .string($0) })
                o["leaving"] = .array(leavingIDs.map { .int($0) })
            }
            return Printed(json: .object(o)) { out in
                if !changed {
                    out.line("Dry run: nothing changed.")
                    for m in before.members where !after.contains(m) { out.line("  - \(m.line)") }
                    for m in after where !before.members.contains(m) { out.line("  + \(m.line)") }
                    out.line("Quorum before: \(servingBefore) of \(votersBefore.count) voters serving, needs \(neededBefore)")
                    out.line("Quorum after:  \(servingAfter) of \(votersAfter.count) voters serving, needs \(neededAfter)")
                    for r in refusals { out.line("Would be refused: \(r)") }
                } else {
                    out.line("Config version: \(newVersion) (was \(before.version))")
                    for m in members { out.line(m.line) }
                }
            }
        }

        if inv[ReconfigOptions.dryRun] {
            inv.output.print(result(changed: false, version: before.version, members: after))
            return ExitCode.success
        }
        if !refusals.isEmpty && !inv[ReconfigOptions.force] {
            throw CommandError.conflict("refusing the change (--force to make it anyway): " + refusals.joined(separator: "; "))
        }
        let reply: (data: Data, stat: Stat)
        do {
            switch change {
            case .incremental:
                reply = try await client.reconfig(joining: joiningLines, leaving: leavingIDs.map(String.init), version: version)
            case .whole(let members):
                reply = try await client.reconfig(members: members.map(\.line), version: version)
            }
        } catch let error as ZooKeeperError where error.code.isConnectionProblem {
            // The reply was lost (a reconfig that moves the leader, or drops the member this
            // session is on, closes connections): whether it happened shows in the configuration
            // once the session is back.
            guard let now = await settledConfig(client, expecting: after, within: inv.settings.timeout.value) else {
                throw CommandError.unavailable("\(ExitCode.message(for: error)); the reconfig may or may not have happened: check with 'zkctl ensemble list'")
            }
            inv.output.print(result(changed: true, version: now.version, members: now.members))
            return ExitCode.success
        } catch let error as ZooKeeperError {
            throw await reconfigError(error, client: client, asked: inv[ReconfigOptions.ifVersion])
        }
        let now = EnsembleConfig(String(decoding: reply.data, as: UTF8.self))
        inv.output.print(result(changed: true, version: now.version, members: now.members))
        return ExitCode.success
    }

    /// The configuration once it has the membership `expected`, read again (bounded by `within`)
    /// until the session answers; nil when it does not, or shows another membership.
    static func settledConfig(_ client: ZooKeeperClient, expecting expected: [Member], within: Duration) async -> EnsembleConfig? {
        func key(_ m: Member) -> String { "\(m.id) \(m.address) \(m.role) \(m.client ?? "")" }
        let want = Set(expected.map(key))
        let deadline = ContinuousClock.now + within
        for _ in 0..<1000 where ContinuousClock.now < deadline {
            if let config = try? await readConfig(client) {
                if Set(config.members.map(key)) == want { return config }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    /// The one line for a refused reconfig, saying what the server needs.
    static func reconfigError(_ error: ZooKeeperError, client: ZooKeeperClient, asked: String?) async -> Error {
        switch error.code {
        case .reconfigDisabled:
            return CommandError.unavailable("the server does not allow reconfig: every member needs reconfigEnabled=true in its zoo.cfg")
        case .notAuthorized:
            return CommandError(ExitCode.notAuthorized, "not authorized to reconfigure: the server lets only a superuser (zookeeper.DigestAuthenticationProvider.superDigest; give its credentials with --auth) or, with skipACL=yes, every client do it")
        case .badVersion:
            let current = (try? await readConfig(client))?.version ?? "?"
            return CommandError.conflict("the configuration is at version \(current), not \(asked ?? "the one asked for"): read it again ('zkctl ensemble list') and retry")
        case ZooKeeperError.Code(rawValue: -13):  // ZNEWCONFIGNOQUORUM
            return CommandError.unavailable("the new configuration has no quorum of members connected and synced with the leader: start the new members first")
        case ZooKeeperError.Code(rawValue: -14):  // ZRECONFIGINPROGRESS
            return CommandError.conflict("another reconfig is in progress: try again when it is done")
        default:
            return error
        }
    }
}
