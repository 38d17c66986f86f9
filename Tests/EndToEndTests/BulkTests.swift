import Foundation
import XCTest
import ZKTestSupport

/// Bulk commands at their edges, through the built binary: output that cannot be written, nodes
/// the session may not read in the middle of a walk, and bulk writes interrupted by SIGINT.
final class BulkTests: XCTestCase {
    var server: ZooKeeperServer!
    var base = ""
    var scratch: URL!
    let credential = "keeper:hidden-\(UUID().uuidString.prefix(6))"

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("bulk")
        scratch = try ZKTestPaths.makeTemporaryDirectory(label: "bulk")
    }

    override func tearDownWithError() throws {
        _ = try? zkctl(["-s", server.connectString, "delete", "--recursive", "--force", base], env: ["ZKCTL_AUTH": credential])
        try? FileManager.default.removeItem(at: scratch)
    }

    // MARK: helpers

    func environment(_ env: [String: String]) -> [String: String] {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(env) { $1 }
        return environment
    }

    func zkctl(_ args: [String], env: [String: String] = [:], timeout: TimeInterval = 180) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), args, environment: environment(env), timeout: timeout)
    }

    func on(_ args: [String], server target: ZooKeeperServer? = nil, auth: Bool = false) throws -> ProcessResult {
        try zkctl(["-s", (target ?? server).connectString] + args, env: auth ? ["ZKCTL_AUTH": credential] : [:])
    }

    /// zkctl with its stdout sent to `/dev/full` (every write fails with ENOSPC).
    func toFull(_ args: [String]) throws -> ProcessResult {
        try runProcess("/bin/sh", ["-c", #"exec "$0" "$@" > /dev/full"#, zkctlBinaryPath(), "-s", server.connectString] + args,
                       environment: environment([:]), timeout: 120)
    }

    @discardableResult
    func ok(_ args: [String], server target: ZooKeeperServer? = nil, auth: Bool = false,
            file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try on(args, server: target, auth: auth)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        return r
    }

    func digestID() throws -> String {
        try zkctl(["digest", credential]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An export document of `root` with `dirs` directories of `leaves` leaves each, and under
    /// each directory a chain `c/c/...` of `chain` nodes (each level of a chain is one more
    /// transaction for delete -r).
    func exportDocument(root: String, dirs: Int, leaves: Int, chain: Int = 0, value: String = "v") -> (text: String, count: Int) {
        let acl = #"[{"scheme":"world","id":"anyone","perms":"cdrwa"}]"#
        var lines = [#"{"path":"","type":"persistent","data":"root","acl":\#(acl)}"#]
        for d in 0..<dirs {
            lines.append(#"{"path":"d\#(String(format: "%03d", d))","type":"persistent","data":"dir","acl":\#(acl)}"#)
        }
        for d in 0..<dirs {
            for n in 0..<leaves {
                lines.append(#"{"path":"d\#(String(format: "%03d/n%05d", d, n))","type":"persistent","data":"\#(value)","acl":\#(acl)}"#)
            }
        }
        for depth in stride(from: 1, through: chain, by: 1) {
            for d in 0..<dirs {
                let path = String(format: "d%03d", d) + String(repeating: "/c", count: depth)
                lines.append(#"{"path":"\#(path)","type":"persistent","data":"\#(value)","acl":\#(acl)}"#)
            }
        }
        let text = #"{"format":"zkctl-export","version":1,"root":"\#(root)","exported":"2026-01-01T00:00:00.000Z","nodes":["#
            + "\n" + lines.joined(separator: ",\n") + "\n],\"nodeCount\":\(lines.count),\"skippedEphemeral\":0}\n"
        return (text, lines.count)
    }

    func writeFile(_ text: String, _ name: String) throws -> String {
        let url = scratch.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// How many nodes the subtree at `root` holds (0 when it does not exist).
    func count(_ root: String, server target: ZooKeeperServer? = nil) throws -> Int {
        let r = try on(["-o", "ndjson", "tree", root], server: target)
        if r.status == 1 { return 0 }
        XCTAssertEqual(r.status, 0, r.stderrText)
        return r.stdoutText.filter { $0 == "\n" }.count
    }

    /// A subtree whose node `secret` (with a child) only the digest user may read.
    func makeGuardedTree() throws -> String {
        let app = base + "/app"
        try ok(["create", "--parents", app, "top"])
        for name in ["a", "b", "z"] { try ok(["create", app + "/" + name, "value " + name]) }
        try ok(["create", app + "/secret", "hidden", "--acl", "digest:\(try digestID()):cdrwa"], auth: true)
        try ok(["create", app + "/secret/inner", "deeper"], auth: true)
        return app
    }

    // MARK: item 1: output that cannot be written

    func testOutputThatCannotBeWrittenIsExit73AndClaimsNothing() throws {
        // Large enough that export and tree fill several 64 KiB buffers.
        let big = base + "/big"
        let (text, total) = exportDocument(root: big, dirs: 10, leaves: 100, value: String(repeating: "x", count: 200))
        try ok(["import", try writeFile(text, "big.json")])
        try ok(["create", "--parents", base + "/small", "tiny"])
        let configRoot = base + "/config"
        try ok(["--config-root", configRoot, "config", "set", "db.host", "\"h\""])
        let noSpace = "zkctl: cannot write to standard output: No space left on device\n"
        for args in [["export", big], ["export", base + "/small"], ["tree", big], ["tree", "--data", big],
                     ["-o", "json", "tree", big], ["-o", "ndjson", "tree", big], ["get", base + "/small"],
                     ["--config-root", configRoot, "config", "list"], ["--help"]] {
            let r = try toFull(args)
            XCTAssertEqual(r.status, 73, "\(args): \(r.stderrText)")
            // One line, and never "exported N nodes".
            XCTAssertEqual(r.stderrText, noSpace, "\(args)")
        }
        // When stderr cannot take the line either, the code still says it; a diagnostic that
        // cannot be written turns success into 73 too.
        for (redirect, args) in [("> /dev/full 2>/dev/full", ["export", big]), ("2>/dev/full", ["export", base + "/small"])] {
            let r = try runProcess("/bin/sh", ["-c", #"exec "$0" "$@" "# + redirect, zkctlBinaryPath(), "-s", server.connectString] + args,
                                   environment: environment([:]), timeout: 120)
            XCTAssertEqual(r.status, 73, "\(redirect) \(args)")
        }
        // The same export to a pipe works and says so.
        let good = try ok(["export", big])
        XCTAssertEqual(good.stderrText, "zkctl: exported \(total) nodes from \(big)\n")
    }

    func testABrokenPipeIsQuiet() throws {
        let big = base + "/big"
        let (text, _) = exportDocument(root: big, dirs: 10, leaves: 100, value: String(repeating: "x", count: 200))
        try ok(["import", try writeFile(text, "big.json")])
        // `| head -1`: the reader goes away after one line. zkctl says nothing and ends as if by
        // SIGPIPE (141), whether SIGPIPE kills it or is ignored and the write fails with EPIPE.
        for ignore in [false, true] {
            for args in [["tree", "--data", big], ["export", big]] {
                let script = (ignore ? "trap '' PIPE; " : "")
                    + #""$0" "$@" 2>"$ERR" | head -1 >/dev/null; echo "${PIPESTATUS[0]}""#
                let errFile = scratch.appendingPathComponent("err-\(ignore)").path
                var env = environment([:])
                env["ERR"] = errFile
                let r = try runProcess("/bin/bash", ["-c", script, zkctlBinaryPath(), "-s", server.connectString] + args,
                                       environment: env, timeout: 120)
                XCTAssertEqual(r.stdoutText, "141\n", "\(args), SIGPIPE ignored: \(ignore)")
                XCTAssertEqual(try String(contentsOfFile: errFile, encoding: .utf8), "", "\(args), SIGPIPE ignored: \(ignore)")
            }
        }
    }

    // MARK: item 3: unreadable nodes in walks

    func testWalksGoPastUnreadableNodesNameThemAndExit77() throws {
        let app = try makeGuardedTree()
        let skippedLine = "zkctl: \(app)/secret: not authorized, skipped\n"
        let warningLine = "zkctl: warning: \(app)/secret: not authorized, skipped\n"

        // tree: everything else is drawn.
        var r = try on(["tree", "--ascii", app])
        XCTAssertEqual(r.status, 77, r.stderrText)
        XCTAssertEqual(r.stdoutText, "\(app)\n|-- a\n|-- b\n`-- z\n")
        XCTAssertEqual(r.stderrText, skippedLine)
        r = try on(["tree", "--ascii", "--skip-unreadable", app])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, "\(app)\n|-- a\n|-- b\n`-- z\n")
        XCTAssertEqual(r.stderrText, warningLine)
        r = try on(["-o", "ndjson", "tree", app])
        XCTAssertEqual(r.status, 77)
        XCTAssertEqual(r.stdoutText.split(separator: "\n").count, 4)
        // An unreadable root is 77 at once, with nothing on stdout.
        r = try on(["tree", app + "/secret"])
        XCTAssertEqual(r.status, 77)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText, "zkctl: \(app)/secret: not authorized\n")

        // export to stdout: a valid document that lists what it skipped, and exit 77.
        r = try on(["export", app])
        XCTAssertEqual(r.status, 77, r.stderrText)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(doc["nodeCount"] as? Int, 4)
        XCTAssertEqual(doc["skippedUnreadable"] as? [String], ["secret"])
        XCTAssertEqual(r.stderrText, skippedLine
                       + "zkctl: exported 4 nodes from \(app); skipped 1 unreadable node (not authorized); the export is incomplete\n")
        // export --file: no file at all unless --skip-unreadable.
        let file = scratch.appendingPathComponent("app.json").path
        r = try on(["export", app, "--file", file])
        XCTAssertEqual(r.status, 77)
        XCTAssertEqual(r.stderrText, skippedLine
                       + "zkctl: export of \(app) incomplete: 1 unreadable node skipped; nothing was written to '\(file)' (--skip-unreadable writes the rest)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + ".partial"))
        r = try on(["export", app, "--file", file, "--skip-unreadable"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, warningLine + "zkctl: exported 4 nodes from \(app); skipped 1 unreadable node (not authorized)\n")
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        XCTAssertEqual(written["skippedUnreadable"] as? [String], ["secret"])
        XCTAssertEqual((written["nodes"] as? [[String: Any]])?.compactMap { $0["path"] as? String }, ["", "a", "b", "z"])

        // diff: what cannot be read is not reported as a difference.
        r = try on(["diff", app, "file:" + file])
        XCTAssertEqual(r.status, 77, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText, skippedLine)
        try ok(["set", app + "/a", "changed"])
        r = try on(["diff", "--skip-unreadable", app, "file:" + file])
        XCTAssertEqual(r.status, 1, r.stderrText)
        XCTAssertEqual(r.stdoutText, "~ a (data)\n")
        XCTAssertEqual(r.stderrText, warningLine)

        // The file knows it is incomplete: diff and import do not take what it lacks for absent.
        r = try on(["diff", "file:" + file, app], auth: true)
        XCTAssertEqual(r.status, 1, r.stderrText)
        XCTAssertEqual(r.stdoutText, "~ a (data)\n")
        XCTAssertEqual(r.stderrText, "")
        r = try on(["import", file, "--overwrite", "--prune"], auth: true)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "zkctl: warning: \(file) is incomplete: its export could not read 1 node (secret); it and its subtree are not restored and not pruned\n"
                       + "zkctl: imported \(file) into \(app): 0 created, 1 updated, 3 skipped, 0 removed\n")
        XCTAssertEqual(try ok(["get", app + "/secret/inner"], auth: true).stdoutText, "deeper")
        XCTAssertEqual(try ok(["get", app + "/a"]).stdoutText, "value a")

        // acl set -r: the rest changes.
        r = try on(["acl", "set", "-r", app, "world:anyone:cdrwa", "ip:127.0.0.1:r"])
        XCTAssertEqual(r.status, 77, r.stderrText)
        XCTAssertEqual(r.stderrText, skippedLine)
        XCTAssertEqual(try ok(["acl", "get", app + "/z"]).stdoutText, "world:anyone:cdrwa\nip:127.0.0.1:r\n")

        // delete -r: the readable rest goes; the unreadable node and the nodes above it stay.
        r = try on(["delete", "-r", app])
        XCTAssertEqual(r.status, 77, r.stderrText)
        XCTAssertEqual(r.stderrText, skippedLine)
        XCTAssertEqual(try ok(["ls", app]).stdoutText, "secret\n")
        XCTAssertEqual(try ok(["ls", app + "/secret"], auth: true).stdoutText, "inner\n")
        XCTAssertEqual(try on(["delete", "-r", "--skip-unreadable", app]).status, 0)
        try ok(["delete", "-r", app], auth: true)
        XCTAssertEqual(try on(["exists", app]).status, 1)
    }

    // MARK: item 15: diff's exit codes

    func testDiffTellsDiffersFromMissing() throws {
        try ok(["create", "--parents", base + "/one/x", "1"])
        try ok(["create", "--parents", base + "/two/x", "2"])
        XCTAssertEqual(try on(["diff", base + "/one", base + "/one"]).status, 0)
        let differs = try on(["diff", base + "/one", base + "/two"])
        XCTAssertEqual(differs.status, 1)
        XCTAssertEqual(differs.stdoutText, "~ x (data)\n")
        for pair in [[base + "/nowhere", base + "/one"], [base + "/one", base + "/nowhere"]] {
            let missing = try on(["diff"] + pair)
            XCTAssertEqual(missing.status, 2, missing.stderrText)
            XCTAssertEqual(missing.stdoutText, "")
            XCTAssertEqual(missing.stderrText, "zkctl: \(base)/nowhere: no such znode\n")
        }
    }

    // MARK: item 12: interrupted bulk writes

    /// The pid of a dedicated server's JVM.
    func jvmPid(_ server: ZooKeeperServer) throws -> Int32 {
        let text = try String(contentsOf: server.directory.appendingPathComponent("1/pid"), encoding: .utf8)
        return try XCTUnwrap(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Runs `args` in the background; once `started` holds, freezes the server (so a transaction
    /// is on its way), sends SIGINT, lets the server go on, and returns the exit status and stderr.
    /// Runs zkctl `args` against `dedicated` (through `relay` when given), and once `started`
    /// says the work is under way, stops the server, sends SIGINT and lets the server go on.
    func interrupt(_ args: [String], on dedicated: ZooKeeperServer, through relay: FaultRelay? = nil,
                   when started: () throws -> Bool) throws -> (Int32?, String) {
        let process = try BackgroundProcess(zkctlBinaryPath(), ["-s", relay?.address ?? dedicated.connectString, "--timeout", "20s"] + args,
                                            environment: environment([:]), directory: scratch)
        let deadline = Date().addingTimeInterval(240)
        var seen = false
        while Date() < deadline && process.process.isRunning {
            if try started() { seen = true; break }
            Thread.sleep(forTimeInterval: 0.002)
        }
        XCTAssertTrue(seen, "never saw progress: \(process.stderr)")
        let jvm = try jvmPid(dedicated)
        kill(jvm, SIGSTOP)
        process.signal(SIGINT)
        Thread.sleep(forTimeInterval: 1)
        kill(jvm, SIGCONT)
        let status = process.waitForExit(seconds: 60)
        return (status, process.stderr)
    }

    func testInterruptedImportAndDeleteSayExactlyWhatWasDone() throws {
        let dedicated = try ZooKeeperServer.standalone()
        defer { dedicated.shutdown() }
        let big = base + "/big"
        let chain = 100
        let (text, nodes) = exportDocument(root: big, dirs: 20, leaves: 2500, chain: chain)
        let file = try writeFile(text, "big.json")
        // The import creates `base` too (an ancestor of the file's root).
        let total = nodes + 1

        // The first transaction holds the root and every directory: once d019 exists, the import
        // is under way with more to come. A watch sees it appear sooner than polling would.
        let arrival = try BackgroundProcess(zkctlBinaryPath(), ["-s", dedicated.connectString, "watch", big + "/d019"],
                                            environment: environment([:]), directory: scratch)
        defer { arrival.kill() }
        XCTAssertTrue(arrival.waitForStderr { $0.contains("does not exist yet") }, arrival.stderr)
        // With four transactions in flight the import can end before the signal lands: through a
        // relay that delays every packet by 40 ms each way, the 50-odd transactions take over a
        // second, while the first is seen (and the signal sent) within about 100 ms.
        let slow = try FaultRelay(upstreamPort: serverPort(dedicated))
        defer { slow.stop() }
        slow.mode = .latency(milliseconds: 40)
        var (status, stderr) = try interrupt(["import", file], on: dedicated, through: slow) {
            arrival.stdout.contains("created ")
        }
        XCTAssertEqual(status, 130, stderr)
        let importLine = try XCTUnwrap(stderr.split(separator: "\n").last.map(String.init), stderr)
        let imported = try XCTUnwrap(importLine.firstMatch(of: #/^zkctl: interrupted: imported (\d+) of (\d+) nodes into (\S+) \((\d+) of (\d+) writes\); run the same import again to finish \(it skips what exists\)$/#), importLine)
        XCTAssertEqual(Int(imported.2), total)
        XCTAssertEqual(String(imported.3), big)
        let created = try XCTUnwrap(Int(imported.1))
        XCTAssertGreaterThan(created, 0)
        XCTAssertLessThan(created, total)
        XCTAssertEqual(stderr.split(separator: "\n").count, 1, stderr)
        // Exactly as many nodes as it said: `base` holds them all.
        XCTAssertEqual(try count(base, server: dedicated), created)

        // Running it again finishes it.
        let again = try ok(["import", file], server: dedicated)
        XCTAssertEqual(again.stderrText, "zkctl: imported \(file) into \(big): \(total - created) created, 0 updated, \(created - 1) skipped, 0 removed\n")
        XCTAssertEqual(try count(big, server: dedicated), nodes)

        // delete -r: the deepest level goes first, the ends of the chains in the first transaction,
        // then one transaction per level of the chains, then the leaves. A watch sees the first
        // node go sooner than polling would.
        let deepest = big + "/d000" + String(repeating: "/c", count: chain)
        let watch = try BackgroundProcess(zkctlBinaryPath(), ["-s", dedicated.connectString, "watch", deepest],
                                          environment: environment([:]), directory: scratch)
        defer { watch.kill() }
        XCTAssertTrue(watch.waitForLines(1), watch.stderr)
        (status, stderr) = try interrupt(["delete", "-r", "--force", big], on: dedicated) {
            watch.stdout.contains("removed ")
        }
        XCTAssertEqual(status, 130, stderr)
        let deleteLine = stderr.trimmingCharacters(in: .newlines)
        let deleted = try XCTUnwrap(deleteLine.firstMatch(of: #/^zkctl: interrupted: deleted (\d+) of (\d+) znodes under (\S+); run the same command again to delete the rest$/#), stderr)
        XCTAssertEqual(Int(deleted.2), nodes)
        XCTAssertEqual(String(deleted.3), big)
        let gone = try XCTUnwrap(Int(deleted.1))
        XCTAssertGreaterThan(gone, 0)
        XCTAssertLessThan(gone, nodes)
        XCTAssertEqual(try count(big, server: dedicated), nodes - gone)
        try ok(["delete", "-r", "--force", big], server: dedicated)
        XCTAssertEqual(try count(big, server: dedicated), 0)
    }
}
