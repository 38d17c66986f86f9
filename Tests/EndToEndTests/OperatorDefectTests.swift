import Foundation
import XCTest
import ZKTestSupport

/// Defects an operator found trying zkctl cold (issue 23): byte-exact `get`, `-` as stdin,
/// control bytes on a terminal, paths with a trailing slash, config values that start with a
/// digit, and `acl set -r` that would lock the caller out. Through the built binary against a
/// real server; terminal cases run zkctl on a pseudo-terminal made by script(1).
final class OperatorDefectTests: XCTestCase {
    var server: ZooKeeperServer!
    var base = ""
    static let credential = "opsuser:opspass"

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("operator")
        let r = try zkctl(["create", base])
        XCTAssertEqual(r.status, 0, r.stderrText)
    }

    override func tearDownWithError() throws {
        _ = try? zkctl(["delete", "--recursive", "--force", base], env: ["ZKCTL_AUTH": Self.credential])
    }

    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(extra) { $1 }
        return environment
    }

    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), ["-s", server.connectString] + args, environment: environment(env), stdin: stdin)
    }

    /// A command that must succeed with nothing on stderr; returns stdout's bytes.
    @discardableResult
    func ok(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Data {
        let r = try zkctl(args, env: env, stdin: stdin)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText, "", "\(args)", file: file, line: line)
        return r.stdout
    }

    /// A command that must fail with `status`, nothing on stdout and one `zkctl: ` line; returns it.
    @discardableResult
    func fails(_ args: [String], _ status: Int32, env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try zkctl(args, env: env)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "\(args): \(r.stderrText)", file: file, line: line)
        return r.stderrText
    }

    func temporaryFile(_ data: Data = Data()) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-op-\(UUID().uuidString)").path
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// zkctl with `args` on a pseudo-terminal: what the terminal received, and the exit code.
    func onTerminal(_ args: [String], env: [String: String] = [:]) throws -> (screen: Data, status: Int32) {
        let r = try runOnTerminal(zkctlBinaryPath(), ["-s", server.connectString] + args, environment: environment(env))
        return (r.stdout, r.status)
    }

    // MARK: Item 2: get is byte-exact to a file or a pipe

    func testGetToAPipeIsByteExactAndRoundTrips() throws {
        var binary = Data((0...255).map { UInt8($0) })
        binary.append(contentsOf: [0xff, 0xfe, 0x00, 0xc3])
        let cases: [(String, Data)] = [
            ("text", Data("line one\nline two\n".utf8)),
            ("no-newline", Data("plain".utf8)),
            ("binary", binary),
            ("empty", Data()),
        ]
        for (name, bytes) in cases {
            let p = "\(base)/\(name)"
            try ok(["create", p, "--file", try temporaryFile(bytes)])
            XCTAssertEqual(try ok(["get", p]), bytes, name)
            // get > f; set --file f, three times: the node never changes.
            for _ in 0..<3 {
                let copy = try temporaryFile(try ok(["get", p]))
                try ok(["set", p, "--file", copy])
            }
            XCTAssertEqual(try ok(["get", "--base64", p]), Data((bytes.base64EncodedString() + "\n").utf8), name)
        }
        // With --stat the stat starts on a line of its own.
        let text = String(decoding: try ok(["get", "--stat", "\(base)/no-newline"]), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("plain\n"), text)
        XCTAssertEqual(text.split(separator: "\n").count, 12, text)
    }

    // MARK: Items 2 and 7: a terminal gets text, never raw control bytes

    func testGetOnATerminalEscapesControlsAndDescribesBinary() throws {
        let p = "\(base)/screen"
        try ok(["create", p, "--file", try temporaryFile(Data("a\u{1b}[2Jb\u{7}\nsecond\tline".utf8))])
        let (screen, status) = try onTerminal(["get", p])
        XCTAssertEqual(status, 0)
        XCTAssertFalse(screen.contains(0x1b), "an ESC reached the terminal: \(screen as NSData)")
        XCTAssertEqual(String(decoding: screen, as: UTF8.self), "a\\x1b[2Jb\\x07\nsecond\tline\n")

        let bin = "\(base)/bin"
        try ok(["create", bin, "--file", try temporaryFile(Data([0xff, 0x1b, 0x00]))])
        let described = try onTerminal(["get", bin])
        XCTAssertEqual(described.status, 0)
        XCTAssertEqual(String(decoding: described.screen, as: UTF8.self), "<3 bytes, not UTF-8; use --base64 or -o json>\n")
    }

    func testWatchAndTreeNeverWriteControlBytes() throws {
        let p = "\(base)/ctl"
        try ok(["create", p, "--file", try temporaryFile(Data("x\u{1b}]0;owned\u{7}\\y\nz".utf8))])
        // tree --data, on a terminal (without zkctl's own colours, which are escapes too) and to a pipe.
        let tree = try onTerminal(["tree", "--data", base], env: ["NO_COLOR": "1"])
        XCTAssertEqual(tree.status, 0)
        XCTAssertFalse(tree.screen.contains(0x1b), String(decoding: tree.screen, as: UTF8.self))
        XCTAssertTrue(String(decoding: tree.screen, as: UTF8.self).contains("ctl = x\\x1b]0;owned\\x07\\y z"),
                      String(decoding: tree.screen, as: UTF8.self))
        XCTAssertFalse(try ok(["tree", "--data", base]).contains(0x1b))

        // watch: one line per event, escaped.
        let watch = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "watch", p], environment: environment())
        defer { watch.kill() }
        XCTAssertTrue(watch.waitForLines(1), watch.stderr)
        XCTAssertEqual(watch.stdout, "initial \(p) = x\\x1b]0;owned\\x07\\\\y\\nz\n")
        XCTAssertFalse(watch.stdoutData.contains(0x1b))
    }

    // MARK: Item 6: '-' is stdin for every VALUE; after '--' it is the text '-'

    func testDashIsStdinForEveryValue() throws {
        let p = "\(base)/dash"
        try ok(["create", p, "-"], stdin: Data("created from stdin".utf8))
        XCTAssertEqual(try ok(["get", p]), Data("created from stdin".utf8))
        try ok(["set", p, "-"], stdin: Data([0x00, 0xff, 0x0a]))
        XCTAssertEqual(try ok(["get", p]), Data([0x00, 0xff, 0x0a]))
        try ok(["set", p, "--", "-"])
        XCTAssertEqual(try ok(["get", p]), Data("-".utf8))
        try ok(["create", "\(base)/literal", "--", "-"])
        XCTAssertEqual(try ok(["get", "\(base)/literal"]), Data("-".utf8))

        let root = ["--config-root", "\(base)/config"]
        try ok(root + ["config", "set", "k", "-"], stdin: Data("[1,2]\n".utf8))
        XCTAssertEqual(try ok(root + ["-o", "json", "config", "get", "k"]), Data("[1,2]\n".utf8))
        try ok(root + ["config", "set", "k", "--", "-"])
        XCTAssertEqual(try ok(root + ["-o", "json", "config", "get", "k"]), Data("\"-\"\n".utf8))
    }

    // MARK: Item 10: a trailing '/' names the same znode

    func testTrailingSlashIsTheSamePath() throws {
        try ok(["create", "--parents", "\(base)/names/a", "1"])
        try ok(["create", "\(base)/names/b", "2"])
        // What bash completion offers for the directory ends in '/'; every path command takes it.
        let offered = String(decoding: try ok(["__complete", "znode", "\(base)/nam"]), as: UTF8.self)
        XCTAssertEqual(offered, "\(base)/names/\n")
        let dir = "\(base)/names/"
        XCTAssertEqual(try ok(["ls", dir]), Data("a\nb\n".utf8))
        XCTAssertEqual(try ok(["ls", dir]), try ok(["ls", "\(base)/names"]))
        XCTAssertEqual(try ok(["get", "\(base)/names/a/"]), Data("1".utf8))
        try ok(["stat", dir])
        try ok(["exists", dir])
        XCTAssertEqual(try ok(["tree", dir]), try ok(["tree", "\(base)/names"]))
        try ok(["set", "\(base)/names/b/", "3"])
        XCTAssertEqual(try ok(["get", "\(base)/names/b"]), Data("3".utf8))
        try ok(["--config-root", "\(base)/config/", "config", "set", "k", "v"])
        XCTAssertEqual(try ok(["--config-root", "\(base)/config", "config", "get", "k"]), Data("\"v\"\n".utf8))
        // Only one trailing slash is forgiven; '//' is still a mistake.
        XCTAssertTrue(try fails(["ls", "\(base)/names//"], 64).contains("empty segment"))
    }

    // MARK: Item 11: config values that are not JSON are strings

    func testConfigValuesThatAreNotJSONAreStrings() throws {
        let root = ["--config-root", "\(base)/config"]
        try ok(root + ["config", "set", "db", #"{"port": 5432}"#])
        try ok(root + ["config", "set", "db", "host", "10.0.0.5"])
        for (key, value) in [("version", "1.2.3"), ("date", "2024-01-01"), ("words", "1 2"), ("id", "123abc")] {
            try ok(root + ["config", "set", key, value])
            XCTAssertEqual(try ok(root + ["-o", "json", "config", "get", key]), Data("\"\(value)\"\n".utf8), key)
        }
        XCTAssertEqual(try ok(root + ["-o", "json", "config", "get", "db"]), Data(#"{"port":5432,"host":"10.0.0.5"}"#.utf8 + [0x0a]))
        // Numbers, booleans and null stay JSON.
        try ok(root + ["config", "set", "n", "-2.5e3"])
        XCTAssertEqual(try ok(root + ["-o", "json", "config", "get", "n"]), Data("-2.5e3\n".utf8))
        // Text that can only be meant as JSON must still parse.
        for broken in [#"{"a":"#, "[1,", #""open"#, "1.", "08080", "1e"] {
            XCTAssertTrue(try fails(root + ["config", "set", "bad", broken], 65).contains("not valid JSON"), broken)
        }
        try fails(root + ["config", "get", "bad"], 1)
        // --default takes the same values, and its advice fits config get (which has no --string).
        XCTAssertEqual(try ok(root + ["config", "get", "missing", "--default", "1.2.3"]), Data("\"1.2.3\"\n".utf8))
        let message = try fails(root + ["config", "get", "missing", "--default", "{oops"], 65)
        XCTAssertFalse(message.contains("--string"), message)
        XCTAssertTrue(message.contains(#"--default '"{oops"'"#), message)
    }

    // MARK: Item 16: brackets hold only an IPv6 literal

    func testBracketsAroundAnythingButIPv6AreRefusedAtOnce() throws {
        // The fuzzer's find: accepted once, then refused in its resolved form.
        let r = try runProcess(zkctlBinaryPath(), ["-s", "[%31]:1090,[fe80::1%eth0]:2182", "get", "/x"], environment: environment())
        XCTAssertEqual(r.status, 64, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: bad server list '[%31]:1090,[fe80::1%eth0]:2182' from flag --server: "), r.stderrText)
        XCTAssertTrue(r.stderrText.contains("brackets hold only an IPv6 address"), r.stderrText)
        // A real IPv6 literal in brackets is taken (nothing listens there: unavailable, not usage).
        let v6 = try runProcess(zkctlBinaryPath(), ["-s", "[::1]:1", "--timeout", "1s", "get", "/x"], environment: environment())
        XCTAssertEqual(v6.status, 69, v6.stderrText)
    }

    // MARK: Item 15: acl set -r that takes away the caller's admin permission asks for --force

    func testRecursiveACLThatLocksTheCallerOutNeedsForce() throws {
        let tree = "\(base)/locked"
        try ok(["create", "--parents", "\(tree)/a/b"])
        let digest = String(decoding: try ok(["digest", Self.credential]), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let open = Data("world:anyone:cdrwa\n".utf8)

        // No admin for anyone this session is: refused, nothing changed.
        for spec in ["world:anyone:r", "world:anyone:cdrw", "digest:\(digest):cdrwa"] {
            let message = try fails(["acl", "set", "-r", tree, spec], 64)
            XCTAssertTrue(message.contains("--force"), message)
        }
        XCTAssertEqual(try ok(["acl", "get", "\(tree)/a/b"]), open)
        XCTAssertTrue(try fails(["acl", "set", tree, "world:anyone:cdrwa", "--force"], 64).contains("--recursive"))

        // Admin kept through the session's own digest user or auth::: no --force needed.
        let auth = ["ZKCTL_AUTH": Self.credential]
        try ok(["acl", "set", "-r", tree, "digest:\(digest):cdrwa", "world:anyone:cdrw"], env: auth)
        XCTAssertEqual(try ok(["acl", "get", "\(tree)/a/b"], env: auth), Data("digest:\(digest):cdrwa\nworld:anyone:cdrw\n".utf8))
        try ok(["acl", "set", "-r", tree, "auth::cdrwa"], env: auth)
        // With --force the lock-out is done as asked, and then cannot be undone.
        try ok(["acl", "set", "-r", "--force", tree, "world:anyone:cdrw"], env: auth)
        XCTAssertEqual(try ok(["acl", "get", "\(tree)/a/b"]), Data("world:anyone:cdrw\n".utf8))
        try fails(["acl", "set", tree, "world:anyone:cdrwa"], 77, env: auth)
    }
}
