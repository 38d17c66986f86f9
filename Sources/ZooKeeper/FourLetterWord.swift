#if canImport(Glibc)
import FoundationEssentials
import Glibc
#endif

/// ZooKeeper's four-letter-word admin commands (`srvr`, `ruok`, `mntr`, ...): a plain-text
/// exchange on the client port, outside the session protocol. The server must allow the word
/// (`4lw.commands.whitelist`; `srvr` is allowed by default since 3.5).
public enum FourLetterWord {
    /// Sends `word` to `host:port` and returns the whole answer, within `timeout` for connecting
    /// and reading together. Blocking: call it off the cooperative pool (see `queryAsync`).
    /// With `tls`, over TLS (a server's `secureClientPort`).
    public static func query(host: String, port: Int, word: String, timeout: Duration = .seconds(2), tls: TLSOptions? = nil) throws -> String {
        let answer = try exchange(host: host, port: port, request: Array(word.utf8), what: "'\(word)'", timeout: timeout, tls: tls)
        return String(decoding: answer, as: UTF8.self)
    }

    /// The one place a probe opens a socket: connects to `host:port`, sends `request`, and reads
    /// until the server closes, all within `timeout`. `what` names the request in a timeout's
    /// message. With `tls`, the same over TLS (`TLSExchange`). Blocking.
    static func exchange(host: String, port: Int, request: [UInt8], what: String, timeout: Duration, tls: TLSOptions? = nil) throws -> Data {
        if let tls {
            return try TLSExchange.run(ConnectString.Server(host: host, port: port), request: request, timeout: timeout, options: tls)
        }
        let deadline = ContinuousClock.now + timeout
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let gai = getaddrinfo(host, String(port), &hints, &list)
        guard gai == 0, let first = list else {
            throw ZooKeeperError(.unavailable, message: "\(host): cannot resolve host: \(String(cString: gai_strerror(gai)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let ai = entry {
            entry = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            defer { close(fd) }
            if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = String(cString: strerror(errno)); continue
            }
            guard pollOne(fd, Int16(POLLOUT), until: deadline) else { lastError = "timed out"; continue }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            guard soError == 0 else { lastError = String(cString: strerror(soError)); continue }
            let bytes = request
            guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
                lastError = String(cString: strerror(errno)); continue
            }
            var answer = Data()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                guard pollOne(fd, Int16(POLLIN), until: deadline) else {
                    throw ZooKeeperError(.operationTimeout, message: "\(host):\(port): no answer to \(what) within \(timeout.milliseconds) ms")
                }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { answer.append(contentsOf: buffer[0..<n]); continue }
                if n == 0 { break }
                if errno == EAGAIN || errno == EINTR { continue }
                if answer.isEmpty { lastError = String(cString: strerror(errno)) }
                break
            }
            return answer
        }
        throw ZooKeeperError(.unavailable, message: "\(host):\(port): \(lastError)")
    }

    /// `query` on a thread of its own.
    public static func queryAsync(host: String, port: Int, word: String, timeout: Duration = .seconds(2), tls: TLSOptions? = nil) async throws -> String {
        let result: Result<String, any Error> = await offload {
            Result { try query(host: host, port: port, word: word, timeout: timeout, tls: tls) }
        }
        return try result.get()
    }

    // MARK: Why no session

    /// What one server did when asked for `srvr`.
    public enum ProbeOutcome: Sendable, Hashable {
        /// It serves, in this mode (`leader`, `follower`, `standalone`, `read-only`, ...).
        case serving(mode: String)
        /// A ZooKeeper server that is up but not serving (no quorum, or still starting).
        case notServing
        /// A ZooKeeper server that does not allow `srvr` (its answer says so).
        case wordRefused
        /// It accepted the connection and answered something that is not ZooKeeper's.
        case notZooKeeper
        /// It accepted the connection and said nothing within the timeout.
        case silent
        /// The connection failed (refused, unreachable, name not resolved): the reason.
        case unreachable(String)
    }

    /// Asks every server for `srvr` at once, each within `timeout`; results in server order.
    public static func probe(_ servers: [ConnectString.Server], timeout: Duration, tls: TLSOptions? = nil) async -> [(server: ConnectString.Server, outcome: ProbeOutcome)] {
        await withTaskGroup(of: (Int, ProbeOutcome).self) { group in
            for (i, server) in servers.enumerated() {
                group.addTask {
                    do {
                        let answer = try await queryAsync(host: server.host, port: server.port, word: "srvr", timeout: timeout, tls: tls)
                        return (i, classify(answer))
                    } catch let error as ZooKeeperError where error.code == .operationTimeout {
                        return (i, .silent)
                    } catch let error as ZooKeeperError {
                        // "host:port: reason" -> "reason", in lower case as in a sentence.
                        let prefix = "\(server.host):\(server.port): "
                        var reason = error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message
                        if let first = reason.first { reason = first.lowercased() + reason.dropFirst() }
                        return (i, .unreachable(reason))
                    } catch {
                        return (i, .unreachable("\(error)"))
                    }
                }
            }
            var outcomes = [ProbeOutcome](repeating: .silent, count: servers.count)
            for await (i, outcome) in group { outcomes[i] = outcome }
            return Array(zip(servers, outcomes)).map { (server: $0.0, outcome: $0.1) }
        }
    }

    /// What a `srvr` answer says about the server.
    public static func classify(_ answer: String) -> ProbeOutcome {
        if answer.contains("not currently serving") { return .notServing }
        if let mode = fields(of: answer)["Mode"], answer.hasPrefix("Zookeeper version") { return .serving(mode: mode) }
        if answer.contains("not in the whitelist") || answer.contains("not executed") { return .wordRefused }
        return .notZooKeeper
    }

    /// One line saying why no session started within `waited`, from the probes: a server that
    /// accepts connections but does not serve means no quorum, not "nothing reachable".
    public static func explain(_ probes: [(server: ConnectString.Server, outcome: ProbeOutcome)], waited: Duration) -> String {
        let outcomes = probes.map(\.outcome)
        let head: String
        if outcomes.contains(.notServing) {
            head = "not serving: no quorum"
        } else if outcomes.contains(.serving(mode: "read-only")) {
            head = "not serving: no quorum (read-only servers only)"
        } else if outcomes.contains(where: { if case .serving = $0 { return true }; return $0 == .wordRefused }) {
            head = "no session"
        } else if outcomes.contains(.notZooKeeper) || outcomes.contains(.silent) {
            head = "no ZooKeeper server reachable"
        } else {
            head = "no server reachable"
        }
        let details = probes.map { p -> String in
            let what: String
            switch p.outcome {
            case .serving(let mode): what = "serves (\(mode)) but gave no session"
            case .notServing: what = "accepts connections but is not serving"
            case .wordRefused: what = "accepts connections (srvr not allowed) but gave no session"
            case .notZooKeeper: what = "answers, but not as a ZooKeeper server"
            case .silent: what = "accepts connections but does not answer"
            case .unreachable(let reason): what = reason
            }
            return "\(p.server): \(what)"
        }
        return "\(head) within \(waited.milliseconds) ms; tried \(details.joined(separator: ", "))"
    }

    /// The `key: value` lines of a `srvr` or `mntr` answer (`mntr` uses tabs).
    public static func fields(of answer: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in answer.split(whereSeparator: \.isNewline) {
            let sep = line.firstIndex(of: "\t") ?? line.firstIndex(of: ":")
            guard let sep else { continue }
            let key = line[..<sep].trimmingBlanks()
            let value = line[line.index(after: sep)...].trimmingBlanks()
            out[key] = value
        }
        return out
    }
}
