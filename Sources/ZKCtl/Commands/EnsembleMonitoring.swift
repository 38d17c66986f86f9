import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

// `metrics` and `sessions`: what every member reports about itself, through the four-letter words
// or the AdminServer (ServerProbe).
extension CommandTable {
    /// The servers to ask: the members of /zookeeper/config when a session can read it, else the
    /// connect string's servers (a standalone server, or no quorum; and with --tls, as
    /// /zookeeper/config names the members' plain client ports, not their secure ones).
    /// `ownSession` is the session zkctl opened to read the configuration, if any.
    static func monitoredServers(_ inv: Invocation) async -> (servers: [ConnectString.Server], ownSession: String?) {
        let fromConnectString = (try? ConnectString(parsing: inv.settings.servers.value).servers) ?? []
        if inv.settings.tls != nil {
            let own = (try? await inv.connect()).map { hexText($0.sessionID) }
            return (fromConnectString, own)
        }
        // A quick look first: when no server answers at all there is no session to wait for.
        let probes = await FourLetterWord.probe(fromConnectString, timeout: probeTimeout(inv))
        guard probes.contains(where: { if case .unreachable = $0.outcome { return false }; return true }) else { return (fromConnectString, nil) }
        guard let client = try? await inv.connect() else { return (fromConnectString, nil) }
        let own = hexText(client.sessionID)
        guard let config = try? await readConfig(client) else { return (fromConnectString, own) }
        var out: [ConnectString.Server] = []
        for m in config.members {
            guard let port = m.clientPort else { continue }
            let s = ConnectString.Server(host: m.clientHost, port: port)
            if !out.contains(s) { out.append(s) }
        }
        return (out.isEmpty ? fromConnectString : out, own)
    }

    /// Where the owners of ephemeral nodes are connected: each session's client address and
    /// member, for the sessions some member's connection list (cons, or the AdminServer's
    /// connections) names, and why a member did not say. Every member is asked once, at once,
    /// however many sessions are looked for.
    struct SessionOwners: Sendable {
        struct Owner: Sendable, Hashable {
            var client: String
            var member: String
        }
        var owners: [Int64: Owner] = [:]
        /// `member: reason`, for members that gave no connection list.
        var failures: [String] = []
        /// How many members gave one.
        var answered = 0
    }

    /// The owners of `sessions` (ephemeralOwner values; 0 is left out), through the members of
    /// /zookeeper/config (the connect string's servers with --tls, or when it cannot be read).
    /// stat, lock --status and service discover --owners have no --admin-port: the AdminServer's
    /// port is the environment's, else the default.
    static func ephemeralOwners(_ inv: Invocation, client: ZooKeeperClient, sessions: Set<Int64>) async -> SessionOwners {
        let wanted = Dictionary(uniqueKeysWithValues: sessions.filter { $0 != 0 }.map { (hexText($0), $0) })
        guard !wanted.isEmpty else { return SessionOwners() }
        var servers: [ConnectString.Server] = []
        if inv.settings.tls == nil, let config = try? await readConfig(client) {
            for m in config.members {
                guard let port = m.clientPort else { continue }
                let s = ConnectString.Server(host: m.clientHost, port: port)
                if !servers.contains(s) { servers.append(s) }
            }
        }
        if servers.isEmpty { servers = (try? ConnectString(parsing: inv.settings.servers.value).servers) ?? [] }
        let port = ProcessInfo.processInfo.environment["ZKCTL_ADMIN_PORT"].flatMap { Int($0) }.flatMap { (1...65535).contains($0) ? $0 : nil }
            ?? ServerProbe.defaultAdminPort
        let timeout = probeTimeout(inv)
        let tls = inv.settings.tls
        let answers = await withTaskGroup(of: (Int, Result<[ServerProbe.Connection], ServerProbe.Failure>).self) { group in
            for (i, s) in servers.enumerated() {
                group.addTask {
                    (i, await ServerProbe.connections(host: s.host, port: s.port, adminPort: port, timeout: timeout, tls: tls).map(\.connections))
                }
            }
            var out = [Result<[ServerProbe.Connection], ServerProbe.Failure>?](repeating: nil, count: servers.count)
            for await (i, r) in group { out[i] = r }
            return out
        }
        var found = SessionOwners()
        for (s, answer) in zip(servers, answers) {
            switch answer {
            case .success(let connections):
                found.answered += 1
                for c in connections {
                    guard let id = c.sessionID, let session = wanted[id], found.owners[session] == nil else { continue }
                    found.owners[session] = SessionOwners.Owner(client: c.client, member: s.description)
                }
            case .failure(let f):
                found.failures.append("\(s): \(f.message)")
            case nil:
                break
            }
        }
        return found
    }

    /// The client address of session `session` and the member it is connected to, when some
    /// member's connection list names it.
    static func ephemeralOwner(_ inv: Invocation, client: ZooKeeperClient, session: Int64) async -> (client: String, member: String)? {
        (await ephemeralOwners(inv, client: client, sessions: [session]).owners[session]).map { ($0.client, $0.member) }
    }

    // MARK: metrics

    static let metricsCommand = CommandSpec(
        "metrics", summary: "every member's monitoring figures (mntr, else the AdminServer)",
        description: """
        Asks every member (of /zookeeper/config, else of the connect string) for its monitoring
        figures: the four-letter word mntr where the server allows it, else the AdminServer's
        /commands/monitor on --admin-port. Says per member which source answered, and what to
        allow when neither did. The AdminServer is asked over HTTPS with --tls (verified by
        --tls-ca as the client port is; plain HTTP only when its port does not speak TLS at
        all), else over plain HTTP, and over HTTPS when its port serves only HTTPS
        (admin.forceHttps=true), verified with the system's CAs. status and sessions ask it the
        same way. The names are mntr's without the zk_ prefix.
        -o prometheus prints the text exposition format, one sample a line with a server label,
        for node_exporter's textfile collector: latency summaries as ZooKeeper's Prometheus
        provider names them (name{quantile="0.5"}, name_count, name_sum; a summary kept per
        learner or per top-level znode with a key label, learner_handler_qp_size{key="2"}), text
        figures as labels of zookeeper_server_info, and zkctl_member_up 1 or 0 per member. Exit 0 when every
        member answered, 69 when none did; a member that did not answer is named on stderr.
        """,
        examples: ["zkctl metrics", "zkctl metrics -o prometheus > /var/lib/node_exporter/zookeeper.prom",
                   "zkctl -o json metrics | jq '.[] | {server, znode_count: .metrics.znode_count}'"],
        options: [ProbeOptions.adminPort.spec],
        jsonOutput: """
        an array, one per member: {"server" (host:port), "source" (4lw|admin-server, null when neither answered), "error",
        "metrics": {name: number or text}}
        """,
        handler: runMetrics)

    struct MemberMetrics: Sendable {
        var server: String
        var source: ServerProbe.Source?
        var error: String?
        var fields: [String: String]
    }

    @Sendable static func runMetrics(_ inv: Invocation) async throws -> Int32 {
        let port = try adminPort(inv)
        let timeout = probeTimeout(inv)
        let tls = inv.settings.tls
        let servers = await monitoredServers(inv).servers
        let results = await withTaskGroup(of: (Int, MemberMetrics).self) { group in
            for (i, s) in servers.enumerated() {
                group.addTask {
                    switch await ServerProbe.monitor(host: s.host, port: s.port, adminPort: port, timeout: timeout, tls: tls) {
                    case .success(let a): return (i, MemberMetrics(server: s.description, source: a.source, fields: a.fields))
                    case .failure(let f): return (i, MemberMetrics(server: s.description, error: f.message, fields: [:]))
                    }
                }
            }
            var out = servers.map { MemberMetrics(server: $0.description, fields: [:]) }
            for await (i, m) in group { out[i] = m }
            return out
        }
        inv.output.print(MetricsResult(members: results))
        for m in results { if let e = m.error { inv.output.error("\(m.server): \(e)") } }
        return results.contains { $0.source != nil } ? ExitCode.success : ExitCode.unavailable
    }

    struct MetricsResult: Printable {
        var members: [MemberMetrics]

        var json: JSONValue {
            .array(members.map { m in
                var metrics = JSONObject()
                for key in m.fields.keys.sorted() {
                    let v = m.fields[key]!
                    metrics[key] = Double(v) != nil && !v.hasPrefix("0x") ? .number(v) : .string(v)
                }
                return .object(JSONObject([("server", .string(m.server)), ("source", m.source.map { .string($0.rawValue) } ?? .null),
                                           ("error", m.error.map { .string($0) } ?? .null), ("metrics", .object(metrics))]))
            })
        }

        func text(into out: Output) {
            // No member answered: stderr says why, and there is no table to show.
            guard members.contains(where: { $0.source != nil }) else { return }
            let names = Set(members.flatMap { $0.fields.keys }).sorted()
            var rows: [[String]] = [["source"] + members.map { $0.source?.rawValue ?? "-" }]
            // The version without its build details, as status shows it (JSON keeps it whole).
            for name in names {
                rows.append([name] + members.map { m in
                    guard let v = m.fields[name] else { return "-" }
                    return name == "version" ? String(v.prefix { $0 != "-" && $0 != "," }) : v
                })
            }
            out.table(["METRIC"] + members.map(\.server), rows)
        }

        var prometheus: String? {
            // Families in name order, each with its samples for every member together.
            var families: [String: (type: String, samples: [String])] = [:]
            func add(_ family: String, _ type: String, _ sample: String) {
                families[family, default: (type, [])].samples.append(sample)
            }
            for m in members {
                let server = "server=\"\(Self.label(m.server))\""
                add("zkctl_member_up", "gauge", "zkctl_member_up{\(server)} \(m.source == nil ? 0 : 1)")
                var info: [String] = []
                // In name order, but a family's 0.999 quantile after its 0.99 one.
                let order = { (key: String) in key.hasPrefix("p999_") ? "p99_\u{7f}" + key.dropFirst(5) : key }
                for key in m.fields.keys.sorted(by: { order($0) < order($1) }) {
                    let value = m.fields[key]!
                    guard Double(value) != nil, !value.hasPrefix("0x") else {
                        info.append("\(Self.name(key))=\"\(Self.label(value))\"")
                        continue
                    }
                    let (family, type, sample) = Self.sample(key, server: server, value: value)
                    add(family, type, sample)
                }
                if !info.isEmpty { add("zookeeper_server_info", "gauge", "zookeeper_server_info{\(([server] + info).joined(separator: ","))} 1") }
            }
            var text = ""
            for family in families.keys.sorted() {
                let f = families[family]!
                text += "# TYPE \(family) \(f.type)\n"
                for s in f.samples { text += s + "\n" }
            }
            return text
        }

        /// ZooKeeper 3.8's summary sets: one summary per key (a learner's id, a top-level znode),
        /// which mntr names `<stat>_<key>_<set>` and the Prometheus provider `<set>{key="<key>"}`.
        static let summarySets = ["learner_handler_qp_size", "learner_handler_qp_time_ms", "write_per_namespace",
                                  "read_per_namespace", "ack_latency"]

        /// mntr's `p99_x` -> `x{quantile="0.99"}`, `cnt_x` -> `x_count`, `sum_x` -> `x_sum` (a summary
        /// family `x`, as ZooKeeper's Prometheus provider names it), and a summary set's
        /// `p99_<key>_x` -> `x{key="<key>",quantile="0.99"}`; anything else as it is.
        static func sample(_ key: String, server: String, value: String) -> (String, String, String) {
            let quantiles = [("p50_", "0.5"), ("p95_", "0.95"), ("p99_", "0.99"), ("p999_", "0.999")]
            let parts: [(prefix: String, suffix: String, quantile: String?)] =
                quantiles.map { ($0.0, "", $0.1) } + [("cnt_", "_count", nil), ("sum_", "_sum", nil)]
            for part in parts where key.hasPrefix(part.prefix) {
                var rest = String(key.dropFirst(part.prefix.count))
                var labels = server
                if let (set, setKey) = inSummarySet(rest) {
                    labels += ",key=\"\(label(setKey))\""
                    rest = set
                }
                let family = name(rest)
                if let q = part.quantile { labels += ",quantile=\"\(q)\"" }
                return (family, "summary", "\(family)\(part.suffix){\(labels)} \(value)")
            }
            for stat in ["avg_", "min_", "max_"] where key.hasPrefix(stat) {
                if let (set, setKey) = inSummarySet(String(key.dropFirst(stat.count))) {
                    let family = name(stat + set)
                    return (family, "untyped", "\(family){\(server),key=\"\(label(setKey))\"} \(value)")
                }
            }
            let n = name(key)
            return (n, "untyped", "\(n){\(server)} \(value)")
        }

        /// `<key>_<set>` for one of `summarySets`: the set and the key.
        static func inSummarySet(_ name: String) -> (set: String, key: String)? {
            guard let set = summarySets.first(where: { name.count > $0.count + 1 && name.hasSuffix("_" + $0) }) else { return nil }
            return (set, String(name.dropLast(set.count + 1)))
        }

        /// A metric or label name: letters, digits and `_` only.
        static func name(_ key: String) -> String {
            var s = String(key.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
            if let first = s.first, first.isNumber { s = "_" + s }
            return s
        }

        /// A label value with `\`, `"` and newlines escaped.
        static func label(_ value: String) -> String {
            value.replacingEveryScalar("\\", with: "\\\\").replacingEveryScalar("\"", with: "\\\"")
                .replacingEveryScalar("\n", with: "\\n")
        }
    }

    // MARK: sessions

    static let sessionsCommand = CommandSpec(
        "sessions", summary: "every client session the members report, with its ephemeral nodes",
        description: """
        Asks every member (of /zookeeper/config, else of the connect string) for its client
        connections (the four-letter word cons, else the AdminServer's connections) and the
        leader for the sessions that own ephemeral nodes (dump, else the AdminServer's dump):
        session id, client address, the member it is connected to, its last operation and its
        ephemeral nodes. zkctl's own connections (its probes, and the session that read the
        configuration) are left out.
        Exit 0 when every member answered, 69 when none did; a member that did not answer is
        named on stderr.
        """,
        examples: ["zkctl sessions", "zkctl -o json sessions | jq '.[] | select(.ephemerals > 0)'"],
        options: [ProbeOptions.adminPort.spec],
        jsonOutput: """
        an array of sessions: {"sessionId" (hex), "client" (host:port), "member" (host:port), "lastOperation", "received",
        "sent", "queued", "timeoutMs", "ephemerals" (a count, null when no member said), "ephemeralPaths": [paths], "source"}
        """,
        handler: runSessions)

    @Sendable static func runSessions(_ inv: Invocation) async throws -> Int32 {
        let port = try adminPort(inv)
        let timeout = probeTimeout(inv)
        let tls = inv.settings.tls
        let (servers, ownSession) = await monitoredServers(inv)
        typealias Answer = (connections: Result<(source: ServerProbe.Source, connections: [ServerProbe.Connection]), ServerProbe.Failure>,
                            ephemerals: [String: [String]]?)
        let answers = await withTaskGroup(of: (Int, Answer).self) { group in
            for (i, s) in servers.enumerated() {
                group.addTask {
                    async let cons = ServerProbe.connections(host: s.host, port: s.port, adminPort: port, timeout: timeout, tls: tls)
                    async let dump = ServerProbe.ephemerals(host: s.host, port: s.port, adminPort: port, timeout: timeout, tls: tls)
                    return (i, (await cons, try? await dump.get()))
                }
            }
            var out = [Answer?](repeating: nil, count: servers.count)
            for await (i, a) in group { out[i] = a }
            return out.compactMap { $0 }
        }
        // Only the leader lists ephemerals; a follower's dump has none: merge them all.
        var ephemerals: [String: [String]]?
        for a in answers { if let e = a.ephemerals { ephemerals = (ephemerals ?? [:]).merging(e) { Array(Set($0 + $1)).sorted() } } }
        var rows: [JSONValue] = []
        var text: [[String]] = []
        var answered = 0
        for (server, a) in zip(servers, answers) {
            switch a.connections {
            case .failure(let f):
                inv.output.error("\(server): \(f.message)")
            case .success(let got):
                answered += 1
                for c in got.connections {
                    guard let id = c.sessionID, id != ownSession else { continue }
                    let paths = ephemerals.map { $0[id] ?? [] }
                    var o = JSONObject()
                    o["sessionId"] = .string(id)
                    o["client"] = .string(c.client)
                    o["member"] = .string(server.description)
                    o["lastOperation"] = c.lastOperation.map { .string($0) } ?? .null
                    o["received"] = c.received.map { .int($0) } ?? .null
                    o["sent"] = c.sent.map { .int($0) } ?? .null
                    o["queued"] = c.queued.map { .int($0) } ?? .null
                    o["timeoutMs"] = c.timeoutMs.map { .int($0) } ?? .null
                    o["ephemerals"] = paths.map { .int($0.count) } ?? .null
                    o["ephemeralPaths"] = .array((paths ?? []).map { .string($0) })
                    o["source"] = .string(got.source.rawValue)
                    rows.append(.object(o))
                    text.append([id, c.client, server.description, c.lastOperation ?? "-", paths.map { String($0.count) } ?? "-",
                                 (paths ?? []).joined(separator: " ")])
                }
            }
        }
        inv.output.print(Printed(json: .array(rows)) { out in
            out.table(["SESSION", "CLIENT", "MEMBER", "LAST OP", "EPHEMERALS", "PATHS"], text)
        })
        return answered > 0 ? ExitCode.success : ExitCode.unavailable
    }
}
