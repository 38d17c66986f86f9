import ZooKeeper
import ZooKeeperRecipes

extension CommandTable {
    static let statusCommand = CommandSpec(
        "status", summary: "report the session, every server and a health verdict",
        description: """
        Connects, then asks every server of the connect string and every member named by the
        ensemble's own configuration (/zookeeper/config) for 'srvr', all in parallel within the
        timeout; where a client port gives no srvr answer (a TLS-only port), the member's
        AdminServer (--admin-port) is asked instead. Healthy when a quorum of the ensemble's voting members is reachable and serving;
        degraded when a quorum serves but some listed server does not; unhealthy otherwise.
        Exit 0 when healthy or degraded, 69 when unhealthy, so 'zkctl status && deploy' works in
        scripts; 1 when the connect string's chroot does not exist. With -v it also shows where
        each setting came from. With --tls the 'srvr' probes go over TLS to the connect string's
        ports, and the members /zookeeper/config names are not probed (it lists their plain
        client ports, not their secureClientPort).
        """,
        examples: ["zkctl status", "zkctl -s zk1:2181,zk2:2181,zk3:2181 status", "zkctl -o json status | jq .healthy"],
        options: [ProbeOptions.adminPort.spec],
        jsonOutput: """
        {"healthy": true|false, "verdict": "healthy"|"degraded"|"unhealthy", "session": {"server", "sessionId" (hex string), "timeoutMs", "chroot",
        "authenticatedAs" (user names, with credentials)} or null, "sessionError" (when there is no
        session), "quorum": {"members", "serving", "needed"}, "servers": [{"address", "reachable",
        "serving", "mode", "version", "latency": {"min", "avg", "max"} (ms, null when unknown),
        "roundTripMs", "nodeCount", "connections", "outstanding", "source" (4lw|admin-server), "sources" (["connect-string",
        "ensemble", "observer"]), "error"}], "settings" (with -v: {"servers", "timeout", "sessionTimeout", "output",
        "configRoot", "servicesRoot", "locksRoot", "tasksRoot", "maxInflight", "sync", "auth",
        "configFile", "electionsRoot"}, each {"value", "source"}; never a password)}; a server's fields are null
        when it did not answer
        """,
        handler: runStatus)

    struct ServerReport: Sendable {
        var address: String
        var host: String
        var port: Int
        var sources: [String]
        var reachable = false
        var error: String?
        var fields: [String: String] = [:]
        var roundTripMs: Double?
        var source: ServerProbe.Source?

        var mode: String? { fields["Mode"] }
        var isServing: Bool { reachable && mode != nil && mode != "read-only" }
        var isVoter: Bool { sources.contains("ensemble") ? !sources.contains("observer") : true }
    }

    @Sendable static func runStatus(_ inv: Invocation) async throws -> Int32 {
        let settings = inv.settings
        let out = inv.output
        let connectString = try ConnectString(parsing: settings.servers.value)
        let timeout = settings.timeout.value

        let probeTimeout = min(timeout, .seconds(5))
        let adminPort = try adminPort(inv)
        var reports: [ServerReport] = []
        func add(_ host: String, _ port: Int, _ source: String) {
            let address = ConnectString.Server(host: host, port: port).description
            if let i = reports.firstIndex(where: { $0.address == address }) {
                if !reports[i].sources.contains(source) { reports[i].sources.append(source) }
            } else {
                reports.append(ServerReport(address: address, host: host, port: port, sources: [source]))
            }
        }

        // First the connect string's servers, all at once: when none answers, no session is tried
        // (it could only wait out the timeout).
        for s in connectString.servers { add(s.host, s.port, "connect-string") }
        reports = await probe(reports, timeout: probeTimeout, adminPort: adminPort, tls: settings.tls)

        var session: JSONValue = .null
        var sessionError: String? = nil
        var missingChroot: String? = nil
        var members: [(host: String, port: Int, observer: Bool)] = []
        if reports.contains(where: \.reachable) {
            do {
                let client = try await inv.connect()
                var s = JSONObject()
                s["server"] = client.connectedServer.map { .string($0) } ?? .null
                s["sessionId"] = .string(hexText(client.sessionID))
                s["timeoutMs"] = .int(client.negotiatedTimeout)
                s["chroot"] = .string(connectString.chroot ?? "/")
                if !settings.credentials.isEmpty { s["authenticatedAs"] = .array(settings.credentialUsers.map { .string($0) }) }
                session = .object(s)
                if settings.tls == nil, let config = try? await client.getConfig() {
                    members = ensembleMembers(String(decoding: config.data, as: UTF8.self))
                }
            } catch {
                sessionError = ExitCode.message(for: error)
                missingChroot = (error as? ZooKeeperError)?.missingChroot
            }
        } else {
            sessionError = "no server of \(connectString.servers.map(\.description).joined(separator: ",")) answered"
        }

        // Then the members the ensemble names itself that the connect string did not.
        let known = reports.count
        for m in members {
            add(m.host, m.port, "ensemble")
            if m.observer, let i = reports.firstIndex(where: { $0.host == m.host && $0.port == m.port }) { reports[i].sources.append("observer") }
        }
        if reports.count > known {
            let extra = await probe(Array(reports[known...]), timeout: probeTimeout, adminPort: adminPort, tls: settings.tls)
            reports.replaceSubrange(known..., with: extra)
        }

        // The verdict: the ensemble's voting members when it names them, else the connect string.
        let voters = members.isEmpty ? reports : reports.filter { $0.sources.contains("ensemble") && $0.isVoter }
        let serving = voters.filter(\.isServing).count
        let needed = voters.count / 2 + 1
        let healthy = sessionError == nil && serving >= needed
        // Healthy, but not every server listed serves: a quorum is left, with less to spare.
        let degraded = healthy && reports.contains { !$0.isServing }
        let verdictWord = degraded ? "degraded" : healthy ? "healthy" : "unhealthy"

        var o = JSONObject()
        o["healthy"] = .bool(healthy)
        o["verdict"] = .string(verdictWord)
        o["session"] = session
        if let sessionError { o["sessionError"] = .string(sessionError) }
        o["quorum"] = .object(JSONObject([("members", .int(voters.count)), ("serving", .int(serving)), ("needed", .int(needed))]))
        o["servers"] = .array(reports.map(serverJSON))
        if settings.verbose > 0 { o["settings"] = settingsJSON(settings) }
        out.print(Printed(json: .object(o)) { out in
            if case .object(let s) = session {
                let server = s["server"]?.stringValue ?? "?"
                let id = s["sessionId"]?.stringValue ?? "?"
                let ms = s["timeoutMs"]?.intValue ?? 0
                out.line("Session: connected to \(server), id \(id), timeout \(ms) ms, chroot \(connectString.chroot ?? "/")")
            } else {
                out.line("Session: " + out.styled("none", .red) + " (\(sessionError ?? "unknown error"))")
            }
            out.line("")
            let rows: [[String]] = reports.map { r in
                let status = r.isServing ? out.styled("ok", .green) : out.styled(r.reachable ? "not serving" : "down", .red)
                let latency = r.fields["Latency min/avg/max"] ?? "-"
                return [r.address, status, r.mode ?? "-", versionOf(r.fields) ?? "-", latency,
                        r.fields["Node count"] ?? "-", r.fields["Connections"] ?? "-", r.fields["Outstanding"] ?? "-",
                        r.error ?? ""]
            }
            out.table(["SERVER", "STATUS", "MODE", "VERSION", "LATENCY", "ZNODES", "CONNS", "OUTSTANDING", "ERROR"], rows)
            out.line("")
            let verdict = out.styled(verdictWord, degraded ? .yellow : healthy ? .green : .red)
            let chrootNote = missingChroot.map { "chroot \($0) does not exist; " } ?? ""
            out.line("Verdict: \(verdict) (\(chrootNote)\(serving) of \(voters.count) members serving, quorum needs \(needed))")
            if settings.verbose > 0 {
                out.line("")
                out.line("Settings:")
                if case .object(let o) = settingsJSON(settings) {
                    for (k, v) in o { out.line("  \(k): \(v.objectValue?["value"]?.compact() ?? "") (\(v.objectValue?["source"]?.stringValue ?? ""))") }
                }
            }
        })
        if missingChroot != nil { return ExitCode.notFound }
        return healthy ? ExitCode.success : ExitCode.unavailable
    }

    /// Asks every server for `srvr` (else its AdminServer) in parallel; results in the same order.
    /// With `tls`, `srvr` goes over TLS.
    static func probe(_ reports: [ServerReport], timeout: Duration, adminPort: Int, tls: TLSOptions? = nil) async -> [ServerReport] {
        await withTaskGroup(of: (Int, ServerReport).self) { group in
            for (i, r) in reports.enumerated() {
                group.addTask {
                    var r = r
                    let started = ContinuousClock.now
                    switch await ServerProbe.serverStats(host: r.host, port: r.port, adminPort: adminPort, timeout: timeout, tls: tls) {
                    case .success(let answer):
                        r.roundTripMs = Double((ContinuousClock.now - started).milliseconds)
                        r.fields = answer.fields
                        r.source = answer.source
                        r.reachable = true
                    case .failure(let failure):
                        r.reachable = failure.reachable
                        r.error = failure.message
                    }
                    return (i, r)
                }
            }
            var done = reports
            for await (i, r) in group { done[i] = r }
            return done
        }
    }

    static func versionOf(_ fields: [String: String]) -> String? {
        guard let v = fields["Zookeeper version"] else { return nil }
        return String(v.prefix { $0 != "-" && $0 != "," })
    }

    static func serverJSON(_ r: ServerReport) -> JSONValue {
        var o = JSONObject()
        o["address"] = .string(r.address)
        o["reachable"] = .bool(r.reachable)
        o["serving"] = .bool(r.isServing)
        o["mode"] = r.mode.map { .string($0) } ?? .null
        o["version"] = versionOf(r.fields).map { .string($0) } ?? .null
        let latency = (r.fields["Latency min/avg/max"] ?? "").split(separator: "/").map(String.init)
        if latency.count == 3 {
            o["latency"] = .object(JSONObject([("min", .number(latency[0])), ("avg", .number(latency[1])), ("max", .number(latency[2]))]))
        } else {
            o["latency"] = .null
        }
        o["roundTripMs"] = r.roundTripMs.map { .double($0) } ?? .null
        o["nodeCount"] = r.fields["Node count"].flatMap(Int.init).map { .int($0) } ?? .null
        o["connections"] = r.fields["Connections"].flatMap(Int.init).map { .int($0) } ?? .null
        o["outstanding"] = r.fields["Outstanding"].flatMap(Int.init).map { .int($0) } ?? .null
        o["source"] = r.source.map { .string($0.rawValue) } ?? .null
        o["sources"] = .array(r.sources.map { .string($0) })
        o["error"] = r.error.map { .string($0) } ?? .null
        return .object(o)
    }

    static func settingsJSON(_ s: Settings) -> JSONValue {
        func entry(_ value: String, _ source: SettingSource) -> JSONValue {
            .object(JSONObject([("value", .string(value)), ("source", .string(source.description))]))
        }
        var o = JSONObject()
        o["servers"] = entry(s.servers.value, s.servers.source)
        o["timeout"] = entry("\(s.timeout.value.milliseconds)ms", s.timeout.source)
        o["sessionTimeout"] = entry("\(s.connectOptions.sessionTimeout.milliseconds)ms", s.sessionTimeout?.source ?? .defaultValue)
        o["output"] = entry(s.output.value.rawValue, s.output.source)
        o["configRoot"] = entry(s.configRoot.value, s.configRoot.source)
        o["servicesRoot"] = entry(s.servicesRoot.value, s.servicesRoot.source)
        o["locksRoot"] = entry(s.locksRoot.value, s.locksRoot.source)
        o["tasksRoot"] = entry(s.tasksRoot.value, s.tasksRoot.source)
        o["electionsRoot"] = entry(s.electionsRoot.value, s.electionsRoot.source)
        o["maxInflight"] = entry(String(s.maxInFlight.value), s.maxInFlight.source)
        o["sync"] = entry(s.sync.value ? "yes" : "no", s.sync.source)
        // The user names only: a password is never shown.
        o["auth"] = entry(s.credentialUsers.joined(separator: ","), s.credentialSource ?? .defaultValue)
        o["configFile"] = entry(s.configFile ?? "", s.configFile == nil ? .defaultValue : .file(s.configFile!))
        return .object(o)
    }

    /// The members of `/zookeeper/config`: `server.N=host:peer:election[:role];[clienthost:]clientport`.
    static func ensembleMembers(_ config: String) -> [(host: String, port: Int, observer: Bool)] {
        var out: [(String, Int, Bool)] = []
        for line in config.split(whereSeparator: \.isNewline) where line.hasPrefix("server.") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let value = line[line.index(after: eq)...]
            let halves = value.split(separator: ";", maxSplits: 1)
            let quorum = halves[0].split(separator: ":")
            guard let host = quorum.first.map(String.init) else { continue }
            let observer = quorum.count > 3 && quorum[3] == "observer"
            guard halves.count == 2 else { continue }
            let client = halves[1]
            var clientHost = host
            var portText = Substring(client)
            if let colon = client.lastIndex(of: ":") {
                clientHost = String(client[..<colon])
                portText = client[client.index(after: colon)...]
            }
            if clientHost == "0.0.0.0" || clientHost == "::" || clientHost.isEmpty { clientHost = host }
            guard let port = Int(portText) else { continue }
            out.append((clientHost, port, observer))
        }
        return out
    }
}
