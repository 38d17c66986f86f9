import FoundationEssentials

/// What a member says about itself outside a session: the four-letter words on its client port
/// (`srvr`, `mntr`, `cons`, `dump`) where the server allows them, else the same figures from its
/// AdminServer (`http://host:adminPort/commands/...`, JSON; HTTPS with TLS options, or when the
/// port serves only HTTPS). Every request opens its socket through `FourLetterWord.exchange`,
/// within its timeout.
public enum ServerProbe {
    /// Which transport answered.
    public enum Source: String, Sendable, Hashable {
        case fourLetterWord = "4lw"
        case adminServer = "admin-server"
    }

    /// The default AdminServer port (ZooKeeper's `admin.serverPort`).
    public static let defaultAdminPort = 8080

    /// Figures of one member as `key -> value` text, and where they came from.
    public struct Answer: Sendable, Hashable {
        public var source: Source
        public var fields: [String: String]
    }

    /// Neither transport answered: why, in one sentence that says what to allow.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The client port accepted a connection (the member runs, but would not say).
        public var reachable: Bool
        public var message: String
        public var description: String { message }
    }

    /// One client connection a member reports.
    public struct Connection: Sendable, Hashable {
        /// `0x...`, nil for a connection that has no session yet.
        public var sessionID: String?
        public var client: String
        public var lastOperation: String?
        public var received: Int?
        public var sent: Int?
        public var queued: Int?
        public var timeoutMs: Int?
    }

    // MARK: Transports

    /// `GET path` over HTTP/1.0 (the server closes after the answer): the status and the body.
    /// With `tls`, over HTTPS (verified as the client port is).
    public static func httpGet(host: String, port: Int, path: String, timeout: Duration, tls: TLSOptions? = nil) throws -> (status: Int, body: Data) {
        let answer = try httpExchange(host: host, port: port, path: path, timeout: timeout, tls: tls)
        guard let parsed = parseHTTP(answer) else {
            throw ZooKeeperError(.unavailable, message: "\(host):\(port): not an HTTP answer")
        }
        return parsed
    }

    private static func httpExchange(host: String, port: Int, path: String, timeout: Duration, tls: TLSOptions?) throws -> Data {
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let request = "GET \(path) HTTP/1.0\r\nHost: \(hostHeader)\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        return try FourLetterWord.exchange(host: host, port: port, request: Array(request.utf8), what: "GET \(path)", timeout: timeout, tls: tls)
    }

    /// The status and body of an HTTP answer, or nil when it is not one.
    static func parseHTTP(_ answer: Data) -> (status: Int, body: Data)? {
        guard let end = answer.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: answer[..<end.lowerBound], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n", maxSplits: 1).first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else { return nil }
        return (status, Data(answer[end.upperBound...]))
    }

    /// Whether an answer to plain text is a TLS record (a handshake or an alert: type 22 or 21,
    /// version 3.x), as an HTTPS-only AdminServer (admin.forceHttps=true) sends to plain HTTP.
    static func looksLikeTLS(_ answer: Data) -> Bool {
        answer.count >= 5 && (answer[answer.startIndex] == 0x15 || answer[answer.startIndex] == 0x16) && answer[answer.startIndex + 1] == 0x03
    }

    /// HTTPS to an AdminServer failed (its certificate, or the handshake): the reason.
    struct AdminTLSFailure: Error, Sendable {
        var reason: String
        /// HTTPS was tried because the port answers only TLS, not because --tls asked for it.
        var onlyTLS: Bool
    }

    /// `GET path` on an AdminServer, by the scheme it serves. With `tls`, HTTPS first, and plain
    /// HTTP only when the port answered the handshake with something that is not TLS (never
    /// after a certificate was refused: that would give up the verification asked for). Without, plain HTTP first, and HTTPS when
    /// the port answers only TLS (ZooKeeper's admin.forceHttps=true), verified with the system's
    /// CAs. All within `timeout`; blocking.
    static func adminGet(host: String, port: Int, path: String, timeout: Duration, tls: TLSOptions?) throws -> (status: Int, body: Data) {
        let deadline = ContinuousClock.now + timeout
        func left() -> Duration { max(deadline - .now, .milliseconds(200)) }
        let server = ConnectString.Server(host: host, port: port)
        if let tls {
            do {
                return try httpGet(host: host, port: port, path: path, timeout: timeout, tls: tls)
            } catch let error as ZooKeeperError where error.code != .operationTimeout {
                // The port answered, but not with TLS: a plain AdminServer.
                if TLSExchange.isNotTLS(error) { return try httpGet(host: host, port: port, path: path, timeout: left()) }
                // One that speaks TLS: HTTPS failed (its certificate, the handshake). Else
                // refused or unreachable: that error.
                if TLSExchange.speaksTLS(server, timeout: left()) {
                    throw AdminTLSFailure(reason: reason(error, host: host, port: port), onlyTLS: false)
                }
                throw error
            }
        }
        let answer = try httpExchange(host: host, port: port, path: path, timeout: timeout, tls: nil)
        if let parsed = parseHTTP(answer) { return parsed }
        guard looksLikeTLS(answer) else {
            throw ZooKeeperError(.unavailable, message: "\(host):\(port): not an HTTP answer")
        }
        do {
            return try httpGet(host: host, port: port, path: path, timeout: left(), tls: TLSOptions())
        } catch let error as ZooKeeperError {
            throw AdminTLSFailure(reason: reason(error, host: host, port: port), onlyTLS: true)
        }
    }

    /// One AdminServer command's JSON object; throws when the server refuses or is not there.
    static func adminCommand(host: String, port: Int, command: String, timeout: Duration, tls: TLSOptions? = nil) throws -> JSONObject {
        let (status, body) = try adminGet(host: host, port: port, path: "/commands/\(command)", timeout: timeout, tls: tls)
        guard status == 200 else {
            throw ZooKeeperError(.unavailable, message: "\(host):\(port): the AdminServer answered HTTP \(status) to \(command)")
        }
        guard let object = (try? JSONValue.parse(body))?.objectValue else {
            throw ZooKeeperError(.unavailable, message: "\(host):\(port): the AdminServer's \(command) answer is not JSON")
        }
        if let error = object["error"]?.stringValue {
            throw ZooKeeperError(.unavailable, message: "\(host):\(port): the AdminServer refused \(command): \(error)")
        }
        return object
    }

    /// Sends `word`; nil when the server does not allow it (the whitelist), so the caller may
    /// try the AdminServer; throws `Failure` when the client port does not answer at all.
    static func fourLetterWord(_ word: String, host: String, port: Int, timeout: Duration, tls: TLSOptions? = nil) throws -> String? {
        let answer: String
        do {
            answer = try FourLetterWord.query(host: host, port: port, word: word, timeout: timeout, tls: tls)
        } catch let error as ZooKeeperError {
            if error.code == .operationTimeout { return nil }  // silent: perhaps TLS only; the AdminServer may say
            throw Failure(reachable: false, message: reason(error, host: host, port: port))
        }
        if answer.contains("not in the whitelist") || answer.contains("not executed") || answer.isEmpty { return nil }
        return answer
    }

    /// Runs `word` on the client port, else `command` on the AdminServer, and hands the answer to
    /// the matching reader.
    /// With `tls`, the word goes over TLS (the client port is a secureClientPort).
    static func ask<T: Sendable>(host: String, port: Int, adminPort: Int, timeout: Duration, word: String, command: String,
                                 tls: TLSOptions? = nil,
                                 fromWord: @escaping @Sendable (String) -> T?,
                                 fromAdmin: @escaping @Sendable (JSONObject) -> T?) async -> Result<(Source, T), Failure> {
        await offload {
            let started = ContinuousClock.now
            do {
                if let answer = try fourLetterWord(word, host: host, port: port, timeout: timeout, tls: tls) {
                    if let value = fromWord(answer) { return .success((.fourLetterWord, value)) }
                    if answer.contains("not currently serving") {
                        return .failure(Failure(reachable: true, message: "not serving (no quorum, or still starting)"))
                    }
                }
            } catch let failure as Failure {
                return .failure(failure)
            } catch {
                return .failure(Failure(reachable: false, message: "\(error)"))
            }
            // At least a second for the AdminServer when the client port used the whole timeout
            // (a silent TLS port): its first HTTPS handshake can take that long.
            let left = max(timeout - (ContinuousClock.now - started), .seconds(1))
            do {
                let object = try adminCommand(host: host, port: adminPort, command: command, timeout: left, tls: tls)
                if let value = fromAdmin(object) { return .success((.adminServer, value)) }
                return .failure(Failure(reachable: true, message: "the AdminServer on port \(adminPort) gave no \(command) figures"))
            } catch let failure as AdminTLSFailure {
                let hint = failure.onlyTLS
                    ? " (its port serves HTTPS only: give --tls and --tls-ca when the client port is TLS too, or add the CA to the system's store)" : ""
                return .failure(Failure(reachable: true, message:
                    "\(word) is not allowed and HTTPS to the AdminServer on port \(adminPort) failed: \(failure.reason)\(hint)"))
            } catch {
                let why = (error as? ZooKeeperError).map { reason($0, host: host, port: adminPort) } ?? "\(error)"
                return .failure(Failure(reachable: true, message:
                    "\(word) is not allowed and no AdminServer answered on port \(adminPort) (\(why)): allow \(word) in "
                    + "4lw.commands.whitelist, or enable the AdminServer (admin.enableServer=true) and name its port with --admin-port or ZKCTL_ADMIN_PORT"))
            }
        }
    }

    private static func reason(_ error: ZooKeeperError, host: String, port: Int) -> String {
        let prefix = "\(host):\(port): "
        var text = error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message
        if let first = text.first { text = first.lowercased() + text.dropFirst() }
        return text
    }

    // MARK: Questions

    /// The `srvr` figures under `srvr`'s own names (`Mode`, `Zxid`, `Outstanding`,
    /// `Latency min/avg/max`, `Node count`, `Connections`, `Zookeeper version`).
    public static func serverStats(host: String, port: Int, adminPort: Int = defaultAdminPort, timeout: Duration,
                                   tls: TLSOptions? = nil) async -> Result<Answer, Failure> {
        await ask(host: host, port: port, adminPort: adminPort, timeout: timeout, word: "srvr", command: "srvr", tls: tls,
                  fromWord: { answer in
                      let fields = FourLetterWord.fields(of: answer)
                      return fields["Mode"] == nil ? nil : fields
                  },
                  fromAdmin: srvrFields).map { Answer(source: $0.0, fields: $0.1) }
    }

    /// The `mntr` figures, named as `mntr` names them without its `zk_` prefix (which is how
    /// the AdminServer's `monitor` names them too): `server_state`, `avg_latency`, ...
    public static func monitor(host: String, port: Int, adminPort: Int = defaultAdminPort, timeout: Duration,
                                       tls: TLSOptions? = nil) async -> Result<Answer, Failure> {
        await ask(host: host, port: port, adminPort: adminPort, timeout: timeout, word: "mntr", command: "monitor", tls: tls,
                  fromWord: { answer in
                      var out: [String: String] = [:]
                      for (key, value) in FourLetterWord.fields(of: answer) where key.hasPrefix("zk_") {
                          out[String(key.dropFirst(3))] = value
                      }
                      return out.isEmpty ? nil : out
                  },
                  fromAdmin: { object in
                      var out: [String: String] = [:]
                      for (key, value) in object where key != "command" && key != "error" {
                          if let text = scalarText(value) { out[key] = text }
                      }
                      return out.isEmpty ? nil : out
                  }).map { Answer(source: $0.0, fields: $0.1) }
    }

    /// The member's client connections (`cons`, or the AdminServer's `connections`).
    public static func connections(host: String, port: Int, adminPort: Int = defaultAdminPort, timeout: Duration,
                                           tls: TLSOptions? = nil) async -> Result<(source: Source, connections: [Connection]), Failure> {
        await ask(host: host, port: port, adminPort: adminPort, timeout: timeout, word: "cons", command: "connections", tls: tls,
                  fromWord: parseCons, fromAdmin: { object in
                      guard let list = object["connections"]?.arrayValue?.compactMap(\.objectValue) else { return nil }
                      return list.map { c in
                          Connection(sessionID: sessionText(c["session_id"]), client: c["remote_socket_address"]?.stringValue.map(trimSlash) ?? "?",
                                     lastOperation: c["last_operation"]?.stringValue, received: intValue(c["packets_received"]),
                                     sent: intValue(c["packets_sent"]), queued: intValue(c["outstanding_requests"]),
                                     timeoutMs: intValue(c["session_timeout"]))
                      }
                  }).map { (source: $0.0, connections: $0.1) }
    }

    /// Sessions that own ephemeral nodes, with their paths (`dump`, or the AdminServer's `dump`;
    /// only the leader knows them).
    public static func ephemerals(host: String, port: Int, adminPort: Int = defaultAdminPort, timeout: Duration,
                                          tls: TLSOptions? = nil) async -> Result<[String: [String]], Failure> {
        await ask(host: host, port: port, adminPort: adminPort, timeout: timeout, word: "dump", command: "dump", tls: tls,
                  fromWord: parseDump, fromAdmin: { object in
                      guard let map = object["session_id_to_ephemeral_paths"]?.objectValue else { return [:] }
                      var out: [String: [String]] = [:]
                      for (key, paths) in map {
                          guard let id = sessionText(.string(key)) else { continue }
                          out[id] = paths.arrayValue?.compactMap(\.stringValue) ?? []
                      }
                      return out
                  }).map { $0.1 }
    }

    // MARK: Readers

    /// The AdminServer's `srvr` (server_stats) object as `srvr`'s fields.
    static func srvrFields(_ object: JSONObject) -> [String: String]? {
        guard let stats = object["server_stats"]?.objectValue, let state = stats["server_state"]?.stringValue else { return nil }
        var f: [String: String] = [:]
        f["Mode"] = state
        if let version = object["version"]?.stringValue { f["Zookeeper version"] = version }
        if let min = scalarText(stats["min_latency"]), let avg = scalarText(stats["avg_latency"]), let max = scalarText(stats["max_latency"]) {
            f["Latency min/avg/max"] = "\(min)/\(avg)/\(max)"
        }
        if let zxid = intValue(stats["last_processed_zxid"]) { f["Zxid"] = hexText(Int64(zxid)) }
        if let n = scalarText(stats["outstanding_requests"]) { f["Outstanding"] = n }
        if let n = scalarText(stats["num_alive_client_connections"]) { f["Connections"] = n }
        if let n = scalarText(stats["packets_received"]) { f["Received"] = n }
        if let n = scalarText(stats["packets_sent"]) { f["Sent"] = n }
        if let n = scalarText(object["node_count"]) { f["Node count"] = n }
        return f
    }

    /// `cons` lines: ` /127.0.0.1:40000[1](queued=0,recved=5,sent=5,sid=0x100..,lop=PING,...)`.
    static func parseCons(_ answer: String) -> [Connection]? {
        var out: [Connection] = []
        for line in answer.split(whereSeparator: \.isNewline) {
            let text = line.trimmingBlanks()
            guard let bracket = text.firstIndex(of: "["), let open = text.firstIndex(of: "("), text.hasSuffix(")") else { continue }
            var pairs: [String: String] = [:]
            for pair in text[text.index(after: open)..<text.index(before: text.endIndex)].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { pairs[String(kv[0])] = String(kv[1]) }
            }
            out.append(Connection(sessionID: pairs["sid"], client: trimSlash(String(text[..<bracket])), lastOperation: pairs["lop"],
                                  received: pairs["recved"].flatMap { Int($0) }, sent: pairs["sent"].flatMap { Int($0) },
                                  queued: pairs["queued"].flatMap { Int($0) }, timeoutMs: pairs["to"].flatMap { Int($0) }))
        }
        return out
    }

    /// `dump`'s "Sessions with Ephemerals" part: `0x...:` then one tab-indented path a line.
    static func parseDump(_ answer: String) -> [String: [String]]? {
        guard answer.contains("Sessions with Ephemerals") || answer.contains("SessionTracker") else { return nil }
        var out: [String: [String]] = [:]
        var inEphemerals = false
        var current: String?
        for line in answer.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("Sessions with Ephemerals") { inEphemerals = true; continue }
            guard inEphemerals else { continue }
            if line.hasPrefix("\t") || line.hasPrefix(" ") {
                if let current { out[current, default: []].append(line.trimmingBlanks()) }
            } else if line.hasPrefix("0x"), line.hasSuffix(":") {
                current = String(line.dropLast())
                out[current!] = out[current!] ?? []
            } else {
                inEphemerals = false
            }
        }
        return out
    }

    private static func trimSlash(_ s: String) -> String { s.hasPrefix("/") ? String(s.dropFirst()) : s }

    // The AdminServer's numbers read as JSONSerialization read them before: a lexeme without a
    // fraction or exponent is an integer (Int64, else UInt64), any other a Double.

    private static func integer(_ lexeme: String) -> Int64? {
        lexeme.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? nil : Int64(lexeme)
    }

    static func intValue(_ value: JSONValue?) -> Int? {
        switch value {
        case .number(let lexeme)?:
            if let n = integer(lexeme) { return Int(n) }
            if !lexeme.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let n = UInt64(lexeme) { return Int(truncatingIfNeeded: n) }
            guard let d = Double(lexeme), d.isFinite, d > -9.3e18, d < 9.3e18 else { return nil }
            return Int(d)
        case .bool(let b)?: return b ? 1 : 0
        case .string(let s)?: return Int(s)
        default: return nil
        }
    }

    /// A session id as `0x...`, from a number or decimal/hex text.
    static func sessionText(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?:
            if s.hasPrefix("0x") { return s }
            if let n = Int64(s) { return hexText(n) }
            if let n = UInt64(s) { return hexText(n) }
            return nil
        case .number(let lexeme)?:
            if let n = integer(lexeme) { return hexText(n) }
            if let n = UInt64(lexeme) { return hexText(n) }
            guard let d = Double(lexeme), d.isFinite, d >= 0, d < 1.8e19 else { return nil }
            return hexText(UInt64(d))
        default: return nil
        }
    }

    /// A JSON scalar as text: numbers as written, booleans as true/false, strings as they are.
    static func scalarText(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?: return s
        case .bool(let b)?: return b ? "true" : "false"
        case .number(let lexeme)?:
            if let n = integer(lexeme) { return String(n) }
            if !lexeme.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let n = UInt64(lexeme) { return String(n) }
            guard let d = Double(lexeme) else { return nil }
            return d == d.rounded() && abs(d) < 1e15 ? oneDecimal(d) : "\(d)"
        default: return nil
        }
    }
}
