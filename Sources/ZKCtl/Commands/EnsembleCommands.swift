import Foundation
import ZooKeeper
import ZooKeeperRecipes

extension CommandTable {
    static let ensembleCommands: [CommandSpec] = [ensembleCommand]

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
        examples: ["zkctl ensemble list", "zkctl ensemble can-restart 2 --wait 5m && systemctl restart zookeeper"],
        subcommands: [ensembleList, ensembleCanRestart])

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
            let text = raw.trimmingCharacters(in: .whitespaces)
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
}
