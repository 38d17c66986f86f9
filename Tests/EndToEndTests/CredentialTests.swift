import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Digest authentication end to end: ACLs that refuse others (exit 77, the path named),
/// ZKCTL_AUTH and --auth-file, a warning for an auth file others can read, and the password in no
/// output, error, verbose log, JSON document or process command line.
final class CredentialTests: XCTestCase {
    var server: ZooKeeperServer!
    var kit: FaultKit!
    /// Unique, so finding it anywhere means it leaked.
    let password = "pw-\(UUID().uuidString.prefix(12).lowercased())-S3cret"
    var credential: String { "alice:" + password }

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        kit = try FaultKit(servers: server.connectString, label: "cred")
    }

    override func tearDown() {
        // The protected nodes need alice to be removed.
        _ = try? kit?.run(["delete", "-r", "--force", kit.root], env: ["ZKCTL_AUTH": credential])
        kit?.finish()
    }

    /// Every byte a run showed, checked for the password.
    func assertNoPassword(_ r: ProcessResult, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for (name, data) in [("stdout", r.stdout), ("stderr", r.stderr)] {
            XCTAssertNil(data.range(of: Data(password.utf8)), "\(what): the password appears on \(name): \(String(decoding: data, as: UTF8.self).prefix(500))",
                         file: file, line: line)
        }
    }

    func authFile(_ content: String, mode: mode_t = 0o600) throws -> String {
        let path = kit.file("auth-\(UUID().uuidString.prefix(6))")
        try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    func testDigestACLRefusesOthersAndNeverShowsThePassword() throws {
        let secret = kit.root + "/secret"
        let asAlice = ["ZKCTL_AUTH": credential]
        let digest = try kit.run(["digest", "-"], stdin: Data((credential + "\n").utf8))
        XCTAssertEqual(digest.status, 0, digest.stderrText)
        assertNoPassword(digest, "digest")
        let id = digest.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(id.hasPrefix("alice:") && id.count > 20, id)

        // Created as alice, for alice only (and a config key under a root only alice may use).
        var r = try kit.run(["create", "-p", secret, "top secret data", "--acl", "digest:\(id):cdrwa"], env: asAlice)
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try kit.run(["create", secret + "/child", "child data", "--acl", "auth::cdrwa"], env: asAlice)
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try kit.run(["--config-root", secret + "/config", "config", "set", "db", #"{"host":"h"}"#, "--acl", "auth::cdrwa"], env: asAlice)
        XCTAssertEqual(r.status, 0, r.stderrText)

        // Others: nobody, bob, and alice with a wrong password. Exit 77, one line naming the path.
        let others: [(String, [String: String], [String])] = [
            ("anonymous", [:], []),
            ("bob", ["ZKCTL_AUTH": "bob:bobs-password"], []),
            ("wrong password", ["ZKCTL_AUTH": "alice:not-the-password"], []),
            ("bob by flag", [:], ["--auth", "bob:bobs-password"]),
        ]
        for (who, env, extra) in others {
            for (args, path) in [(["get", secret], secret), (["set", secret, "x"], secret), (["ls", secret], secret),
                                 (["delete", secret + "/child"], secret + "/child"), (["get", secret + "/child"], secret + "/child"),
                                 (["create", secret + "/new"], secret + "/new"), (["-o", "json", "get", secret], secret),
                                 (["--config-root", secret + "/config", "config", "get", "db"], secret + "/config/db"),
                                 (["--config-root", secret + "/config", "config", "set", "db", "host", "evil"], secret + "/config/db")] {
                let r = try kit.run(extra + args, env: env)
                XCTAssertEqual(r.status, 77, "\(who) \(args): \(r.stderrText)")
                XCTAssertEqual(r.stdout.count, 0, "\(who) \(args)")
                let lines = r.stderrText.split(separator: "\n")
                let errors = lines.filter { !$0.hasPrefix("zkctl: warning: ") }
                XCTAssertEqual(errors.count, 1, "\(who) \(args): \(r.stderrText)")
                XCTAssertTrue(errors.first?.hasPrefix("zkctl: ") ?? false, "\(who) \(args): \(r.stderrText)")
                XCTAssertTrue(errors.first?.contains(path) ?? false, "\(who) \(args): the message should name \(path): \(r.stderrText)")
                assertNoPassword(r, "\(who) \(args)")
            }
        }
        // Nothing changed by them.
        r = try kit.run(["get", secret], env: asAlice)
        XCTAssertEqual(r.stdoutText, "top secret data")

        // Alice, through the environment and through an auth file.
        let file = try authFile("# alice\n\(credential)\n")
        for (how, env, extra) in [("ZKCTL_AUTH", asAlice, []), ("--auth-file", [:], ["--auth-file", file])] as [(String, [String: String], [String])] {
            for args in [["get", secret], ["-o", "json", "get", secret, "--stat"], ["ls", secret], ["acl", "get", secret],
                         ["-o", "json", "acl", "get", secret], ["--config-root", secret + "/config", "-o", "json", "config", "get", "db"],
                         ["-vv", "get", secret], ["-v", "status"], ["-o", "json", "-v", "status"], ["export", secret],
                         ["-o", "json", "tree", secret, "--data"]] {
                let r = try kit.run(extra + args, env: env)
                XCTAssertEqual(r.status, 0, "\(how) \(args): \(r.stderrText)")
                assertNoPassword(r, "\(how) \(args)")
                if args.contains("-vv") {
                    XCTAssertTrue(r.stderrText.contains("zkctl: "), "-vv logs something: \(r.stderrText)")
                }
            }
            r = try kit.run(extra + ["get", secret], env: env)
            XCTAssertEqual(r.stdoutText, "top secret data", how)
            XCTAssertEqual(r.stderrText, "", "\(how): no warning for a private auth file or the environment")
        }

        // The command-line form works too; it warns, and shows the password nowhere.
        r = try kit.run(["--auth", credential, "-vv", "get", secret])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.contains("zkctl: warning: "), r.stderrText)
        assertNoPassword(r, "--auth -vv get")

        // Failures with the credential in play: the password stays out of every message.
        for (args, env, code) in [
            (["--timeout", "1s", "-s", "127.0.0.1:1", "-vv", "get", secret], asAlice, Int32(69)),
            (["-vv", "get", secret + "/missing"], asAlice, 1),
            (["-vv", "create", secret], asAlice, 75),
            (["--auth-file", try authFile("\(credential)\nbroken-line-without-colon\n"), "get", secret], [:], 64),
            (["-vv", "--auth", credential, "--auth", "bad", "get", secret], [:], 64),
            (["-vv", "--timeout", "zero", "get", secret], asAlice, 64),
            (["-vv", "import", kit.file("missing.json")], asAlice, 66),
        ] as [([String], [String: String], Int32)] {
            let r = try kit.run(args, env: env)
            XCTAssertEqual(r.status, code, "\(args): \(r.stderrText)")
            assertNoPassword(r, "\(args)")
        }
        // Nor does the JSON of a failure or of settings.
        r = try kit.run(["-o", "json", "-vv", "status"], env: asAlice)
        assertNoPassword(r, "status json")
        XCTAssertTrue(r.stdoutText.contains("alice") || r.stderrText.contains("alice") || !r.stdoutText.isEmpty, r.stdoutText)
    }

    func testAuthFileReadableByOthersGetsAWarning() throws {
        let open = try authFile("\(credential)\n", mode: 0o644)
        var r = try kit.run(["--auth-file", open, "exists", "/"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: warning: ") && r.stderrText.contains(open), "expected a warning naming the file: \(r.stderrText)")
        XCTAssertEqual(r.stderrText.split(separator: "\n").count, 1, r.stderrText)
        assertNoPassword(r, "readable auth file")

        let groupReadable = try authFile("\(credential)\n", mode: 0o640)
        r = try kit.run(["--auth-file", groupReadable, "exists", "/"])
        XCTAssertTrue(r.stderrText.contains("warning"), "group-readable is readable by others too: \(r.stderrText)")

        let closed = try authFile("\(credential)\n", mode: 0o600)
        r = try kit.run(["--auth-file", closed, "exists", "/"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")

        // Named in a config file, the same rule.
        let config = kit.file("config.ini")
        try Data("[zkctl]\nauth-file = \(open)\n".utf8).write(to: URL(fileURLWithPath: config))
        r = try kit.run(["--config", config, "exists", "/"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.contains("warning") && r.stderrText.contains(open), r.stderrText)
        assertNoPassword(r, "auth file from config")
    }

    /// A running `zkctl lock NAME -- sleep 5`: its command line (what `ps` shows every user) holds
    /// no password when the credential comes from the environment or a file.
    func testCommandLineOfARunningLockHolderHoldsNoPassword() throws {
        let file = try authFile("\(credential)\n")
        for (how, env, extra) in [("ZKCTL_AUTH", ["ZKCTL_AUTH": credential], []), ("--auth-file", [:], ["--auth-file", file])]
            as [(String, [String: String], [String])] {
            let holder = try kit.background(extra + ["lock", "cmdline-\(how)", "--", "sleep", "5"], env: env)
            defer { holder.kill() }
            // Wait until it holds the lock (its child runs).
            XCTAssertTrue(kit.waitUntil(timeout: 20) { !childPids(of: holder.pid).isEmpty }, "\(how): no child: \(holder.stderr)")
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(holder.pid)/cmdline"))) ?? Data()
            XCTAssertFalse(cmdline.isEmpty, "\(how): cannot read /proc/\(holder.pid)/cmdline")
            XCTAssertTrue(String(decoding: cmdline, as: UTF8.self).contains("lock"), "\(how): that is not zkctl's command line")
            XCTAssertNil(cmdline.range(of: Data(password.utf8)), "\(how): the password is on zkctl's command line")
            for child in childPids(of: holder.pid) {
                let childLine = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(child)/cmdline"))) ?? Data()
                XCTAssertNil(childLine.range(of: Data(password.utf8)), "\(how): the password is on the child's command line")
                // Note, not a requirement: /proc/PID/environ is readable by the user only (and
                // root); with ZKCTL_AUTH the child inherits the variable like any other.
                var info = stat()
                if stat("/proc/\(child)/environ", &info) == 0 {
                    let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(child)/environ"))) ?? Data()
                    print("CredentialTests: \(how): /proc/\(child)/environ mode \(String(info.st_mode & 0o777, radix: 8)), "
                          + "child environment holds the password: \(environ.range(of: Data(password.utf8)) != nil)")
                }
            }
            XCTAssertEqual(holder.waitForExit(seconds: 30), 0, "\(how): \(holder.stderr)")
            XCTAssertNil(holder.stderrData.range(of: Data(password.utf8)))
            XCTAssertNil(holder.stdoutData.range(of: Data(password.utf8)))
        }
    }
}

/// The children of `pid`, from /proc (each process's stat names its parent).
func childPids(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { candidate in
        guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid
    }
}
