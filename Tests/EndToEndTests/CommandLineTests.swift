import Foundation
import XCTest
import ZKTestSupport

/// The built binary as a user runs it: `status`, `tree`, help, settings and usage errors.
final class CommandLineTests: XCTestCase {
    var server: ZooKeeperServer!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
    }

    /// Runs zkctl with a clean environment (no settings leak in from the machine).
    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil) throws -> ProcessResult {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(env) { $1 }
        return try runProcess(zkctlBinaryPath(), args, environment: environment, stdin: stdin)
    }

    func connected(_ args: [String], env: [String: String] = [:]) throws -> ProcessResult {
        try zkctl(["-s", server.connectString] + args, env: env)
    }

    func json(_ r: ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: r.stdout, options: [.fragmentsAllowed])
    }

    /// Makes a tree with the binary itself (create --parents), or fails the test.
    func makeNodes(_ paths: [String]) throws {
        let script = paths.map { "'\(zkctlBinaryPath())' -s '\(server.connectString)' create --parents '\($0)' >/dev/null" }.joined(separator: " && ")
        let r = try runProcess("/bin/sh", ["-c", script])
        XCTAssertEqual(r.status, 0, r.stderrText)
    }

    // MARK: version and help

    func testVersionNamesTheCClient() throws {
        let r = try zkctl(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdoutText.hasPrefix("zkctl "), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("ZooKeeper C client 3."), r.stdoutText)
        XCTAssertEqual(r.stderrText, "")
    }

    func testHelpInEveryForm() throws {
        let top = try zkctl(["--help"])
        XCTAssertEqual(top.status, 0)
        XCTAssertTrue(top.stdoutText.contains("status"))
        XCTAssertTrue(top.stdoutText.contains("tree"))
        let a = try zkctl(["help", "tree"])
        let b = try zkctl(["tree", "--help"])
        XCTAssertEqual(a.status, 0)
        XCTAssertEqual(a.stdoutText, b.stdoutText)
        XCTAssertTrue(a.stdoutText.contains("--depth"))
        let bad = try zkctl(["help", "tre"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(bad.stderrText, "zkctl: unknown command 'tre' (did you mean 'tree'?); see 'zkctl --help'\n")
    }

    // MARK: usage errors: one line on stderr, exit 64, nothing on stdout

    func testEveryUsageErrorClass() throws {
        let cases: [([String], String)] = [
            (["stauts"], "zkctl: unknown command 'stauts' (did you mean 'status'?); see 'zkctl --help'"),
            (["tree", "--dpth", "2"], "zkctl: unknown option '--dpth' for 'tree' (did you mean '--depth'?); see 'zkctl tree --help'"),
            (["tree", "--depth"], "zkctl: option '--depth' needs a value (N); see 'zkctl tree --help'"),
            (["tree", "--depth", "many"], "zkctl: bad value 'many' for '--depth': not a whole number; see 'zkctl tree --help'"),
            (["tree", "--ascii=yes"], "zkctl: option '--ascii' takes no value; see 'zkctl tree --help'"),
            (["tree", "/a", "/b"], "zkctl: unexpected argument '/b' for 'tree'; see 'zkctl tree --help'"),
            (["tree", "config"], "zkctl: bad PATH 'config': a path must start with '/'; see 'zkctl tree --help'"),
            (["-o", "yaml", "status"], "zkctl: bad value 'yaml' for '-o': must be one of text, json, ndjson, prometheus; see 'zkctl --help'"),
            (["--timeout", "forever", "status"], "zkctl: bad value 'forever' for '--timeout': not a duration (like 500ms, 10s, 5m, 24h); see 'zkctl --help'"),
            (["-s", "host:0", "status"], "zkctl: bad server list 'host:0' from flag --server: bad port '0' in server 'host:0'; see 'zkctl status --help'"),
        ]
        for (args, expected) in cases {
            let r = try zkctl(args)
            XCTAssertEqual(r.status, 64, "\(args)")
            XCTAssertEqual(r.stderrText, expected + "\n", "\(args)")
            XCTAssertEqual(r.stdoutText, "", "\(args)")
        }
    }

    func testMalformedConfigFileIsAUsageError() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-bad-\(UUID().uuidString)").path
        try "[zookeeper]\nservers\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try zkctl(["status"], env: ["ZKCTL_CONFIG": path])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(r.stderrText, "zkctl: bad config file '\(path)' line 2: expected key = value, got 'servers'; see 'zkctl status --help'\n")
    }

    // MARK: settings precedence, through the binary

    func testServersComeFromFlagThenEnvironmentThenFile() throws {
        let dead = "127.0.0.1:1"
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-cfg-\(UUID().uuidString)").path
        try "[zookeeper]\nservers = \(server.connectString)\n".write(toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        // File alone: reaches the server.
        XCTAssertEqual(try zkctl(["--timeout", "3s", "tree", "/", "--depth", "0"], env: ["ZKCTL_CONFIG": config]).status, 0)
        // Environment beats the file: nothing listens there.
        let env = try zkctl(["--timeout", "1s", "tree", "/", "--depth", "0"], env: ["ZKCTL_CONFIG": config, "ZOOKEEPER_HOSTS": dead])
        XCTAssertEqual(env.status, 69)
        XCTAssertTrue(env.stderrText.contains(dead), env.stderrText)
        // The flag beats both.
        XCTAssertEqual(try zkctl(["-s", server.connectString, "tree", "/", "--depth", "0"], env: ["ZKCTL_CONFIG": config, "ZKCTL_SERVERS": dead]).status, 0)
        // status -v shows where each value came from.
        let v = try zkctl(["-v", "-o", "json", "status"], env: ["ZKCTL_CONFIG": config])
        XCTAssertEqual(v.status, 0, v.stderrText)
        let doc = try json(v) as? [String: Any]
        let settings = doc?["settings"] as? [String: Any]
        let servers = settings?["servers"] as? [String: Any]
        XCTAssertEqual(servers?["source"] as? String, "file \(config)")
    }

    // MARK: status

    func testStatusOnAStandaloneServer() throws {
        let r = try connected(["status"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        XCTAssertTrue(r.stdoutText.contains("standalone"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("Verdict: healthy"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("Session: connected to 127.0.0.1:"), r.stdoutText)

        let j = try connected(["-o", "json", "status"])
        XCTAssertEqual(j.status, 0)
        let doc = try XCTUnwrap(try json(j) as? [String: Any])
        XCTAssertEqual(doc["healthy"] as? Bool, true)
        let session = try XCTUnwrap(doc["session"] as? [String: Any])
        XCTAssertTrue((session["sessionId"] as? String)?.hasPrefix("0x") ?? false)
        let servers = try XCTUnwrap(doc["servers"] as? [[String: Any]])
        XCTAssertEqual(servers.count, 1)
        XCTAssertEqual(servers[0]["mode"] as? String, "standalone")
        XCTAssertEqual(servers[0]["reachable"] as? Bool, true)
        XCTAssertNotNil(servers[0]["nodeCount"] as? Int)
        // jq can read it.
        let jq = try runProcess("/bin/sh", ["-c", "'\(zkctlBinaryPath())' -s '\(server.connectString)' -o json status | jq -r .servers[0].mode"])
        XCTAssertEqual(jq.stdoutText, "standalone\n")
    }

    func testStatusWithNothingListeningIsUnavailableWithinTheTimeout() throws {
        let started = Date()
        let r = try zkctl(["-s", "127.0.0.1:1", "--timeout", "2s", "status"])
        XCTAssertEqual(r.status, 69)
        XCTAssertLessThan(Date().timeIntervalSince(started), 8)
        XCTAssertTrue(r.stdoutText.contains("down"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("Verdict: unhealthy"), r.stdoutText)
        let j = try zkctl(["-s", "127.0.0.1:1", "--timeout", "1s", "--json", "status"])
        XCTAssertEqual(j.status, 69)
        let doc = try XCTUnwrap(try json(j) as? [String: Any])
        XCTAssertEqual(doc["healthy"] as? Bool, false)
        XCTAssertTrue(doc["session"] is NSNull)
    }

    func testStatusOnAnEnsembleWithOneMemberStopped() throws {
        let ensemble = try ZooKeeperServer.ensemble(size: 3)
        defer { ensemble.shutdown() }
        let all = try zkctl(["-s", ensemble.connectString, "-o", "json", "status"])
        XCTAssertEqual(all.status, 0, all.stderrText)
        var doc = try XCTUnwrap(try json(all) as? [String: Any])
        var servers = try XCTUnwrap(doc["servers"] as? [[String: Any]])
        XCTAssertEqual(servers.count, 3)
        XCTAssertEqual(servers.compactMap { $0["mode"] as? String }.sorted(), ["follower", "follower", "leader"])
        // The ensemble names its members itself, even when the connect string names only one.
        let one = try zkctl(["-s", ensemble.memberConnectString(1), "-o", "json", "status"])
        doc = try XCTUnwrap(try json(one) as? [String: Any])
        servers = try XCTUnwrap(doc["servers"] as? [[String: Any]])
        XCTAssertEqual(servers.count, 3, one.stdoutText)

        XCTAssertEqual(doc["verdict"] as? String, "healthy", one.stdoutText)

        // One member down: listed, not hidden; a quorum still serves (2 of 3), so exit 0, but the
        // verdict says "degraded", not "healthy".
        let stopped = try ensemble.leader() == 3 ? 2 : 3
        try ensemble.stop(member: stopped)
        let degraded = try zkctl(["-s", ensemble.connectString, "--timeout", "5s", "status"])
        XCTAssertEqual(degraded.status, 0, degraded.stdoutText + degraded.stderrText)
        XCTAssertTrue(degraded.stdoutText.contains("down"), degraded.stdoutText)
        XCTAssertTrue(degraded.stdoutText.contains("Verdict: degraded (2 of 3"), degraded.stdoutText)
        let degradedJSON = try zkctl(["-s", ensemble.connectString, "--timeout", "5s", "-o", "json", "status"])
        XCTAssertEqual(degradedJSON.status, 0, degradedJSON.stderrText)
        doc = try XCTUnwrap(try json(degradedJSON) as? [String: Any])
        XCTAssertEqual(doc["verdict"] as? String, "degraded")
        XCTAssertEqual(doc["healthy"] as? Bool, true)

        // Two down: no quorum, exit 69.
        let other = [1, 2, 3].first { $0 != stopped }!
        try ensemble.stop(member: other)
        let broken = try zkctl(["-s", ensemble.connectString, "--timeout", "3s", "status"])
        XCTAssertEqual(broken.status, 69, broken.stdoutText)
        XCTAssertTrue(broken.stdoutText.contains("Verdict: unhealthy"), broken.stdoutText)
    }

    func testUnknownConfigFileKeyIsWarnedWithFileLineAndAGuess() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-cfg-\(UUID().uuidString)").path
        try "# mine\n[zookeeper]\nserver = \(server.connectString)\n[zkctl]\ntimeout = 5s\ncolour = no\n".write(toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        // 'server' is not 'servers': the default server is used (nothing there), and a warning
        // names the file, the line and the key meant. The exit code is the command's own.
        let r = try zkctl(["--timeout", "1s", "exists", "/"], env: ["ZKCTL_CONFIG": config])
        XCTAssertEqual(r.status, 69, r.stderrText)
        let lines = r.stderrText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, r.stderrText)
        XCTAssertEqual(lines.first, "zkctl: warning: config file '\(config)' line 3: unknown key 'server' in [zookeeper], ignored (did you mean 'servers'?)")
        XCTAssertEqual(lines.dropFirst().first, "zkctl: warning: config file '\(config)' line 6: unknown key 'colour' in [zkctl], ignored "
                       + "(known keys in [zkctl]: timeout, session-timeout, output, config-root, services-root, locks-root, tasks-root, max-inflight, sync, elections-root, auth-file, tls, tls-ca, tls-cert, tls-key, tls-session-cache)")
        // Known keys only: no warning at all.
        try "[zookeeper]\nservers = \(server.connectString)\n".write(toFile: config, atomically: true, encoding: .utf8)
        let ok = try zkctl(["exists", "/"], env: ["ZKCTL_CONFIG": config])
        XCTAssertEqual(ok.status, 0, ok.stderrText)
        XCTAssertEqual(ok.stderrText, "")
    }

    // MARK: tree

    func testTreeDepthsAndFormats() throws {
        let base = "/tree-\(UUID().uuidString.prefix(8))"
        try makeNodes(["\(base)/a/a1", "\(base)/a/a2/deep", "\(base)/b"])
        let full = try connected(["tree", base, "--ascii"])
        XCTAssertEqual(full.status, 0, full.stderrText)
        XCTAssertEqual(full.stdoutText, """
        \(base)
        |-- a
        |   |-- a1
        |   `-- a2
        |       `-- deep
        `-- b

        """)
        let boxed = try connected(["tree", "--path", base, "--depth", "1"])
        XCTAssertEqual(boxed.stdoutText, "\(base)\n├── a\n└── b\n")
        let only = try connected(["tree", base, "-d", "0"])
        XCTAssertEqual(only.stdoutText, "\(base)\n")

        let stat = try connected(["tree", base, "--stat", "--depth", "1"])
        XCTAssertTrue(stat.stdoutText.contains("a [v0, 0 B, 2 children]"), stat.stdoutText)

        let j = try connected(["-o", "json", "tree", base])
        let doc = try XCTUnwrap(try json(j) as? [String: Any])
        XCTAssertEqual(doc["path"] as? String, base)
        let kids = try XCTUnwrap(doc["children"] as? [[String: Any]])
        XCTAssertEqual(kids.map { $0["name"] as? String }, ["a", "b"])
        let jq = try runProcess("/bin/sh", ["-c", "'\(zkctlBinaryPath())' -s '\(server.connectString)' -o json tree \(base) | jq -r '.. | .path? // empty'"])
        XCTAssertEqual(jq.stdoutText, "\(base)\n\(base)/a\n\(base)/a/a1\n\(base)/a/a2\n\(base)/a/a2/deep\n\(base)/b\n")

        let nd = try connected(["-o", "ndjson", "tree", base])
        let lines = nd.stdoutText.split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        XCTAssertTrue(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })

        let missing = try connected(["tree", "\(base)/nope"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderrText, "zkctl: \(base)/nope: no such znode\n")
        XCTAssertEqual(missing.stdoutText, "")
    }

    func testTreeOf10000Znodes() throws {
        let base = "/big-\(UUID().uuidString.prefix(8))"
        // 100 x 100 nodes, written fast through zkctl's own import (the export format).
        let open: [[String: String]] = [["scheme": "world", "id": "anyone", "perms": "cdrwa"]]
        let doc: [String: Any] = [
            "format": "zkctl-export", "version": 1, "root": base,
            "nodes": [["path": "", "data": "", "acl": open]] + (0..<100).flatMap { i in
                [["path": "a\(i)", "data": "", "acl": open]] + (0..<99).map { j in ["path": "a\(i)/b\(j)", "data": "v\(j)", "acl": open] }
            },
        ]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tree-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: doc).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let imported = try connected(["import", file.path])
        XCTAssertEqual(imported.status, 0, "tree test needs 'zkctl import': " + imported.stderrText)

        let r = try connected(["tree", base])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText.split(separator: "\n").count, 10_001)
        let nd = try connected(["-o", "ndjson", "tree", base])
        XCTAssertEqual(nd.stdoutText.split(separator: "\n").count, 10_001)
        let jq = try runProcess("/bin/sh", ["-c", "'\(zkctlBinaryPath())' -s '\(server.connectString)' -o json tree \(base) | jq '[.. | .path? // empty] | length'"])
        XCTAssertEqual(jq.stdoutText, "10001\n")
    }
}
