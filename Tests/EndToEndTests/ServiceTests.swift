import Foundation
import XCTest
import ZKTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A tool a test needs is not installed: the test fails with this message.
struct MissingTool: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `zkctl service` through the built binary against a real server: what the user sees on stdout
/// and stderr, exit codes, and the documents other programs (Curator, Spring Cloud) exchange.
final class ServiceTests: XCTestCase {
    var server: ZooKeeperServer!
    /// This test's own base on the shared server; the services root is `<base>/services`.
    var base = ""
    var root: String { base + "/services" }
    /// zkctl processes started in the background; every one still running is killed in tearDown.
    var background: [BackgroundProcess] = []

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("service")
    }

    override func tearDownWithError() throws {
        for b in background { b.kill() }
        // Best effort: leave the shared server tidy.
        _ = try? connected(["delete", "--recursive", "--force", base])
    }

    // MARK: Helpers

    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(extra) { $1 }
        return environment
    }

    /// zkctl against the shared server, under this test's services root.
    func connected(_ args: [String], timeout: TimeInterval = 60) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "--services-root", root] + args,
                       environment: environment(), timeout: timeout)
    }

    /// A command that must succeed with nothing on stderr; returns stdout.
    @discardableResult
    func ok(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try connected(args)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText, "", "\(args)", file: file, line: line)
        return r.stdoutText
    }

    /// A command that must fail with `status`, nothing on stdout and one `zkctl: ` line on stderr.
    @discardableResult
    func fails(_ args: [String], _ status: Int32, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try connected(args)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "\(args): \(r.stderrText)", file: file, line: line)
        return r.stderrText
    }

    func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// The instances `discover -o json` shows for `name`, or nil when it exits 1.
    func discovered(_ name: String) throws -> [[String: Any]]? {
        let r = try connected(["-o", "json", "service", "discover", name])
        if r.status == 1 { return nil }
        XCTAssertEqual(r.status, 0, r.stderrText)
        return try XCTUnwrap(try json(r.stdoutText) as? [[String: Any]], r.stdoutText)
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass.
    func eventually(_ seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if try condition() { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    func startInBackground(_ args: [String]) throws -> BackgroundProcess {
        let b = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "--services-root", root] + args, environment: environment())
        background.append(b)
        return b
    }

    /// Writes `data` at `path` with kazoo, a ZooKeeper client that shares no code with zkctl
    /// (pure Python, from Debian's python3-kazoo, listed in `make deps`), creating parents.
    func writeWithKazoo(_ path: String, _ data: Data) throws {
        let script = """
        import sys
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=sys.argv[1])
        zk.start(timeout=30)
        zk.create(sys.argv[2], sys.stdin.buffer.read(), makepath=True)
        zk.stop()
        zk.close()
        """
        let python = try kazooPython()
        let r = try runProcess(python, ["-c", script, server.connectString, path], environment: environment(), stdin: data)
        XCTAssertEqual(r.status, 0, "kazoo could not write \(path): \(r.stderrText)")
    }

    /// A python3 that can import kazoo; the test fails (never skips) without one.
    func kazooPython() throws -> String {
        for candidate in ["/usr/bin/python3", "python3"] {
            if let r = try? runProcess(candidate, ["-c", "import kazoo"], environment: environment()), r.status == 0 {
                return candidate
            }
        }
        throw MissingTool(message: "no python3 with kazoo; install Debian's python3-kazoo (make deps)")
    }

    // MARK: The issue's examples

    func testSeedExamples() throws {
        let id = try ok(["service", "register", "backend", "localhost", "8000", "--metadata", #"{"version": "1.0"}"#])
            .trimmingCharacters(in: .newlines)
        XCTAssertNotNil(UUID(uuidString: id), "the default id is a UUID: \(id)")
        XCTAssertEqual(id, id.lowercased())

        let table = try ok(["service", "discover", "backend"]).split(separator: "\n").map(String.init)
        XCTAssertEqual(table.count, 2, table.joined(separator: "\n"))
        XCTAssertEqual(table[0].split(separator: " ", omittingEmptySubsequences: true),
                       ["ID", "ADDRESS", "PORT", "SSL", "PORT", "TYPE", "REGISTERED", "METADATA"])
        let cells = table[1].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        XCTAssertEqual(cells.count, 7, table[1])
        XCTAssertEqual(cells[0], id)
        XCTAssertEqual(cells[1], "localhost")
        XCTAssertEqual(cells[2], "8000")
        XCTAssertEqual(cells[3], "-")
        XCTAssertEqual(cells[4], "STATIC")
        XCTAssertTrue(cells[5].hasSuffix("Z"), cells[5])
        XCTAssertEqual(cells[6], #"{"version":"1.0"}"#)

        XCTAssertEqual(try ok(["service", "list"]), "SERVICE  INSTANCES\nbackend  1\n")
        XCTAssertEqual(try ok(["-o", "json", "service", "list"]), #"{"backend":1}"# + "\n")
        XCTAssertEqual(try ok(["service", "discover", "backend", "--url"]), "http://localhost:8000\n")
    }

    func testDiscoverJSONThroughJq() throws {
        try ok(["service", "register", "backend", "localhost", "8000", "--id", "b1", "--metadata", #"{"version": "1.0"}"#])
        try ok(["service", "register", "backend", "10.0.0.2", "8443", "--id", "b2", "--scheme", "https", "--ssl-port", "9443"])
        let zkctl = zkctlBinaryPath()
        let pipeline = "'\(zkctl)' -s '\(server.connectString)' --services-root '\(root)' service discover backend -o json | jq -r '.[] | .id + \" \" + .url + \" \" + (.metadata.version // \"-\")'"
        let r = try runProcess("/bin/sh", ["-c", pipeline], environment: environment())
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, "b1 http://localhost:8000 1.0\nb2 https://10.0.0.2:9443 -\n")

        let all = try XCTUnwrap(try discovered("backend"))
        XCTAssertEqual(all.count, 2)
        let first = all[0]
        for key in ["id", "name", "address", "port", "sslPort", "serviceType", "registrationTimeUTC", "metadata", "url"] {
            XCTAssertNotNil(first[key], key)
        }
        XCTAssertEqual(first["name"] as? String, "backend")
        XCTAssertEqual(first["port"] as? Int, 8000)
        XCTAssertTrue(first["sslPort"] is NSNull)
        XCTAssertEqual(first["serviceType"] as? String, "STATIC")
        XCTAssertEqual(first["ephemeral"] as? Bool, false)
        XCTAssertEqual(all[1]["sslPort"] as? Int, 9443)

        let urls = try ok(["service", "discover", "backend", "--all-urls"])
        XCTAssertEqual(urls, "http://localhost:8000\nhttps://10.0.0.2:9443\n")
        XCTAssertEqual(try json(try ok(["-o", "json", "service", "discover", "backend", "--all-urls"])) as? [String],
                       ["http://localhost:8000", "https://10.0.0.2:9443"])
        let picked = try ok(["service", "discover", "backend", "--url"]).trimmingCharacters(in: .newlines)
        XCTAssertTrue(["http://localhost:8000", "https://10.0.0.2:9443"].contains(picked), picked)
    }

    // MARK: Interoperability

    /// An instance document in the exact shape Curator 5 writes for Spring Cloud ZooKeeper,
    /// written by another client, is discovered; registering the same id again keeps what
    /// zkctl does not know.
    func testCuratorDocumentWrittenByAnotherClient() throws {
        let id = "6d4e5121-6c17-4023-8f7b-8922f8b70cae"
        let document = """
        {"name":"orders","id":"\(id)","address":"10.1.2.3","port":8005,"sslPort":null,\
        "payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","id":"application-1",\
        "name":"orders","metadata":{"instance_status":"UP"}},"registrationTimeUTC":1610116500446,"serviceType":"DYNAMIC",\
        "uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},\
        {"value":":","variable":false},{"value":"port","variable":true}]},"enabled":true,"someFutureField":[1,2]}
        """
        try writeWithKazoo("\(root)/orders/\(id)", Data(document.utf8))
        // One with only an SSL port and no uriSpec (Curator allows null).
        try writeWithKazoo("\(root)/orders/tls-only", Data(#"{"name":"orders","id":"tls-only","address":"10.1.2.4","port":null,"sslPort":8443,"payload":null,"registrationTimeUTC":1610116500447,"serviceType":"STATIC","uriSpec":null}"#.utf8))

        let all = try XCTUnwrap(try discovered("orders"))
        XCTAssertEqual(all.count, 2)
        let spring = all[0]
        XCTAssertEqual(spring["id"] as? String, id)
        XCTAssertEqual(spring["address"] as? String, "10.1.2.3")
        XCTAssertEqual(spring["port"] as? Int, 8005)
        XCTAssertEqual(spring["serviceType"] as? String, "DYNAMIC")
        XCTAssertEqual(spring["registrationTimeUTC"] as? Int, 1_610_116_500_446)
        XCTAssertNil(spring["registered"], "one time, in ms since the epoch, not a second one as text")
        XCTAssertEqual(spring["metadata"] as? [String: String], ["instance_status": "UP"])
        XCTAssertEqual(spring["url"] as? String, "http://10.1.2.3:8005")
        XCTAssertEqual(all[1]["url"] as? String, "https://10.1.2.4:8443")
        XCTAssertTrue(all[1]["port"] is NSNull)

        let table = try ok(["service", "discover", "orders"])
        XCTAssertTrue(table.contains(#"{"instance_status":"UP"}"#), table)
        XCTAssertTrue(table.contains("2021-01-08T14:35:00.446Z"), table)

        // Registering the same id again updates it and keeps the fields zkctl does not know.
        let written = try ok(["-o", "json", "service", "register", "orders", "10.1.2.3", "8006", "--id", id,
                              "--metadata", #"{"instance_status":"OUT_OF_SERVICE"}"#])
        let doc = try XCTUnwrap(try json(written) as? [String: Any])
        XCTAssertEqual(doc["port"] as? Int, 8006)
        XCTAssertEqual(doc["someFutureField"] as? [Int], [1, 2])
        let payload = try XCTUnwrap(doc["payload"] as? [String: Any])
        XCTAssertEqual(payload["@class"] as? String, "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance")
        XCTAssertEqual(payload["id"] as? String, "application-1")
        XCTAssertEqual(payload["metadata"] as? [String: String], ["instance_status": "OUT_OF_SERVICE"])
        let again = try XCTUnwrap(try discovered("orders"))
        XCTAssertEqual(again.count, 2)
        XCTAssertEqual(again.first { $0["id"] as? String == id }?["port"] as? Int, 8006)
    }

    /// What zkctl writes has exactly Curator's fields, as another client reads them.
    func testWrittenDocumentAsAnotherClientReadsIt() throws {
        try ok(["service", "register", "web", "localhost", "8080", "--id", "w1", "--metadata", #"{"zone": "a"}"#])
        let script = """
        import sys, json
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=sys.argv[1])
        zk.start(timeout=30)
        data, stat = zk.get(sys.argv[2])
        zk.stop()
        zk.close()
        doc = json.loads(data)
        print(",".join(doc.keys()))
        print(doc["payload"]["@class"], json.dumps(doc["payload"]["metadata"]), doc["serviceType"], doc["sslPort"], doc["enabled"])
        print("".join(p["value"] if not p["variable"] else "{" + p["value"] + "}" for p in doc["uriSpec"]["parts"]))
        """
        let r = try runProcess(try kazooPython(), ["-c", script, server.connectString, "\(root)/web/w1"], environment: environment())
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, """
        name,id,address,port,sslPort,payload,registrationTimeUTC,serviceType,uriSpec,enabled
        org.springframework.cloud.zookeeper.discovery.ZookeeperInstance {"zone": "a"} STATIC None True
        http://{address}:{port}

        """)
    }

    // MARK: Ephemeral registrations

    func testEphemeralGoesAtOnceOnSIGTERM() throws {
        let b = try startInBackground(["service", "register", "worker", "127.0.0.1", "9000", "--ephemeral", "--id", "w1"])
        XCTAssertTrue(try eventually(30) { try discovered("worker") != nil }, "never registered: \(b.stderr)")
        let instance = try XCTUnwrap(try discovered("worker")?.first)
        XCTAssertEqual(instance["serviceType"] as? String, "DYNAMIC")
        XCTAssertEqual(instance["ephemeral"] as? Bool, true)
        XCTAssertEqual(b.stdout, "w1\n")

        b.signal(SIGTERM)
        XCTAssertEqual(b.waitForExit(seconds: 30), 143)
        // Gone as soon as zkctl has exited, not after the session timeout.
        XCTAssertNil(try discovered("worker"))
        XCTAssertEqual(b.stderr, "")
    }

    func testEphemeralGoesWithinSessionTimeoutAfterSIGKILL() throws {
        let b = try startInBackground(["--timeout", "4s", "service", "register", "worker", "127.0.0.1", "9000", "--ephemeral"])
        XCTAssertTrue(try eventually(30) { try discovered("worker") != nil }, "never registered: \(b.stderr)")
        b.signal(SIGKILL)
        XCTAssertNotNil(b.waitForExit(seconds: 30))
        // The server removes it when the 4 s session times out (generous margin for a busy machine).
        XCTAssertTrue(try eventually(60) { try discovered("worker") == nil }, "still registered long after the session timeout")
    }

    /// Stopping zkctl (SIGSTOP) past its session timeout makes the server expire the session;
    /// once it runs again it learns of the expiry, opens a new session and registers again.
    func testEphemeralRegistersAgainAfterSessionExpiry() throws {
        let b = try startInBackground(["--timeout", "4s", "service", "register", "worker", "127.0.0.1", "9000", "--ephemeral", "--id", "w1"])
        XCTAssertTrue(try eventually(30) { try discovered("worker") != nil }, "never registered: \(b.stderr)")
        b.signal(SIGSTOP)
        defer { b.signal(SIGCONT) }
        XCTAssertTrue(try eventually(60) { try discovered("worker") == nil }, "the stopped session never expired")
        b.signal(SIGCONT)
        XCTAssertTrue(try eventually(60) { try discovered("worker") != nil }, "not registered again: \(b.stderr)")
        let instance = try XCTUnwrap(try discovered("worker")?.first)
        XCTAssertEqual(instance["id"] as? String, "w1")
        XCTAssertEqual(instance["ephemeral"] as? Bool, true)
        XCTAssertEqual(b.stderr, "zkctl: warning: session expired; registering worker/w1 again\nzkctl: registered worker/w1 again\n")
        b.signal(SIGTERM)
        XCTAssertEqual(b.waitForExit(seconds: 30), 143)
        XCTAssertNil(try discovered("worker"))
    }

    func testSidecarExitsWithTheChildsCodeAndLeavesNothing() throws {
        let zkctl = zkctlBinaryPath()
        // The child looks itself up while it runs, then exits 7.
        let child = "echo \"$ZKCTL_SERVICE_NAME/$ZKCTL_SERVICE_ID\"; '\(zkctl)' -s '\(server.connectString)' --services-root '\(root)' service discover job --all-urls; exit 7"
        let r = try connected(["service", "register", "job", "127.0.0.1", "7000", "--ephemeral", "--id", "j1", "--", "/bin/sh", "-c", child])
        XCTAssertEqual(r.status, 7, r.stderrText)
        XCTAssertEqual(r.stdoutText, "job/j1\nhttp://127.0.0.1:7000\n")
        XCTAssertEqual(r.stderrText, "zkctl: registered job/j1 (ephemeral) while '/bin/sh' runs\n")
        try fails(["service", "discover", "job"], 1)
        XCTAssertEqual(try ok(["-o", "json", "service", "list"]), "{}\n")

        // Exit 0 too, and -q keeps stderr empty.
        let quiet = try connected(["-q", "service", "register", "job", "127.0.0.1", "7000", "--ephemeral", "--", "true"])
        XCTAssertEqual(quiet.status, 0)
        XCTAssertEqual(quiet.stdoutText + quiet.stderrText, "")
        try fails(["service", "discover", "job"], 1)
    }

    func testSidecarForwardsSIGTERMToTheChild() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-sidecar-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let child = "trap 'echo got-term > \(marker); exit 3' TERM; while :; do sleep 0.1; done"
        let b = try startInBackground(["service", "register", "job", "127.0.0.1", "7000", "--ephemeral", "--", "/bin/sh", "-c", child])
        XCTAssertTrue(try eventually(30) { try discovered("job") != nil }, "never registered: \(b.stderr)")
        b.signal(SIGTERM)
        XCTAssertEqual(b.waitForExit(seconds: 30), 143)
        XCTAssertEqual(try String(contentsOfFile: marker, encoding: .utf8), "got-term\n")
        XCTAssertNil(try discovered("job"))
    }

    func testSidecarThatCannotRunRegistersNothing() throws {
        let stderr = try fails(["service", "register", "job", "127.0.0.1", "7000", "--ephemeral", "--", "no-such-command-for-zkctl"], 127)
        XCTAssertEqual(stderr, "zkctl: cannot run 'no-such-command-for-zkctl': command not found\n")
        try fails(["service", "register", "job", "127.0.0.1", "7000", "--", "true"], 64)
        XCTAssertEqual(try ok(["-o", "json", "service", "list"]), "{}\n")
    }

    // MARK: Updating and removing

    func testRegisterAgainUpdatesAndDeregister() throws {
        XCTAssertEqual(try ok(["service", "register", "api", "h1", "80", "--id", "a1"]), "a1\n")
        XCTAssertEqual(try ok(["service", "register", "api", "h1", "81", "--id", "a1", "--metadata", #"{"v": 2}"#]), "a1\n")
        try ok(["service", "register", "api", "h2", "80", "--id", "a2"])
        try ok(["service", "register", "other", "h3", "80", "--id", "o1"])
        let all = try XCTUnwrap(try discovered("api"))
        XCTAssertEqual(all.map { $0["id"] as? String }, ["a1", "a2"])
        XCTAssertEqual(all[0]["port"] as? Int, 81)
        XCTAssertEqual(all[0]["metadata"] as? [String: Int], ["v": 2])
        XCTAssertEqual(try ok(["service", "list"]), "SERVICE  INSTANCES\napi      2\nother    1\n")

        XCTAssertEqual(try ok(["service", "deregister", "api", "a1"]), "")
        XCTAssertEqual(try fails(["service", "deregister", "api", "a1"], 1), "zkctl: no instance 'a1' of service 'api' under \(root)\n")
        XCTAssertEqual(try ok(["-o", "json", "service", "deregister", "api", "--all"]), #"{"name":"api","deregistered":["a2"]}"# + "\n")
        try fails(["service", "deregister", "api", "--all"], 1)
        try fails(["service", "discover", "api"], 1)
        XCTAssertEqual(try ok(["-o", "json", "service", "list"]), #"{"other":1}"# + "\n")
        try fails(["service", "deregister", "api"], 64)
        try fails(["service", "deregister", "other", "o1", "--all"], 64)
    }

    // MARK: Refusals

    func testMalformedArgumentsAreRefusedAndNothingIsWritten() throws {
        let usage: [[String]] = [
            ["backend", "localhost", "0"], ["backend", "localhost", "65536"], ["backend", "localhost", "http"],
            ["backend", "localhost", "-1"], ["backend", "localhost", "80", "--ssl-port", "0"],
            ["backend", "localhost", "80", "--ssl-port", "99999"], ["backend", "localhost"],
            ["a/b", "localhost", "80"], ["..", "localhost", "80"], [".", "localhost", "80"], ["", "localhost", "80"],
            ["bad name", "localhost", "80"], ["tab\tname", "localhost", "80"], ["backend", "localhost", "80", "--id", "x/y"],
            ["backend", "localhost", "80", "--id", ".."], ["backend", "", "80"], ["backend", "a b", "80"],
            ["backend", "localhost", "80", "--scheme", "1http"],
        ]
        for args in usage {
            let stderr = try fails(["service", "register"] + args, 64)
            XCTAssertTrue(stderr.contains("see 'zkctl service register --help'") || stderr.contains("see 'zkctl --help'"), stderr)
        }
        let badData: [String] = ["{bad", "[1, 2]", "\"text\"", "42", ""]
        for metadata in badData {
            let stderr = try fails(["service", "register", "backend", "localhost", "80", "--metadata", metadata], 65)
            XCTAssertTrue(stderr.hasPrefix("zkctl: bad --metadata: "), stderr)
        }
        try fails(["service", "discover", "a/b"], 64)
        try fails(["service", "deregister", "..", "x"], 64)
        // Nothing was written: not even the services root.
        XCTAssertEqual(try ok(["-o", "json", "service", "list"]), "{}\n")
        let r = try connected(["service", "list"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdoutText, "")
    }

    func testDiscoverOfMissingService() throws {
        XCTAssertEqual(try fails(["service", "discover", "nothing"], 1), "zkctl: no service 'nothing' under \(root)\n")
        try fails(["service", "discover", "nothing", "--url"], 1)
        try fails(["service", "discover", "nothing", "--url", "--all-urls"], 64)
    }
}

