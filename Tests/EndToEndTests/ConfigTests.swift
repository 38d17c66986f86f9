import Foundation
import XCTest
import ZKTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `zkctl config` through the built binary against a real server: stdout, stderr and exit codes.
/// Every test works under its own config root on the shared server.
final class ConfigTests: XCTestCase {
    var server: ZooKeeperServer!
    /// This test's own base path; the config root is `<base>/config`.
    var base = ""
    var root: String { "\(base)/config" }

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("config")
    }

    // MARK: Running zkctl

    /// A clean environment, so no settings leak in from the machine.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(extra) { $1 }
        return environment
    }

    /// zkctl against `server` (default: the shared one) with this test's config root.
    func zk(_ args: [String], stdin: Data? = nil, server: ZooKeeperServer? = nil, root: String? = nil,
            timeout: TimeInterval = 60) throws -> ProcessResult {
        let s = server ?? self.server!
        return try runProcess(zkctlBinaryPath(), ["-s", s.connectString, "--config-root", root ?? self.root] + args,
                              environment: Self.environment(), stdin: stdin, timeout: timeout)
    }

    /// A command that must succeed with nothing on stderr; returns stdout.
    @discardableResult
    func ok(_ args: [String], stdin: Data? = nil, root: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try zk(args, stdin: stdin, root: root)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText, "", "\(args)", file: file, line: line)
        return r.stdoutText
    }

    /// A command that must fail with `status`, nothing on stdout and one `zkctl: ` line on stderr.
    @discardableResult
    func fails(_ args: [String], _ status: Int32, stdin: Data? = nil, root: String? = nil,
               file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try zk(args, stdin: stdin, root: root)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "\(args): \(r.stderrText)", file: file, line: line)
        return r.stderrText
    }

    /// `config import` that must succeed; its summary goes to stderr, its stdout is returned.
    @discardableResult
    func imports(_ args: [String], stdin: Data? = nil, root: String? = nil, summary: String,
                 file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try zk(["config", "import"] + args, stdin: stdin, root: root)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText, "zkctl: imported: \(summary)\n", "\(args)", file: file, line: line)
        return r.stdoutText
    }

    func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    func object(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(try json(text) as? [String: Any], text, file: file, line: line)
    }

    func temporaryFile(_ data: Data, _ suffix: String = "") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-config-\(UUID().uuidString)\(suffix)").path
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    // MARK: The seed examples, exactly as written

    func testSeedExamples() throws {
        XCTAssertEqual(try ok(["config", "set", "feature_flags", #"{"new_ui": true}"#]), "")
        XCTAssertEqual(try ok(["config", "get", "feature_flags"]), "{\n  \"new_ui\": true\n}\n")
        XCTAssertEqual(try ok(["config", "set", "test_key", "test_value"]), "")
        XCTAssertEqual(try ok(["config", "get", "test_key"]), "\"test_value\"\n")
        XCTAssertEqual(try ok(["config", "set", "old_setting", "1"]), "")
        XCTAssertEqual(try ok(["config", "list"]),
                       """
                       KEY            VALUE
                       feature_flags  {"new_ui":true}
                       old_setting    1
                       test_key       "test_value"

                       """)
        XCTAssertEqual(try ok(["config", "remove", "old_setting"]), "")
        let message = try fails(["config", "remove", "old_setting"], 1)
        XCTAssertTrue(message.contains("old_setting"), message)
        XCTAssertEqual(try ok(["config", "get", "feature_flags", "-o", "json"]), "{\"new_ui\":true}\n")
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]), "{\"feature_flags\":{\"new_ui\":true},\"test_key\":\"test_value\"}\n")
    }

    // MARK: set

    func testValuesAreJSONOrStrings() throws {
        try ok(["config", "set", "n", "42"])
        try ok(["config", "set", "neg", "-1.50"])
        try ok(["config", "set", "t", "true"])
        try ok(["config", "set", "z", "null"])
        try ok(["config", "set", "q", #""quoted""#])
        try ok(["config", "set", "words", "hello world"])
        try ok(["config", "set", "forced", "--string", "42"])
        let all = try object(try ok(["-o", "json", "config", "list"]))
        XCTAssertEqual(all["n"] as? Int, 42)
        XCTAssertEqual(all["neg"] as? Double, -1.5)
        XCTAssertEqual(all["t"] as? Bool, true)
        XCTAssertTrue(all["z"] is NSNull)
        XCTAssertEqual(all["q"] as? String, "quoted")
        XCTAssertEqual(all["words"] as? String, "hello world")
        XCTAssertEqual(all["forced"] as? String, "42")
        // Number lexemes are kept as written.
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "neg"]), "-1.50\n")

        // Text that starts like JSON must parse: exit 65 and nothing written.
        for bad in [#"{"a":"#, "[1,", #""open"#, "{not json}"] {
            let message = try fails(["config", "set", "bad", bad], 65)
            XCTAssertTrue(message.contains("not valid JSON"), message)
        }
        try fails(["config", "get", "bad"], 1)
        // A bad value for an existing key leaves it alone.
        try fails(["config", "set", "n", "{"], 65)
        XCTAssertEqual(try ok(["config", "get", "n"]), "42\n")
    }

    func testRawStdinAndFiles() throws {
        // --raw stores the bytes as given (plain text for Spring Cloud ZooKeeper Config).
        try ok(["config", "set", "--raw", "greeting", "hello world"])
        XCTAssertEqual(try ok(["config", "get", "greeting"]), "\"hello world\"\n")
        XCTAssertEqual(try ok(["config", "get", "greeting", "--raw"]), "hello world\n")
        try ok(["config", "set", "--raw", "rawjson", "{not json"])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "rawjson"]), "\"{not json\"\n")
        try fails(["config", "set", "--raw", "--string", "x", "y"], 64)

        // '-' reads stdin; text loses one trailing newline.
        try ok(["config", "set", "fromstdin", "-"], stdin: Data("[1, 2, 3]\n".utf8))
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "fromstdin"]), "[1,2,3]\n")
        try ok(["config", "set", "line", "-"], stdin: Data("just text\n".utf8))
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "line"]), "\"just text\"\n")
        try ok(["config", "set", "rawline", "--raw", "-"], stdin: Data("just text\n".utf8))
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "rawline"]), "\"just text\\n\"\n")

        // --file F.
        let file = try temporaryFile(Data("{\"from\": \"file\"}\n".utf8))
        try ok(["config", "set", "filed", "--file", file])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "filed"]), "{\"from\":\"file\"}\n")
        let badFile = try temporaryFile(Data("{\"from\": ".utf8))
        try fails(["config", "set", "filed", "--file", badFile], 65)
        try fails(["config", "set", "filed", "--file", "/nonexistent/zkctl-config"], 66)
        let binary = try temporaryFile(Data([0xff, 0x00, 0xfe]))
        try fails(["config", "set", "bin", "--file", binary], 65)
        try ok(["config", "set", "bin", "--raw", "--file", binary])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "bin"]), "{\"base64\":\"/wD+\"}\n")
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "filed"]), "{\"from\":\"file\"}\n")

        try fails(["config", "set", "onlykey"], 64)
        try fails(["config", "set", "k", "v", "--file", file, "--merge", "{}"], 64)
        try fails(["config", "set", "--raw", "k", "field", "v"], 64)
    }

    func testFieldsAndMerge() throws {
        try ok(["config", "set", "database", "host", "db1.example.com"])
        try ok(["config", "set", "database", "pool", "max", "20"])
        try ok(["config", "set", "database", "ssl", "true"])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "database"]),
                       #"{"host":"db1.example.com","pool":{"max":20},"ssl":true}"# + "\n")
        XCTAssertEqual(try ok(["config", "get", "database", "host"]), "\"db1.example.com\"\n")
        XCTAssertEqual(try ok(["config", "get", "database", "host", "--raw"]), "db1.example.com\n")
        XCTAssertEqual(try ok(["config", "get", "database", "pool", "max"]), "20\n")
        try ok(["config", "set", "database", "--merge", #"{"port": 5432, "pool": {"min": 1}}"#])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "database"]),
                       #"{"host":"db1.example.com","pool":{"max":20,"min":1},"ssl":true,"port":5432}"# + "\n")
        try ok(["config", "set", "database", "pool", "--merge", #"{"max": 50}"#])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "database", "pool"]), #"{"max":50,"min":1}"# + "\n")

        // A field below a value that is not an object, a merge that is not an object: 65.
        var message = try fails(["config", "set", "database", "host", "name", "x"], 65)
        XCTAssertTrue(message.contains("not an object"), message)
        try fails(["config", "set", "database", "--merge", "[1]"], 65)
        try fails(["config", "set", "database", "--merge", "{bad"], 65)
        try ok(["config", "set", "scalar", "5"])
        try fails(["config", "set", "scalar", "field", "1"], 65)
        try ok(["config", "set", "--raw", "plain", "text"])
        message = try fails(["config", "set", "plain", "field", "1"], 65)
        XCTAssertTrue(message.contains("does not hold JSON"), message)
        // Nothing of the above changed the object.
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "database", "host"]), "\"db1.example.com\"\n")
        // Missing fields: exit 1, or the default.
        try fails(["config", "get", "database", "nope"], 1)
        XCTAssertEqual(try ok(["config", "get", "database", "nope", "--default", "7"]), "7\n")
    }

    func testConcurrentFieldWritesKeepEveryField() throws {
        let env = Self.environment()
        var children: [BackgroundProcess] = []
        defer { for c in children { c.kill() } }
        for i in 1...20 {
            children.append(try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "--config-root", root,
                                                                      "config", "set", "merged", "f\(i)", "\(i)"], environment: env))
        }
        for (i, c) in children.enumerated() {
            let status = c.waitForExit(seconds: 120)
            XCTAssertEqual(status, 0, "writer \(i + 1): \(c.stderr)")
            XCTAssertEqual(c.stderr, "")
        }
        let merged = try object(try ok(["-o", "json", "config", "get", "merged"]))
        XCTAssertEqual(merged.count, 20, "\(merged)")
        for i in 1...20 { XCTAssertEqual(merged["f\(i)"] as? Int, i, "f\(i)") }
        let stat = try object(try ok(["-o", "json", "config", "get", "merged", "--stat"]))
        XCTAssertEqual(stat["version"] as? Int, 19)
    }

    func testConditionalWrites() throws {
        let created = try object(try ok(["-o", "json", "config", "set", "limits", "--if-absent", #"{"rps": 1}"#]))
        XCTAssertEqual(created["created"] as? Bool, true)
        XCTAssertEqual(created["version"] as? Int, 0)
        var message = try fails(["config", "set", "limits", "--if-absent", "2"], 75)
        XCTAssertTrue(message.contains("already exists"), message)
        message = try fails(["config", "set", "limits", "--if-version", "3", #"{"rps": 2}"#], 75)
        XCTAssertTrue(message.contains("version"), message)
        let updated = try object(try ok(["-o", "json", "config", "set", "limits", "--if-version", "0", #"{"rps": 2}"#]))
        XCTAssertEqual(updated["version"] as? Int, 1)
        XCTAssertEqual(updated["created"] as? Bool, false)
        try fails(["config", "set", "limits", "rps", "3", "--if-version", "0"], 75)
        try ok(["config", "set", "limits", "rps", "3", "--if-version", "1"])
        try fails(["config", "set", "limits", "burst", "3", "--if-absent"], 75)
        try fails(["config", "set", "missing", "--if-version", "0", "1"], 75)
        try fails(["config", "set", "limits", "--if-version", "1", "--if-absent", "1"], 64)
        try fails(["config", "set", "limits", "--if-version", "x", "1"], 64)
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "limits"]), #"{"rps":3}"# + "\n")
    }

    func testKeyValidation() throws {
        for bad in ["", ".", "..", "a/b", "tab\there", "nl\nx"] {
            let message = try fails(["config", "set", bad, "1"], 64)
            XCTAssertTrue(message.contains("bad key"), message)
            try fails(["config", "get", bad], 64)
        }
        try fails(["config", "set", "--nested", "a//b", "1"], 64)
        try fails(["config", "set", "--nested", "a/../b", "1"], 64)
        try ok(["config", "set", "--nested", "app/db/host", "h1"])
        try ok(["config", "set", "top", "1"])
        XCTAssertEqual(try ok(["config", "get", "--nested", "app/db/host"]), "\"h1\"\n")
        XCTAssertEqual(try ok(["config", "list", "--keys"]), "app/db/host\ntop\n")
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]), #"{"app/db/host":"h1","top":1}"# + "\n")
    }

    func testACLOption() throws {
        try ok(["config", "set", "first", "1"])
        try ok(["config", "set", "locked", "1", "--acl", "world:anyone:r"])
        XCTAssertEqual(try ok(["config", "get", "locked"]), "1\n")
        try fails(["config", "set", "locked", "2"], 77)
        try fails(["config", "set", "other", "1", "--acl", "nonsense"], 64)
        try fails(["config", "get", "other"], 1)
        // A read-only first key does not lock the root it creates: the root is open.
        let fresh = "\(base)/fresh/config"
        try ok(["config", "set", "ro", "1", "--acl", "world:anyone:r"], root: fresh)
        try ok(["config", "set", "rw", "2"], root: fresh)
        XCTAssertEqual(try ok(["config", "list", "--keys"], root: fresh), "ro\nrw\n")
    }

    func testConfoLayout() throws {
        let confo = "\(base)/confo/systemA"
        try ok(["config", "set", "database", #"{"host": "db.internal", "port": 5432}"#], root: confo)
        XCTAssertEqual(try ok(["config", "get", "database", "host", "--raw"], root: confo), "db.internal\n")
        XCTAssertEqual(try ok(["config", "get", "database", "port"], root: confo), "5432\n")
    }

    // MARK: get, list, remove

    func testGetOptions() throws {
        var message = try fails(["config", "get", "missing"], 1)
        XCTAssertTrue(message.contains("'missing' not found"), message)
        XCTAssertEqual(try ok(["config", "get", "missing", "--default", "3000"]), "3000\n")
        XCTAssertEqual(try ok(["config", "get", "missing", "--default", "fallback", "--raw"]), "fallback\n")
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "missing", "--default", #"{"a": [1]}"#]), #"{"a":[1]}"# + "\n")
        message = try fails(["config", "get", "missing", "--default", "{oops"], 65)
        XCTAssertTrue(message.contains("--default"), message)

        try ok(["config", "set", "k", #"{"a": "b"}"#])
        let text = try ok(["config", "get", "k", "--stat"]).split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(text.prefix(4)), ["{", "  \"a\": \"b\"", "}", "version: 0"])
        XCTAssertTrue(text.last?.hasPrefix("modified: 20") ?? false, "\(text)")
        let stat = try object(try ok(["-o", "json", "config", "get", "k", "--stat"]))
        XCTAssertEqual(stat["key"] as? String, "k")
        XCTAssertEqual(stat["version"] as? Int, 0)
        XCTAssertEqual((stat["value"] as? [String: Any])?["a"] as? String, "b")
        XCTAssertNotNil(stat["modified"] as? Int, "times in JSON are ms since the epoch")
    }

    /// config's modification times are ms since the epoch in JSON (the node's mtime), ISO 8601
    /// in text.
    func testStatTimesAreMillisecondsInJSONAndISOInText() throws {
        let before = Int(Date().timeIntervalSince1970 * 1000) - 1000
        try ok(["config", "set", "timed", "1"])
        let after = Int(Date().timeIntervalSince1970 * 1000) + 1000
        let nodeStat = try XCTUnwrap(try object(try ok(["-o", "json", "stat", "\(root)/timed"]))["stat"] as? [String: Any])
        let mtime = try XCTUnwrap(nodeStat["mtime"] as? Int)
        XCTAssertTrue(before <= mtime && mtime <= after)

        let got = try object(try ok(["-o", "json", "config", "get", "timed", "--stat"]))
        XCTAssertEqual(got["modified"] as? Int, mtime, "\(got)")
        let listed = try object(try ok(["-o", "json", "config", "list", "--stat"]))
        XCTAssertEqual((listed["timed"] as? [String: Any])?["modified"] as? Int, mtime, "\(listed)")

        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let text = try ok(["config", "get", "timed", "--stat"]).split(separator: "\n").map(String.init)
        let shown = try XCTUnwrap(text.last?.dropFirst("modified: ".count))
        XCTAssertEqual(iso.date(from: String(shown)).map { Int(($0.timeIntervalSince1970 * 1000).rounded()) }, mtime, "\(text)")
    }

    func testListAndRemove() throws {
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]), "{}\n")
        XCTAssertEqual(try ok(["config", "list"]), "")
        XCTAssertEqual(try ok(["-o", "json", "config", "list", "--keys"]), "[]\n")
        for i in 0..<30 { try ok(["config", "set", String(format: "key%02d", i), "\(i)"]) }
        try ok(["config", "set", "a_long_key_name", "\"v\""])
        let table = try ok(["config", "list"]).split(separator: "\n").map(String.init)
        XCTAssertEqual(table.count, 32)
        XCTAssertEqual(table[0], "KEY              VALUE")
        XCTAssertEqual(table[1], "a_long_key_name  \"v\"")
        XCTAssertEqual(table[2], "key00            0")
        let all = try object(try ok(["-o", "json", "config", "list"]))
        XCTAssertEqual(all.count, 31)
        let keys = try XCTUnwrap(try json(try ok(["-o", "json", "config", "list", "--keys"])) as? [String])
        XCTAssertEqual(keys.first, "a_long_key_name")
        XCTAssertEqual(keys.count, 31)
        try ok(["config", "set", "key00", "100"])
        let withStat = try object(try ok(["-o", "json", "config", "list", "--stat"]))
        let entry = try XCTUnwrap(withStat["key00"] as? [String: Any])
        XCTAssertEqual(entry["value"] as? Int, 100)
        XCTAssertEqual(entry["version"] as? Int, 1)
        let statTable = try ok(["config", "list", "--stat"]).split(separator: "\n").map(String.init)
        XCTAssertTrue(statTable[0].hasPrefix("KEY") && statTable[0].contains("VERSION") && statTable[0].hasSuffix("VALUE"), statTable[0])

        // remove: --if-version, missing keys, --ignore-missing.
        try fails(["config", "remove", "key00", "--if-version", "0"], 75)
        XCTAssertEqual(try ok(["-o", "json", "config", "remove", "key00", "--if-version", "1"]), #"{"key":"key00","removed":true}"# + "\n")
        try fails(["config", "remove", "key00"], 1)
        XCTAssertEqual(try ok(["config", "remove", "key00", "--ignore-missing"]), "")
        XCTAssertEqual(try ok(["-o", "json", "config", "remove", "key00", "--ignore-missing"]), #"{"key":"key00","removed":false}"# + "\n")
        try fails(["config", "remove", "a/b"], 64)
        XCTAssertEqual(try object(try ok(["-o", "json", "config", "list"])).count, 30)
    }

    // MARK: UTF-8 and sizes

    func testUTF8RoundTrip() throws {
        let key = "größe-ключ-鍵-✓"
        try ok(["config", "set", key, #"{"名前": "值 ✓", "emoji": "🎉"}"#])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", key]), #"{"名前":"值 ✓","emoji":"🎉"}"# + "\n")
        XCTAssertEqual(try ok(["config", "get", key, "名前", "--raw"]), "值 ✓\n")
        try ok(["config", "set", "plain", "Grüße aus Köln"])
        XCTAssertEqual(try ok(["config", "get", "plain", "--raw"]), "Grüße aus Köln\n")
        let all = try object(try ok(["-o", "json", "config", "export"]))
        XCTAssertEqual((all[key] as? [String: Any])?["emoji"] as? String, "🎉")
        XCTAssertEqual(try ok(["config", "list", "--keys"]), "\(key)\nplain\n")
        // ZooKeeper refuses names beyond U+FFFF: a usage error before anything is sent.
        let message = try fails(["config", "set", "key-🔑", "1"], 64)
        XCTAssertTrue(message.contains("U+FFFF"), message)
    }

    func testLargeValues() throws {
        // About 500 KB of JSON from a file.
        let item = String(repeating: "x", count: 1000)
        let array = "[" + (0..<500).map { _ in "\"\(item)\"" }.joined(separator: ",") + "]"
        XCTAssertGreaterThan(array.utf8.count, 500_000)
        let file = try temporaryFile(Data(array.utf8))
        try ok(["config", "set", "big", "--file", file])
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "big"]), array + "\n")
        let text = try temporaryFile(Data(String(repeating: "é", count: 250_000).utf8))
        try ok(["config", "set", "bigtext", "--file", text])
        XCTAssertEqual(try ok(["config", "get", "bigtext", "--raw"]), String(repeating: "é", count: 250_000) + "\n")

        // Over the limit: a clear error, exit 65, nothing written.
        let huge = try temporaryFile(Data(("\"" + String(repeating: "y", count: 1_100_000) + "\"").utf8))
        let message = try fails(["config", "set", "huge", "--file", huge], 65)
        XCTAssertTrue(message.contains("bytes") && message.contains("1 MB"), message)
        try fails(["config", "get", "huge"], 1)
        try fails(["config", "set", "huge", "field", "--file", huge], 65)
        try fails(["config", "get", "huge"], 1)
    }

    // MARK: export

    func seedExportData() throws {
        try ok(["config", "set", "feature-flags", #"{"new_ui": true, "name": "it's"}"#])
        try ok(["config", "set", "greeting", "it's a \"test\" with $HOME and `x`"])
        try ok(["config", "set", "multi", "-"], stdin: Data("line one\nline two\n".utf8))
        try ok(["config", "set", "1st", "1"])
        try ok(["config", "set", "ünïcode", "ça va"])
    }

    func testExportJSON() throws {
        try seedExportData()
        let compact = try ok(["-o", "json", "config", "export"])
        XCTAssertEqual(compact.filter { $0 == "\n" }.count, 1)
        let all = try object(compact)
        XCTAssertEqual(all.count, 5)
        XCTAssertEqual(all["multi"] as? String, "line one\nline two")
        let pretty = try ok(["config", "export"])
        XCTAssertTrue(pretty.hasPrefix("{\n  \"1st\": 1,\n"), pretty)
        XCTAssertEqual(NSDictionary(dictionary: try object(pretty)), NSDictionary(dictionary: all))
    }

    func testExportEnvIsSourcedBySh() throws {
        try seedExportData()
        let env = try ok(["config", "export", "--format", "env"])
        let file = try temporaryFile(Data(env.utf8), ".env")
        let script = """
        . '\(file)' || exit 9
        printf '%s|' "$FEATURE_FLAGS" "$GREETING" "$MULTI" "$_1ST" "$_N_CODE"
        """
        let r = try runProcess("/bin/sh", ["-c", script], environment: Self.environment(["HOME": "/nowhere"]))
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, #"{"new_ui":true,"name":"it's"}|it's a "test" with $HOME and `x`|line one"# + "\nline two|1|ça va|")
        XCTAssertEqual(try ok(["config", "export", "--format", "env", "--prefix", "APP_"]).split(separator: "\n").first.map(String.init),
                       "APP_1ST='1'")
        try fails(["config", "export", "--format", "env", "--prefix", "1-bad"], 64)
        try fails(["config", "export", "--prefix", "APP_"], 64)
        try fails(["config", "export", "--format", "yaml"], 64)
        // Two keys that make the same shell name.
        try ok(["config", "set", "feature_flags", "x"])
        let message = try fails(["config", "export", "--format", "env"], 65)
        XCTAssertTrue(message.contains("FEATURE_FLAGS"), message)
    }

    func testExportSQLIntoSQLite() throws {
        try seedExportData()
        let db = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-config-\(UUID().uuidString).db").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: db) }
        let sql = try ok(["config", "export", "--format", "sql"])
        XCTAssertTrue(sql.hasPrefix("BEGIN;\nCREATE TABLE IF NOT EXISTS configurations"), sql)
        var r = try runProcess("sqlite3", [db], environment: Self.environment(), stdin: Data(sql.utf8))
        XCTAssertEqual(r.status, 0, "sqlite3 (install the Debian package sqlite3): \(r.stderrText)")
        XCTAssertEqual(r.stderrText, "")
        // Again after a change: the rows are updated in place, not duplicated.
        try ok(["config", "set", "greeting", "changed"])
        r = try runProcess("sqlite3", [db], environment: Self.environment(),
                           stdin: Data(try ok(["config", "export", "--format", "sql"]).utf8))
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try runProcess("sqlite3", ["-separator", "|", db, "SELECT key, value, version FROM configurations ORDER BY key"],
                           environment: Self.environment())
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, """
            1st|1|0
            feature-flags|{"new_ui":true,"name":"it's"}|0
            greeting|"changed"|1
            multi|"line one\\nline two"|0
            ünïcode|"ça va"|0

            """)
    }

    // MARK: import

    func testImport() throws {
        try ok(["config", "set", "keep", "1"])
        try ok(["config", "set", "change", "1"])
        try ok(["config", "set", "stale", "1"])
        let input = Data(#"{"keep": 1, "change": {"v": 2}, "new": "n", "ünï": [1]}"#.utf8)

        // --dry-run: the plan, nothing changed.
        XCTAssertEqual(try ok(["config", "import", "--dry-run", "--prune", "-"], stdin: input),
                       """
                       ACTION     KEY
                       create     new
                       create     ünï
                       update     change
                       unchanged  keep
                       remove     stale

                       """)
        let plan = try object(try ok(["-o", "json", "config", "import", "-n", "-"], stdin: input))
        XCTAssertEqual(plan["dryRun"] as? Bool, true)
        XCTAssertEqual(plan["create"] as? [String], ["new", "ünï"])
        XCTAssertEqual(plan["remove"] as? [String], [])
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]), #"{"change":1,"keep":1,"stale":1}"# + "\n")

        // Malformed input: exit 65, nothing changed.
        try fails(["config", "import", "-"], 65, stdin: Data(#"{"a": 1"#.utf8))
        try fails(["config", "import", "-"], 65, stdin: Data("[1, 2]".utf8))
        try fails(["config", "import", "-"], 65, stdin: Data(#"{"good": 1, "bad/key": 2}"#.utf8))
        try fails(["config", "import", "-"], 65, stdin: Data(#"{"good": 1, "..": 2}"#.utf8))
        try fails(["config", "import", "/nonexistent/zkctl-import.json"], 66)
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]), #"{"change":1,"keep":1,"stale":1}"# + "\n")

        // Without --prune, stale stays.
        let file = try temporaryFile(input, ".json")
        XCTAssertEqual(try imports([file], summary: "2 created, 1 updated, 1 unchanged, 0 removed"), "")
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]),
                       #"{"change":{"v":2},"keep":1,"new":"n","stale":1,"ünï":[1]}"# + "\n")
        XCTAssertEqual(try object(try ok(["-o", "json", "config", "get", "keep", "--stat"]))["version"] as? Int, 0, "unchanged keys are not written")
        let applied = try object(try ok(["-o", "json", "config", "import", "--prune", file]))
        XCTAssertEqual(applied["dryRun"] as? Bool, false)
        XCTAssertEqual(applied["remove"] as? [String], ["stale"])
        XCTAssertEqual(applied["unchanged"] as? [String], ["keep", "change", "new", "ünï"])
        XCTAssertEqual(try ok(["-o", "json", "config", "list"]), #"{"change":{"v":2},"keep":1,"new":"n","ünï":[1]}"# + "\n")

        // An export imports into a fresh root (created on the way) as the same configuration.
        let copy = "\(base)/copy/config"
        try imports(["-"], stdin: Data(try ok(["-o", "json", "config", "export"]).utf8), root: copy,
                    summary: "4 created, 0 updated, 0 unchanged, 0 removed")
        XCTAssertEqual(try ok(["-o", "json", "config", "export"], root: copy), try ok(["-o", "json", "config", "export"]))
        // Nested keys need --nested.
        try fails(["config", "import", "-"], 65, stdin: Data(#"{"a/b": 1}"#.utf8))
        try fails(["config", "import", "--acl", "bogus", "-"], 64, stdin: Data(#"{"x": 1}"#.utf8))
        try imports(["--acl", "world:anyone:r", "-"], stdin: Data(#"{"readonly": 1}"#.utf8), root: copy,
                    summary: "1 created, 0 updated, 0 unchanged, 0 removed")
        try fails(["config", "set", "readonly", "2"], 77, root: copy)
        try imports(["--nested", "-"], stdin: Data(#"{"a/b": 1, "a/c/d": 2}"#.utf8), root: copy,
                    summary: "2 created, 0 updated, 0 unchanged, 0 removed")
        // -q keeps the summary off stderr.
        XCTAssertEqual(try ok(["-q", "config", "import", "--nested", "-"], stdin: Data(#"{"a/b": 1}"#.utf8), root: copy), "")
        XCTAssertEqual(try ok(["config", "get", "--nested", "a/c/d"], root: copy), "2\n")

        // A key after one nested under it: its node is made on the way, then given its value.
        let order = "\(base)/order/config"
        let childFirst = Data(#"{"x/y": "1", "x": "2"}"#.utf8)
        try imports(["--nested", "-"], stdin: childFirst, root: order,
                    summary: "2 created, 0 updated, 0 unchanged, 0 removed")
        XCTAssertEqual(try ok(["config", "get", "x"], root: order), "\"2\"\n")
        XCTAssertEqual(try ok(["config", "get", "--nested", "x/y"], root: order), "\"1\"\n")
        try imports(["--nested", "-"], stdin: childFirst, root: order,
                    summary: "0 created, 0 updated, 2 unchanged, 0 removed")
    }

    func testImportTooLargeForOneRequestGoesInBatches() throws {
        let item = "\"" + String(repeating: "z", count: 400_000) + "\""
        let input = "{" + (0..<4).map { "\"k\($0)\": \(item)" }.joined(separator: ",") + "}"
        try imports(["-"], stdin: Data(input.utf8), summary: "4 created, 0 updated, 0 unchanged, 0 removed")
        XCTAssertEqual(try ok(["config", "list", "--keys"]), "k0\nk1\nk2\nk3\n")
        XCTAssertEqual(try ok(["-o", "json", "config", "get", "k3"]), item + "\n")
        let help = try zk(["config", "import", "--help"])
        XCTAssertTrue(help.stdoutText.contains("batches") || help.stderrText.contains("batches"))
    }

    // MARK: watch

    func startWatch(_ args: [String], server: ZooKeeperServer? = nil) throws -> BackgroundProcess {
        let s = server ?? self.server!
        let p = try BackgroundProcess(zkctlBinaryPath(), ["-s", s.connectString, "--config-root", root] + args,
                                      environment: Self.environment())
        addTeardownBlock { p.kill() }
        return p
    }

    func testWatchOnceIsReleasedBySet() throws {
        let watch = try startWatch(["-o", "json", "config", "watch", "deploy_ready", "--once"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { _, err in err.contains("does not exist yet") },
                      "watch never said it waits: \(watch.stderr)")
        XCTAssertEqual(watch.stdout, "")
        try ok(["config", "set", "deploy_ready", "true"])
        XCTAssertEqual(watch.waitForExit(seconds: 30), 0, watch.stderr)
        XCTAssertEqual(watch.stdout, #"{"event":"created","key":"deploy_ready","value":true,"version":0}"# + "\n")
        XCTAssertEqual(watch.stderr, "zkctl: config key 'deploy_ready' does not exist yet; waiting\n")

        // An existing key: the initial value does not release --once; the next change does.
        let again = try startWatch(["config", "watch", "deploy_ready", "--once"])
        XCTAssertTrue(again.waitUntil(timeout: 30) { out, _ in out.contains("initial") }, again.stderr)
        try ok(["config", "set", "deploy_ready", "false"])
        XCTAssertEqual(again.waitForExit(seconds: 30), 0, again.stderr)
        XCTAssertEqual(again.stdout, "initial deploy_ready = true\nchanged deploy_ready = false\n")
    }

    func testWatchEveryKeyStreamsEvents() throws {
        try ok(["config", "set", "a", "1"])
        let watch = try startWatch(["-o", "json", "config", "watch"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""event":"initial""#) }, watch.stderr)
        try ok(["config", "set", "a", "2"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""changed""#) }, watch.stdout)
        try ok(["config", "set", "b", #"{"x": [1]}"#])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""created""#) }, watch.stdout)
        try ok(["config", "remove", "a"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""removed""#) }, watch.stdout)
        try ok(["config", "set", "b", "x", "2"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.components(separatedBy: "\n").count > 5 }, watch.stdout)
        watch.signal(SIGINT)
        XCTAssertEqual(watch.waitForExit(seconds: 30), 130)
        XCTAssertEqual(watch.stdout, """
            {"event":"initial","key":"a","value":1,"version":0}
            {"event":"changed","key":"a","value":2,"version":1}
            {"event":"created","key":"b","value":{"x":[1]},"version":0}
            {"event":"removed","key":"a"}
            {"event":"changed","key":"b","value":{"x":2},"version":1}

            """)
        XCTAssertEqual(watch.stderr, "")
        try fails(["config", "watch", "bad/key"], 64)
    }

    func testWatchWaitsForTheRoot() throws {
        let watch = try startWatch(["config", "watch"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { _, err in err.contains("no keys under \(self.root) yet") }, watch.stderr)
        try ok(["config", "set", "a", "1"])
        try ok(["config", "set", "b", "two"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains("created b") }, watch.stdout)
        watch.signal(SIGINT)
        XCTAssertEqual(watch.waitForExit(seconds: 30), 130)
        XCTAssertEqual(watch.stdout, "created a = 1\ncreated b = \"two\"\n")
        XCTAssertEqual(watch.stderr, "zkctl: no keys under \(root) yet; waiting\n")
    }

    func testWatchNestedFollowsTheSubtree() throws {
        try ok(["config", "set", "top", "1"])
        let watch = try startWatch(["config", "watch", "--nested"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains("initial top") }, watch.stderr)
        try ok(["config", "set", "--nested", "app/db/host", "h1"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains("created app/db/host") }, watch.stdout)
        try ok(["config", "set", "--nested", "app/db/host", "h2"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains("changed app/db/host") }, watch.stdout)
        try ok(["config", "remove", "--nested", "app/db/host"])
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains("removed app/db/host") }, watch.stdout)
        watch.signal(SIGINT)
        XCTAssertEqual(watch.waitForExit(seconds: 30), 130)
        XCTAssertEqual(watch.stdout, """
            initial top = 1
            created app/db/host = "h1"
            changed app/db/host = "h2"
            removed app/db/host

            """)
    }

    func testUnreachableServerIsUnavailable() throws {
        let r = try runProcess(zkctlBinaryPath(), ["-s", "127.0.0.1:1", "--timeout", "1s", "config", "get", "k"], environment: Self.environment())
        XCTAssertEqual(r.status, 69, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), r.stderrText)
        let w = try runProcess(zkctlBinaryPath(), ["-s", "127.0.0.1:1", "--timeout", "1s", "config", "watch"], environment: Self.environment())
        XCTAssertEqual(w.status, 69, w.stderrText)
    }

    func testWatchSurvivesServerRestart() throws {
        let own = try ZooKeeperServer.standalone()
        defer { own.shutdown() }
        XCTAssertEqual(try zk(["config", "set", "k", "1"], server: own).status, 0)
        XCTAssertEqual(try zk(["config", "set", "gone", "1"], server: own).status, 0)
        // A short timeout, so the client notices the lost server quickly.
        let watch = try startWatch(["--timeout", "4s", "-o", "json", "config", "watch", "k", "gone"], server: own)
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.components(separatedBy: "\n").count == 3 }, watch.stderr)

        try own.stop(member: 1)
        try own.restart(member: 1)
        // Changed while the watch was disconnected (or just reconnecting): reported after reconnect.
        var r = try zk(["config", "set", "k", "2"], server: own)
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try zk(["config", "remove", "gone"], server: own)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(watch.waitUntil(timeout: 60) { out, _ in out.contains(#""removed""#) && out.contains(#""value":2"#) },
                      "stdout: \(watch.stdout) stderr: \(watch.stderr)")
        // The watches are armed again: later changes arrive too.
        r = try zk(["config", "set", "k", "3"], server: own)
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try zk(["config", "set", "gone", "back"], server: own)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""value":3"#) && out.contains(#""created""#) },
                      watch.stdout)
        watch.signal(SIGINT)
        XCTAssertEqual(watch.waitForExit(seconds: 30), 130)
        let lines = watch.stdout.split(separator: "\n").map(String.init)
        // Order within one refresh is by key; across refreshes by time. Check content, not interleaving.
        XCTAssertEqual(Set(lines), Set([
            #"{"event":"initial","key":"gone","value":1,"version":0}"#,
            #"{"event":"initial","key":"k","value":1,"version":0}"#,
            #"{"event":"removed","key":"gone"}"#,
            #"{"event":"changed","key":"k","value":2,"version":1}"#,
            #"{"event":"changed","key":"k","value":3,"version":2}"#,
            #"{"event":"created","key":"gone","value":"back","version":0}"#,
        ]))
        XCTAssertEqual(lines.count, 6, "\(lines)")
        XCTAssertTrue(watch.stderr.contains("zkctl: watch: connection lost"), watch.stderr)
    }

    // MARK: help

    func testHelpComesFromTheTable() throws {
        for sub in ["set", "get", "list", "remove", "watch", "export", "import"] {
            let r = try runProcess(zkctlBinaryPath(), ["config", sub, "--help"], environment: Self.environment())
            XCTAssertEqual(r.status, 0, sub)
            let text = r.stdoutText + r.stderrText
            XCTAssertTrue(text.contains("Usage: zkctl config \(sub)"), text)
            XCTAssertTrue(text.contains("Examples:"), "\(sub): \(text)")
        }
        let r = try runProcess(zkctlBinaryPath(), ["config", "export", "--help"], environment: Self.environment())
        XCTAssertTrue((r.stdoutText + r.stderrText).contains("upper case"), "env name rules are documented")
    }
}
