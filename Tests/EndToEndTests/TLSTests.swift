import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// TLS to a server's secureClientPort (issue 16), end to end: the built binary against real
/// ZooKeeper 3.8 servers with Netty and keys made by the test (`TLSFixtures`). Every command
/// family over TLS, client certificates (`ssl.clientAuth=need`), each error line with its exit
/// code within --timeout, the relay refusing another process, and a 3-member secure ensemble that
/// loses a member.
final class TLSTests: XCTestCase {
    /// The fixtures and the servers, started once for the class (each costs a JVM).
    final class Shared: @unchecked Sendable {
        // Unchecked: every field is set once, under `lock`, before it is read.
        private let lock = NSLock()
        private var fixturesValue: TLSFixtures?
        private var servers: [String: ZooKeeperServer] = [:]

        func fixtures() throws -> TLSFixtures {
            lock.lock()
            defer { lock.unlock() }
            if let f = fixturesValue { return f }
            let f = try TLSFixtures.make()
            fixturesValue = f
            return f
        }

        func server(_ name: String, _ make: (TLSFixtures) throws -> ZooKeeperServer) throws -> ZooKeeperServer {
            let f = try fixtures()
            lock.lock()
            defer { lock.unlock() }
            if let s = servers[name], !s.isShutDown { return s }
            let s = try make(f)
            servers[name] = s
            return s
        }

        func shutdown() {
            lock.lock()
            let all = Array(servers.values)
            servers = [:]
            lock.unlock()
            for s in all { s.shutdown() }
        }
    }
    static let shared = Shared()

    override class func tearDown() {
        shared.shutdown()
        super.tearDown()
    }

    var fx: TLSFixtures!
    var root = ""

    override func setUpWithError() throws {
        fx = try Self.shared.fixtures()
        root = uniqueZnodePath("tls")
    }

    /// TLS only on the server side (ssl.clientAuth=none).
    func serverOnly() throws -> ZooKeeperServer {
        try Self.shared.server("server-only") { try ZooKeeperServer.secure(stores: $0.stores) }
    }

    /// TLS with client certificates required.
    func clientAuth() throws -> ZooKeeperServer {
        try Self.shared.server("client-auth") { try ZooKeeperServer.secure(stores: $0.stores, clientAuth: "need") }
    }

    func tlsPort(_ s: ZooKeeperServer) throws -> String { try XCTUnwrap(s.secureConnectString) }

    /// A clean environment (no settings leak in from the machine), keeping ASAN_OPTIONS for
    /// `make test-asan`-style runs.
    static var cleanEnvironment: [String: String] {
        let mine = ProcessInfo.processInfo.environment
        var environment = ["PATH": mine["PATH"] ?? "/usr/bin:/bin", "HOME": FileManager.default.temporaryDirectory.path]
        if let asan = mine["ASAN_OPTIONS"] { environment["ASAN_OPTIONS"] = asan }
        return environment
    }

    /// zkctl with a clean environment.
    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
        var environment = Self.cleanEnvironment
        environment.merge(env) { $1 }
        return try runProcess(zkctlBinaryPath(), args, environment: environment, stdin: stdin, timeout: timeout)
    }

    /// zkctl over TLS to `servers`, verified against the test CA.
    func tls(_ servers: String, _ args: [String], extra: [String] = [], env: [String: String] = [:], stdin: Data? = nil) throws -> ProcessResult {
        try zkctl(["-s", servers, "--tls-ca", fx.path("ca.pem")] + extra + args, env: env, stdin: stdin)
    }

    @discardableResult
    func ok(_ r: ProcessResult, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        XCTAssertEqual(r.status, 0, "\(what): \(r.stderrText)", file: file, line: line)
        return r.stdoutText
    }

    /// A connect that must fail: `status`, nothing on stdout, one `zkctl: ` line naming `server`
    /// and containing `text`, within the timeout given (2 s) and a margin.
    func fails(_ args: [String], _ status: Int32, _ text: String, server: String, env: [String: String] = [:],
               file: StaticString = #filePath, line: UInt = #line) throws {
        let started = Date()
        let r = try zkctl(["--timeout", "2s"] + args, env: env)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        let lines = r.stderrText.split(separator: "\n").filter { !$0.hasPrefix("zkctl: warning: ") }
        XCTAssertEqual(lines.count, 1, "\(args): one error line: \(r.stderrText)", file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("zkctl: ") == true, r.stderrText, file: file, line: line)
        XCTAssertTrue(r.stderrText.contains(text), "\(args): expected '\(text)' in: \(r.stderrText)", file: file, line: line)
        XCTAssertTrue(r.stderrText.contains(server), "\(args): the server \(server) is named: \(r.stderrText)", file: file, line: line)
        XCTAssertLessThan(elapsed, 2 + 3, "\(args): within --timeout (took \(elapsed) s)", file: file, line: line)
    }

    // MARK: Every command family over TLS

    func testEveryCommandFamilyOverServerOnlyTLS() throws {
        let s = try tlsPort(try serverOnly())
        let path = root + "/node"
        ok(try tls(s, ["create", "-p", path, "hello over tls"]), "create")
        XCTAssertEqual(ok(try tls(s, ["get", path]), "get"), "hello over tls")
        ok(try tls(s, ["set", path, "changed"]), "set")
        XCTAssertEqual(ok(try tls(s, ["get", path]), "get"), "changed")
        ok(try tls(s, ["create", path + "/child", "c"]), "create child")
        XCTAssertEqual(ok(try tls(s, ["ls", path]), "ls"), "child\n")
        let tree = ok(try tls(s, ["tree", root]), "tree")
        XCTAssertTrue(tree.contains("node") && tree.contains("child"), tree)
        ok(try tls(s, ["delete", path + "/child"]), "delete")
        XCTAssertEqual(try tls(s, ["exists", path + "/child"]).status, 1)

        // config
        let configRoot = ["--config-root", root + "/config"]
        ok(try tls(s, configRoot + ["config", "set", "db", #"{"host":"h","port":5432}"#]), "config set")
        XCTAssertEqual(ok(try tls(s, configRoot + ["config", "get", "db", "port"]), "config get"), "5432\n")

        // lock
        let held = ok(try tls(s, ["--locks-root", root + "/locks", "lock", "job", "--", "sh", "-c", "echo held"]), "lock")
        XCTAssertEqual(held, "held\n")

        // service
        let services = ["--services-root", root + "/services"]
        ok(try tls(s, services + ["service", "register", "api", "10.0.0.1", "8080", "--id", "a1"]), "service register")
        XCTAssertEqual(ok(try tls(s, services + ["service", "discover", "api", "--url"]), "discover"), "http://10.0.0.1:8080\n")

        // export and import
        let scratch = try ZKTestPaths.makeTemporaryDirectory(label: "tls-export")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = scratch.appendingPathComponent("export.json").path
        ok(try tls(s, ["export", path, "--file", file]), "export")
        ok(try tls(s, ["import", file, "--to", root + "/copy"]), "import")
        XCTAssertEqual(ok(try tls(s, ["get", root + "/copy"]), "get copy"), "changed")

        // status: the session and the srvr probe over TLS
        let status = ok(try tls(s, ["status"]), "status")
        XCTAssertTrue(status.contains("Session: connected to \(s)"), status)
        XCTAssertTrue(status.contains("standalone") && status.contains("Verdict: healthy"), status)

        // metrics and sessions: mntr, cons and dump over TLS to the secure port.
        let metrics = try tls(s, ["-o", "json", "metrics"])
        XCTAssertEqual(metrics.status, 0, metrics.stderrText)
        let members = (try? JSONSerialization.jsonObject(with: metrics.stdout) as? [[String: Any]]) ?? []
        XCTAssertEqual(members.count, 1, metrics.stdoutText)
        XCTAssertEqual(members.first?["server"] as? String, s, metrics.stdoutText)
        XCTAssertEqual(members.first?["source"] as? String, "4lw", metrics.stdoutText)
        let registered = try BackgroundProcess(zkctlBinaryPath(), ["-s", s, "--tls-ca", fx.path("ca.pem")] + services
                                               + ["service", "register", "eph", "10.0.0.2", "9000", "--id", "e1", "--ephemeral"],
                                               environment: Self.cleanEnvironment)
        XCTAssertTrue(registered.waitUntil(timeout: 20) { out, _ in out == "e1\n" }, registered.stderr)
        let sessions = try tls(s, ["sessions"])
        XCTAssertEqual(sessions.status, 0, sessions.stderrText)
        XCTAssertTrue(sessions.stdoutText.contains(root + "/services/eph/e1"), sessions.stdoutText)
        registered.signal(SIGTERM)
        XCTAssertEqual(registered.waitForExit(seconds: 20), 143)

        // A chroot is kept through the relay.
        XCTAssertEqual(ok(try tls(s + root, ["get", "/node"]), "get under a chroot"), "changed")
        ok(try tls(s, ["delete", "-r", root]), "cleanup")
    }

    func testClientCertificates() throws {
        let s = try tlsPort(try clientAuth())
        let cert = ["--tls-cert", fx.path("client.pem"), "--tls-key", fx.path("client.key")]
        ok(try tls(s, ["create", "-p", root, "with a client certificate"], extra: cert), "create")
        XCTAssertEqual(ok(try tls(s, ["get", root], extra: cert), "get"), "with a client certificate")
        // From the environment too.
        let env = ["ZKCTL_TLS_CA": fx.path("ca.pem"), "ZKCTL_TLS_CERT": fx.path("client.pem"), "ZKCTL_TLS_KEY": fx.path("client.key")]
        XCTAssertEqual(ok(try zkctl(["-s", s, "get", root], env: env), "get by environment"), "with a client certificate")

        try fails(["-s", s, "--tls-ca", fx.path("ca.pem"), "get", root], 69, "the server requires a client certificate", server: s)
        try fails(["-s", s, "--tls-ca", fx.path("ca.pem"), "--tls-cert", fx.path("other-client.pem"), "--tls-key", fx.path("other-client.key"),
                   "get", root], 77, "the server refused the client certificate", server: s)
        ok(try tls(s, ["delete", root], extra: cert), "cleanup")
    }

    // MARK: Sessions kept between commands

    /// The `-v` lines of the handshakes a run made (`tls: SERVER: TLSv1.2, ...`).
    func handshakes(_ r: ProcessResult) -> [String] {
        r.stderrText.split(separator: "\n").compactMap { line in
            line.range(of: "tls: ").map { String(line[$0.lowerBound...]) }
        }.filter { $0.contains(": TLSv") }
    }

    /// The session files in `directory`, with their modes.
    func sessionFiles(_ directory: URL) -> [String: Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var out: [String: Int] = [:]
        for name in names where name.hasSuffix(".tls-session") {
            var info = stat()
            if lstat(directory.appendingPathComponent(name).path, &info) == 0 { out[name] = Int(info.st_mode & 0o777) }
        }
        return out
    }

    func testSessionsAreResumedOnlyUnderTheVerificationTheyPassed() throws {
        let s = try tlsPort(try serverOnly())
        let runtime = try ZKTestPaths.makeTemporaryDirectory(label: "tls-runtime")
        defer { try? FileManager.default.removeItem(at: runtime) }
        XCTAssertEqual(chmod(runtime.path, 0o700), 0)
        let env = ["XDG_RUNTIME_DIR": runtime.path]
        let cache = runtime.appendingPathComponent("zkctl")

        // The first command makes a full handshake and keeps the session, in a directory of
        // mode 700 made for it and a file of mode 600; the next commands resume it.
        var r = try tls(s, ["-v", "exists", "/zookeeper"], env: env)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake, session kept"], r.stderrText)
        var info = stat()
        XCTAssertEqual(lstat(cache.path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        XCTAssertEqual(Array(sessionFiles(cache).values), [0o600], "\(sessionFiles(cache))")
        let kept = try XCTUnwrap(sessionFiles(cache).keys.first)
        for _ in 0..<2 {
            r = try tls(s, ["-v", "exists", "/zookeeper"], env: env)
            XCTAssertEqual(r.status, 0, r.stderrText)
            XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, resumed a kept session"], r.stderrText)
        }
        // status's probe over TLS resumes it as well.
        r = try tls(s, ["-v", "status"], env: env)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(sessionFiles(cache).count, 1, "\(sessionFiles(cache))")

        // Verification that differs never resumes a session verified otherwise: another CA and a
        // name the certificate does not carry still fail, with their own reasons.
        try fails(["-s", s, "--tls-ca", fx.path("other-ca.pem"), "get", "/"], 69, "is not signed by the CA in", server: s, env: env)
        try fails(["-s", s, "--tls-ca", fx.path("ca.pem"), "--tls-server-name", "wrong.example.test", "get", "/"], 69,
                  "the server's certificate is not for wrong.example.test (name mismatch", server: s, env: env)
        // A name the certificate carries is its own, full, handshake.
        r = try tls(s, ["-v", "exists", "/zookeeper"], extra: ["--tls-server-name", "zk.example.test"], env: env)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake, session kept"], r.stderrText)
        XCTAssertEqual(sessionFiles(cache).count, 2, "\(sessionFiles(cache))")

        // --tls-insecure and --tls-session-cache off keep nothing and resume nothing.
        let before = sessionFiles(cache)
        r = try zkctl(["-s", s, "--tls-insecure", "-v", "exists", "/zookeeper"], env: env)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake"], r.stderrText)
        r = try tls(s, ["-v", "--tls-session-cache", "off", "exists", "/zookeeper"], env: env)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake"], r.stderrText)
        r = try tls(s, ["-v", "exists", "/zookeeper"], env: env.merging(["ZKCTL_TLS_SESSION_CACHE": "off"]) { $1 })
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake"], r.stderrText)
        XCTAssertEqual(sessionFiles(cache), before)

        // A session file others can read is not used, and is removed.
        XCTAssertEqual(chmod(cache.appendingPathComponent(kept).path, 0o644), 0)
        r = try tls(s, ["-v", "exists", "/zookeeper"], env: env)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake, session kept"], r.stderrText)
        XCTAssertEqual(sessionFiles(cache)[kept], 0o600, "\(sessionFiles(cache))")

        // A directory others may enter is not used; asked for by name, a warning says why.
        let open = runtime.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: false)
        XCTAssertEqual(chmod(open.path, 0o755), 0)
        r = try tls(s, ["-v", "--tls-session-cache", open.path, "exists", "/zookeeper"], env: env)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.contains("zkctl: warning: TLS session cache '\(open.path)' (from flag --tls-session-cache) not used: it must be a directory of yours that no one else can enter (chmod 700 it)\n"), r.stderrText)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake"], r.stderrText)
        XCTAssertEqual(sessionFiles(open), [:])

        // Without XDG_RUNTIME_DIR nothing is kept anywhere.
        r = try tls(s, ["-v", "exists", "/zookeeper"])
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake"], r.stderrText)
    }

    /// With client certificates: the resumed session is the certificate's, and a command
    /// without the certificate is refused as before.
    func testASessionKeptWithAClientCertificateNeedsThatCertificate() throws {
        let s = try tlsPort(try clientAuth())
        let runtime = try ZKTestPaths.makeTemporaryDirectory(label: "tls-runtime")
        defer { try? FileManager.default.removeItem(at: runtime) }
        XCTAssertEqual(chmod(runtime.path, 0o700), 0)
        let env = ["XDG_RUNTIME_DIR": runtime.path]
        let cert = ["--tls-cert", fx.path("client.pem"), "--tls-key", fx.path("client.key")]
        var r = try tls(s, ["-v", "exists", "/zookeeper"], extra: cert, env: env)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, full handshake, session kept"], r.stderrText)
        r = try tls(s, ["-v", "exists", "/zookeeper"], extra: cert, env: env)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(handshakes(r), ["tls: \(s): TLSv1.2, resumed a kept session"], r.stderrText)
        try fails(["-s", s, "--tls-ca", fx.path("ca.pem"), "get", "/"], 69, "the server requires a client certificate", server: s, env: env)
        try fails(["-s", s, "--tls-ca", fx.path("ca.pem"), "--tls-cert", fx.path("other-client.pem"), "--tls-key", fx.path("other-client.key"),
                   "get", "/"], 77, "the server refused the client certificate", server: s, env: env)
    }

    // MARK: Errors

    func testVerificationFailures() throws {
        let server = try serverOnly()
        let s = try tlsPort(server)
        try fails(["-s", s, "--tls-ca", fx.path("other-ca.pem"), "get", "/"], 69, "is not signed by the CA in", server: s)
        // The relay kept the handshake's reason: the line leads with it, not with a bare "unavailable".
        try fails(["-s", s, "--tls-ca", fx.path("other-ca.pem"), "get", "/"], 69,
                  "zkctl: TLS to \(s) failed: the server's certificate is not signed by the CA in '\(fx.path("other-ca.pem"))' (unknown CA)\n", server: s)
        // Without --tls-ca: the system's store, which does not hold the test CA.
        try fails(["-s", s, "--tls", "get", "/"], 69, "is not signed by the system's CAs (unknown CA)", server: s)
        try fails(["-s", s, "--tls-ca", fx.path("ca.pem"), "--tls-server-name", "wrong.example.test", "get", "/"], 69,
                  "the server's certificate is not for wrong.example.test (name mismatch", server: s)
        // The certificate's DNS name, asked for by --tls-server-name, passes.
        XCTAssertEqual(try tls(s, ["exists", "/zookeeper"], extra: ["--tls-server-name", "zk.example.test"]).status, 0)
        // An expired server certificate.
        let expired = try Self.shared.server("expired") { try ZooKeeperServer.secure(stores: $0.expiredStores) }
        let e = try tlsPort(expired)
        try fails(["-s", e, "--tls-ca", fx.path("ca.pem"), "get", "/"], 69, "the server's certificate has expired", server: e)
        // --tls-insecure connects anyway, with a warning every time.
        let r = try zkctl(["-s", e, "--tls-insecure", "exists", "/zookeeper"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: warning: TLS without verification"), r.stderrText)
    }

    func testPlainAndTLSPortsMixedUp() throws {
        let server = try serverOnly()
        let plain = server.connectString, secure = try tlsPort(server)
        try fails(["-s", plain, "--tls-ca", fx.path("ca.pem"), "get", "/"], 69,
                  "the server did not answer TLS (is this the plain client port?)", server: plain)
        try fails(["-s", secure, "get", "/"], 69, "it looks like a TLS port; try --tls", server: secure)
        // status too: the probe over TLS to a plain port says so in the server's row.
        let r = try zkctl(["-s", plain, "--tls-ca", fx.path("ca.pem"), "--timeout", "2s", "status"])
        XCTAssertEqual(r.status, 69, r.stdoutText + r.stderrText)
        XCTAssertTrue(r.stdoutText.contains("the server did not answer TLS"), r.stdoutText)
    }

    func testSettingsFilesAndKeyWarnings() throws {
        let s = try tlsPort(try clientAuth())
        let scratch = try ZKTestPaths.makeTemporaryDirectory(label: "tls-settings")
        defer { try? FileManager.default.removeItem(at: scratch) }
        // A key others can read: warned about (as an auth file is), never shown.
        let loose = scratch.appendingPathComponent("loose.key").path
        try FileManager.default.copyItem(atPath: fx.path("client.key"), toPath: loose)
        chmod(loose, 0o644)
        let config = scratch.appendingPathComponent("config").path
        try Data("""
        [zookeeper]
        servers = \(s)
        [zkctl]
        tls = yes
        tls-ca = \(fx.path("ca.pem"))
        tls-cert = \(fx.path("client.pem"))
        tls-key = \(loose)

        """.utf8).write(to: URL(fileURLWithPath: config))
        let r = try zkctl(["--config", config, "-v", "exists", "/zookeeper"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.contains("zkctl: warning: TLS key file '\(loose)' can be read by other users; chmod 600 it"), r.stderrText)
        let key = try String(contentsOfFile: fx.path("client.key"), encoding: .utf8)
        let body = key.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        XCTAssertFalse(r.stderrText.contains("PRIVATE KEY") || r.stderrText.contains(body.prefix(24)), "no key material: \(r.stderrText)")
        // A key file that cannot be read: exit 66, named.
        let missing = scratch.appendingPathComponent("missing.key").path
        let m = try zkctl(["-s", s, "--tls-cert", fx.path("client.pem"), "--tls-key", missing, "get", "/"])
        XCTAssertEqual(m.status, 66, m.stderrText)
        XCTAssertEqual(m.stderrText, "zkctl: cannot read TLS key '\(missing)' (from flag --tls-key)\n")
        // A key without its certificate, and a ZKCTL_TLS that is neither yes nor no: usage errors.
        let k = try zkctl(["-s", s, "--tls-key", fx.path("client.key"), "get", "/"])
        XCTAssertEqual(k.status, 64, k.stderrText)
        XCTAssertTrue(k.stderrText.hasPrefix("zkctl: a TLS key (flag --tls-key) needs its certificate: give --tls-cert too"), k.stderrText)
        let v = try zkctl(["-s", s, "get", "/"], env: ["ZKCTL_TLS": "maybe"])
        XCTAssertEqual(v.status, 64, v.stderrText)
        XCTAssertTrue(v.stderrText.hasPrefix("zkctl: bad tls 'maybe' from environment ZKCTL_TLS: expected yes or no"), v.stderrText)
        // ZKCTL_TLS=no wins over a CA file from the environment: plain TCP, to the plain port.
        let plain = try clientAuth().connectString
        let n = try zkctl(["-s", plain, "exists", "/zookeeper"], env: ["ZKCTL_TLS": "no", "ZKCTL_TLS_CA": fx.path("ca.pem")])
        XCTAssertEqual(n.status, 0, n.stderrText)
        // ZKCTL_TLS=yes alone: TLS, verified against the system's CAs, which do not hold the test CA.
        try fails(["-s", s, "get", "/"], 69, "(unknown CA)", server: s, env: ["ZKCTL_TLS": "yes"])
    }

    // MARK: The relay is this process's only

    func testAnotherProcessGetsNothingFromTheRelay() throws {
        let s = try tlsPort(try serverOnly())
        ok(try tls(s, ["create", "-p", root, "v1"]), "create")
        let env = Self.cleanEnvironment
        let watcher = try BackgroundProcess(zkctlBinaryPath(), ["-s", s, "--tls-ca", fx.path("ca.pem"), "watch", root], environment: env)
        defer { watcher.kill() }
        XCTAssertTrue(watcher.waitForLines(1), "watch printed its initial state: \(watcher.stdout) \(watcher.stderr)")
        let ports = listeningLoopbackPorts(of: watcher.pid)
        XCTAssertEqual(ports.count, 1, "one relay listener per server: \(ports)")
        for port in ports {
            // A real ZooKeeper connect request (which a server answers with a new session), then
            // whatever comes back: nothing.
            let probe = """
            import socket, struct
            s = socket.create_connection(("127.0.0.1", \(port)), timeout=5)
            s.sendall(struct.pack(">iiqiqi16s", 44, 0, 0, 4000, 0, 16, bytes(16)))
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk: break
                    got += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            print(len(got))
            """
            let r = try runProcess("python3", ["-c", probe], timeout: 30)
            XCTAssertEqual(r.status, 0, r.stderrText)
            XCTAssertEqual(r.stdoutText, "0\n", "another process got bytes from the relay on port \(port)")
        }
        // zkctl's own session goes on.
        ok(try tls(s, ["set", root, "v2"]), "set")
        XCTAssertTrue(watcher.waitForLines(2), "the watch saw the change: \(watcher.stdout) \(watcher.stderr)")
        XCTAssertTrue(watcher.stdout.contains("changed \(root) = v2"), watcher.stdout)
        ok(try tls(s, ["delete", root]), "cleanup")
    }

    /// The 127.0.0.1 listening TCP ports whose sockets process `pid` holds.
    func listeningLoopbackPorts(of pid: Int32) -> [Int] {
        var inodes = Set<String>()
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") {
            for fd in fds {
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                   target.hasPrefix("socket:[") {
                    inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
                }
            }
        }
        guard let table = try? runProcess("cat", ["/proc/\(pid)/net/tcp"], timeout: 10).stdoutText else { return [] }
        var ports: [Int] = []
        for line in table.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            guard f.count >= 10, f[3] == "0A", inodes.contains(String(f[9])), f[1].hasPrefix("0100007F:"),
                  let port = Int(f[1].dropFirst("0100007F:".count), radix: 16) else { continue }
            ports.append(port)
        }
        return ports
    }

    // MARK: A secure ensemble

    func testSecureEnsembleLosesAMember() throws {
        let ensemble = try ZooKeeperServer.secure(stores: fx.stores, ensembleSize: 3)
        defer { ensemble.shutdown() }
        let s = try tlsPort(ensemble)
        ok(try tls(s, ["create", "-p", root, "before"]), "create")
        let status = ok(try tls(s, ["status"]), "status")
        XCTAssertTrue(status.contains("Verdict: healthy (3 of 3"), status)

        // A long session, moved by the C client from the killed member to another's relay port.
        let env = Self.cleanEnvironment
        let watcher = try BackgroundProcess(zkctlBinaryPath(), ["-s", s, "--tls-ca", fx.path("ca.pem"), "watch", root], environment: env)
        defer { watcher.kill() }
        XCTAssertTrue(watcher.waitForLines(1), watcher.stderr)

        try ensemble.kill(member: try ensemble.leader())
        try ensemble.waitUntilServing()
        ok(try tls(s, ["set", root, "after"]), "set with a member killed")
        XCTAssertEqual(ok(try tls(s, ["get", root]), "get"), "after")
        XCTAssertTrue(watcher.waitForLines(2, seconds: 30), "the watch went on: \(watcher.stdout) \(watcher.stderr)")
        XCTAssertTrue(watcher.stdout.contains("changed \(root) = after"), watcher.stdout)
        let degraded = try tls(s, ["status"])
        XCTAssertEqual(degraded.status, 0, degraded.stderrText)
        XCTAssertTrue(degraded.stdoutText.contains("Verdict: degraded (2 of 3"), degraded.stdoutText)
    }
}
