import Foundation

/// A real ZooKeeper server (standalone) or ensemble on loopback, in its own temporary directory,
/// run by `scripts/zkserver` for the life of this object.
///
/// Members are numbered from 1, as in `server.N` of zoo.cfg and in the script: `memberPorts[0]`
/// is the client port of member 1. A standalone server is member 1 of 1.
///
/// The servers are started with `--owner <this process>`: if the test process dies, a watchdog
/// kills them, so a crash leaves no server behind. `shutdown()` (also run by `deinit`) stops them
/// and removes the directory.
///
/// A server that cannot start throws `ZooKeeperServerError`, whose description carries the script's
/// diagnostics (the tail of the server log). Tests let it propagate and fail; they never skip.
public final class ZooKeeperServer: Sendable {
    /// `127.0.0.1:p1,127.0.0.1:p2,...`: every member, in member order.
    public let connectString: String
    /// The server directory (`<dir>/<member>/server.log` is each member's log).
    public let directory: URL
    /// Number of members (1 for a standalone server).
    public let size: Int
    /// True for an ensemble (even of size 1), false for a standalone server.
    public let isEnsemble: Bool

    /// With TLS: `127.0.0.1:s1,127.0.0.1:s2,...`, the members' `secureClientPort`s; nil without.
    public let secureConnectString: String?

    private let ports: [Int]
    private let state = LockedState(false)  // shut down?

    private init(connectString: String, directory: URL, ports: [Int], isEnsemble: Bool, secureConnectString: String? = nil) {
        self.connectString = connectString
        self.secureConnectString = secureConnectString
        self.directory = directory
        self.ports = ports
        self.size = ports.count
        self.isEnsemble = isEnsemble
    }

    deinit {
        shutdown()
    }

    // MARK: Starting

    /// Starts one standalone server and waits until it serves.
    public static func standalone() throws -> ZooKeeperServer {
        try start(label: "standalone", ensembleSize: nil)
    }

    /// Starts an ensemble of `size` members (3 unless told) and waits until every member serves
    /// and exactly one leads.
    public static func ensemble(size: Int = 3) throws -> ZooKeeperServer {
        precondition(size >= 1, "an ensemble has at least one member")
        return try start(label: "ensemble\(size)", ensembleSize: size)
    }

    /// Starts a standalone server (or an ensemble of `ensembleSize`) that also serves TLS on a
    /// `secureClientPort` per member (Netty), with the PKCS12 stores in `stores` (see
    /// `TLSFixtures`) and `ssl.clientAuth` set to `clientAuth` (`none`, `want` or `need`).
    /// `setup` adds zoo.cfg lines, the AdminServer, JVM flags.
    public static func secure(stores: URL, clientAuth: String = "none", ensembleSize: Int? = nil, setup: Setup? = nil) throws -> ZooKeeperServer {
        try start(label: ensembleSize.map { "tls-ensemble\($0)" } ?? "tls-standalone", ensembleSize: ensembleSize, setup: setup,
                  tls: ["--tls", stores.path, "--tls-client-auth", clientAuth])
    }

    /// `127.0.0.1:<secure port>` of member `i` (1-based), with TLS.
    public func secureMemberConnectString(_ i: Int) -> String? {
        checkMember(i)
        return secureConnectString.map { String($0.split(separator: ",")[i - 1]) }
    }

    /// What a server is started with beyond the script's defaults.
    public struct Setup: Sendable {
        /// zoo.cfg lines appended to every member's configuration (they win over the defaults),
        /// e.g. `reconfigEnabled=true` or `4lw.commands.whitelist=srvr`.
        public var config: [String]
        /// The AdminServer on a free loopback port per member (`adminPort(member:)`).
        public var adminServer: Bool
        /// Extra JVM flags, e.g. `-Dzookeeper.DigestAuthenticationProvider.superDigest=...`.
        public var jvmFlags: [String]

        public init(config: [String] = [], adminServer: Bool = false, jvmFlags: [String] = []) {
            self.config = config
            self.adminServer = adminServer
            self.jvmFlags = jvmFlags
        }

        var environment: [String: String?] {
            [
                "ZKSERVER_EXTRA_CONFIG": config.isEmpty ? nil : config.joined(separator: "\n"),
                "ZKSERVER_ADMIN_SERVER": adminServer ? "yes" : nil,
                "ZKSERVER_JVM_FLAGS": jvmFlags.isEmpty ? nil : jvmFlags.joined(separator: " "),
            ]
        }
    }

    /// A standalone server started with `setup`.
    public static func standalone(_ setup: Setup) throws -> ZooKeeperServer {
        try start(label: "standalone", ensembleSize: nil, setup: setup)
    }

    /// An ensemble of `size` members started with `setup`.
    public static func ensemble(size: Int = 3, _ setup: Setup) throws -> ZooKeeperServer {
        precondition(size >= 1, "an ensemble has at least one member")
        return try start(label: "ensemble\(size)", ensembleSize: size, setup: setup)
    }

    private static func start(label: String, ensembleSize: Int?, setup: Setup? = nil, tls: [String] = []) throws -> ZooKeeperServer {
        let directory = ZKTestPaths.uniqueName(label: label)
        var arguments = ["start", directory.path, "--owner", String(ProcessInfo.processInfo.processIdentifier)]
        if let ensembleSize {
            arguments += ["--ensemble", String(ensembleSize)]
        }
        arguments += tls
        let result: ProcessResult
        do {
            result = try runScript(arguments, timeout: scriptTimeout, environment: setup.map { childEnvironment($0.environment) })
        } catch {
            // The script itself hung: make sure nothing it launched keeps running.
            _ = try? runScript(["stop", directory.path], timeout: 30)
            throw ZooKeeperServerError(action: "start", directory: directory, status: nil,
                                       diagnostics: String(describing: error))
        }
        guard result.status == 0 else {
            throw ZooKeeperServerError(action: "start", directory: directory, status: result.status,
                                       diagnostics: result.stderrText)
        }
        let connectString = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let ports = connectString.split(separator: ",").compactMap { address in
            address.split(separator: ":").last.flatMap { Int($0) }
        }
        guard !ports.isEmpty, ports.count == (ensembleSize ?? 1) else {
            _ = try? runScript(["destroy", directory.path], timeout: 60)
            throw ZooKeeperServerError(action: "start", directory: directory, status: result.status,
                                       diagnostics: "unexpected connect string: \(connectString)\n\(result.stderrText)")
        }
        let secure = tls.isEmpty ? nil
            : (try? String(contentsOf: directory.appendingPathComponent("secure_connect"), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        return ZooKeeperServer(connectString: connectString, directory: directory, ports: ports,
                               isEnsemble: ensembleSize != nil, secureConnectString: secure)
    }

    // MARK: Members

    /// Client ports in member order: `memberPorts[0]` belongs to member 1.
    public var memberPorts: [Int] { ports }

    /// The member numbers, `1...size`.
    public var members: ClosedRange<Int> { 1...size }

    /// `127.0.0.1:<port>` of member `i` (1-based) alone.
    public func memberConnectString(_ i: Int) -> String {
        "127.0.0.1:\(port(of: i))"
    }

    /// The log of member `i` (1-based): useful in a failure message.
    public func logURL(member i: Int) -> URL {
        checkMember(i)
        return directory.appendingPathComponent("\(i)/server.log")
    }

    /// Stops member `i` (SIGTERM, SIGKILL after 5 s) and waits until it is gone.
    public func stop(member i: Int) throws {
        checkMember(i)
        try control("stop", [String(i)])
    }

    /// Kills member `i` with SIGKILL and waits until it is gone.
    public func kill(member i: Int) throws {
        checkMember(i)
        try control("kill", [String(i)])
    }

    /// Starts member `i` again with its configuration and data (stopping it first if it runs) and
    /// waits until it serves (in an ensemble: until it has joined a quorum).
    public func restart(member i: Int) throws {
        checkMember(i)
        try control("restart", [String(i)], timeout: Self.scriptTimeout)
    }

    /// Waits until member `i` serves, or with `nil`, until every running member serves and (in an
    /// ensemble) exactly one of them leads. Members stopped on purpose are not waited for.
    public func waitUntilServing(member i: Int? = nil) throws {
        if let i { checkMember(i) }
        try control("wait", i.map { [String($0)] } ?? [], timeout: Self.scriptTimeout)
    }

    /// The member that leads now (1 for a standalone server). Throws when none does, for example
    /// right after the leader was stopped and before the others elected a new one (call
    /// `waitUntilServing()` first).
    public func leader() throws -> Int {
        let output = try control("leader", [])
        guard let index = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ZooKeeperServerError(action: "leader", directory: directory, status: 0,
                                       diagnostics: "unexpected output: \(output)")
        }
        return index
    }

    /// The answer of member `i` to the four-letter word `srvr`, or nil when it does not answer
    /// within 2 s (stopped, or not started yet).
    public func srvr(member i: Int) -> String? {
        let address = memberConnectString(i)
        guard let result = try? Self.runScript(["srvr", address], timeout: 10), result.status == 0 else {
            return nil
        }
        return result.stdoutText
    }

    /// The `Mode:` member `i` reports (`leader`, `follower`, `standalone`), or nil when it does
    /// not answer or does not serve.
    public func mode(member i: Int) -> String? {
        guard let answer = srvr(member: i) else { return nil }
        for line in answer.split(separator: "\n") where line.hasPrefix("Mode:") {
            return line.dropFirst("Mode:".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// The AdminServer port of member `i` (1-based), when the server was started with one.
    public func adminPort(member i: Int) -> Int? {
        let url = directory.appendingPathComponent("\(i)/admin_port")
        return (try? String(contentsOf: url, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Starts one more member (number `size + 1`, then the next) on fresh ports, configured with
    /// the ensemble's current membership and itself, and waits until it serves. It is not a
    /// voting member until a reconfig adds it: `server` is its line for that
    /// (`server.N=host:quorum:election:role;host:client`). The member is not counted in `size`
    /// or `members`; `shutdown()` stops it with the others.
    public func grow(observer: Bool = false) throws -> (member: Int, server: String, connectString: String) {
        let output = try control("grow", observer ? ["--observer"] : [], timeout: Self.scriptTimeout)
        let server = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard server.hasPrefix("server."), let eq = server.firstIndex(of: "="),
              let member = Int(server[server.index(server.startIndex, offsetBy: 7)..<eq]),
              let port = server.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw ZooKeeperServerError(action: "grow", directory: directory, status: 0, diagnostics: "unexpected output: \(output)")
        }
        return (member, server, "127.0.0.1:\(port)")
    }

    // MARK: Shutting down

    /// True once `shutdown()` ran.
    public var isShutDown: Bool { state.withLock { $0 } }

    /// Stops every member and removes the directory. Safe to call more than once and from any
    /// thread; `deinit` calls it too. A failure is reported on stderr, not thrown.
    public func shutdown() {
        let first = state.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        do {
            let result = try Self.runScript(["destroy", directory.path], timeout: 60)
            if result.status != 0 {
                reportToStderr("zkserver destroy \(directory.path) failed (\(result.status)): \(result.stderrText)")
            }
        } catch {
            reportToStderr("zkserver destroy \(directory.path) failed: \(error)")
        }
    }

    // MARK: Helpers

    private func port(of i: Int) -> Int {
        checkMember(i)
        return ports[i - 1]
    }

    private func checkMember(_ i: Int) {
        precondition(members.contains(i), "member \(i) is not in \(members) (members are numbered from 1)")
    }

    /// Runs `zkserver <command> <dir> <arguments...>`; returns stdout; throws on failure.
    @discardableResult
    private func control(_ command: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        if isShutDown {
            throw ZooKeeperServerError(action: command, directory: directory, status: nil,
                                       diagnostics: "the server was shut down")
        }
        let result: ProcessResult
        do {
            result = try Self.runScript([command, directory.path] + arguments, timeout: timeout)
        } catch {
            throw ZooKeeperServerError(action: command, directory: directory, status: nil,
                                       diagnostics: String(describing: error))
        }
        guard result.status == 0 else {
            throw ZooKeeperServerError(action: command, directory: directory, status: result.status,
                                       diagnostics: result.stderrText)
        }
        return result.stdoutText
    }

    /// The script's readiness deadline plus a margin for JVM shutdown and our own overhead.
    private static var scriptTimeout: TimeInterval {
        let deadline = ProcessInfo.processInfo.environment["ZKSERVER_DEADLINE"].flatMap { TimeInterval($0) } ?? 60
        return deadline + 30
    }

    /// `bash scripts/zkserver ...`: through PATH's bash (the script needs bash 5.1 or newer), so an
    /// executable bit lost in a checkout does not matter.
    static func runScript(_ arguments: [String], timeout: TimeInterval, environment: [String: String]? = nil) throws -> ProcessResult {
        try runProcess("bash", [ZKTestPaths.zkserverScript.path] + arguments, environment: environment, timeout: timeout)
    }
}

/// A `scripts/zkserver` action that failed. `diagnostics` is what the script wrote on stderr: the
/// reason and the tail of the failing member's log.
public struct ZooKeeperServerError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public let action: String
    public let directory: URL
    /// The script's exit status, nil when it did not finish.
    public let status: Int32?
    public let diagnostics: String

    public var description: String {
        let how = status.map { "exit status \($0)" } ?? "did not finish"
        return "zkserver \(action) \(directory.path) failed (\(how)):\n\(diagnostics)"
    }

    public var errorDescription: String? { description }
}

func reportToStderr(_ message: String) {
    FileHandle.standardError.write(Data(("ZKTestSupport: " + message + "\n").utf8))
}
