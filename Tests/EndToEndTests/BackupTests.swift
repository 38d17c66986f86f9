import Foundation
import XCTest
import ZKTestSupport

/// export, import and diff through the built binary against real servers: what the user sees on
/// stdout and stderr, exit codes, and what ends up on the server.
final class BackupTests: XCTestCase {
    var server: ZooKeeperServer!
    /// This test's own root on the shared server.
    var base = ""
    var scratch: URL!
    /// Digest credential used for the nodes with restrictive ACLs.
    let credential = "ops:secret"
    var children: [Process] = []

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("backup")
        scratch = try ZKTestPaths.makeTemporaryDirectory(label: "backup")
    }

    override func tearDownWithError() throws {
        for p in children where p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        _ = try? zkctl(["-s", server.connectString, "delete", "--recursive", "--force", base], env: ["ZKCTL_AUTH": credential])
        try? FileManager.default.removeItem(at: scratch)
    }

    // MARK: helpers

    /// Runs zkctl with a clean environment (no settings leak in from the machine).
    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 180) throws -> ProcessResult {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(env) { $1 }
        return try runProcess(zkctlBinaryPath(), args, environment: environment, stdin: stdin, timeout: timeout)
    }

    func on(_ target: ZooKeeperServer, _ args: [String], auth: Bool = false) throws -> ProcessResult {
        try zkctl(["-s", target.connectString] + args, env: auth ? ["ZKCTL_AUTH": credential] : [:])
    }

    /// A command that must succeed; returns the result for further checks.
    @discardableResult
    func ok(_ args: [String], on target: ZooKeeperServer? = nil, auth: Bool = false,
            file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try on(target ?? server, args, auth: auth)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        return r
    }

    /// A command that must fail with `status`, nothing on stdout and one `zkctl: ` line on stderr.
    @discardableResult
    func fails(_ args: [String], _ status: Int32, on target: ZooKeeperServer? = nil, auth: Bool = false,
               file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try on(target ?? server, args, auth: auth)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "\(args): \(r.stderrText)", file: file, line: line)
        return r.stderrText
    }

    /// `diff` that must find the two sides equal: exit 0, no output at all.
    func assertSame(_ a: String, _ b: String, on target: ZooKeeperServer? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try on(target ?? server, ["diff", a, b], auth: true)
        XCTAssertEqual(r.status, 0, "diff \(a) \(b): \(r.stdoutText.prefix(2000)) \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", file: file, line: line)
        XCTAssertEqual(r.stderrText, "", file: file, line: line)
    }

    func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    func write(_ text: String, to name: String) throws -> String {
        let p = path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    func jsonObject(_ data: Data, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], file: file, line: line)
    }

    func quoted(_ s: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed]), as: UTF8.self)
    }

    func aclJSON(_ entries: [(String, String, String)]) -> String {
        "[" + entries.map { #"{"scheme":"\#($0.0)","id":\#(quoted($0.1)),"perms":"\#($0.2)"}"# }.joined(separator: ",") + "]"
    }

    /// The digest id of `credential`, from `zkctl digest`.
    func digestID() throws -> String {
        let r = try zkctl(["digest", credential])
        XCTAssertEqual(r.status, 0, r.stderrText)
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An export document written by hand, one node per line: root, then `dirs` directories of
    /// `leaves` leaves each. Values cycle through text, binary and empty; some nodes carry
    /// restrictive ACLs (readable by anyone, everything else only for the digest user), among them
    /// a directory, so its children must be created before its own ACL applies.
    func makeTree(root: String, dirs: Int, leaves: Int, valueSize: Int = 0, digest: String) -> (text: String, count: Int) {
        let open = aclJSON([("world", "anyone", "cdrwa")])
        let guarded = aclJSON([("world", "anyone", "r"), ("digest", digest, "cdrwa")])
        let mixed = aclJSON([("world", "anyone", "cdrwa"), ("ip", "127.0.0.1", "r")])
        var lines = [#"{"path":"","type":"persistent","data":"root of the tree","acl":\#(open)}"#]
        var i = 0
        for d in 0..<dirs {
            let dir = String(format: "d%02d", d)
            lines.append(#"{"path":"\#(dir)","type":"persistent","data":"directory \#(d)","acl":\#(d == 7 ? guarded : open)}"#)
            for n in 0..<leaves {
                i += 1
                let leaf = dir + String(format: "/n%04d", n)
                let value: String
                switch i % 3 {
                case 0: value = #""data":\#(quoted("value \(i) ünïcode\n" + String(repeating: "v", count: valueSize)))"#
                case 1: value = #""dataBase64":"\#(Data([0xff, UInt8(i % 256), 0x00, 0xfe] + Array(repeating: 0x80, count: valueSize)).base64EncodedString())""#
                default: value = #""data":"""#
                }
                let acl = i % 7 == 0 ? guarded : i % 11 == 0 ? mixed : open
                lines.append(#"{"path":"\#(leaf)","type":"persistent",\#(value),"acl":\#(acl)}"#)
            }
        }
        let text = #"{"format":"zkctl-export","version":1,"root":\#(quoted(root)),"exported":"2024-01-01T00:00:00.000Z","nodes":["#
            + "\n" + lines.joined(separator: ",\n") + "\n],\"skippedEphemeral\":0}\n"
        return (text, lines.count)
    }

    // MARK: the whole cycle on 10,000 nodes

    func testTenThousandNodesExportImportAndDiff() throws {
        let digest = try digestID()
        let (text, count) = makeTree(root: base + "/src", dirs: 99, leaves: 100, digest: digest)
        XCTAssertEqual(count, 10_000)
        let input = try write(text, to: "input.json")

        // Build the source tree by importing the hand-written file (without the digest
        // credential: the guarded directory gets its ACL only after its children exist).
        var r = try ok(["import", input])
        XCTAssertEqual(r.stdoutText, "")
        // The missing parent (the test's base) is created too.
        XCTAssertEqual(r.stderrText, "zkctl: imported \(input) into \(base)/src: 10001 created, 0 updated, 0 skipped, 0 removed\n")

        // Export it.
        let exported = path("export.json")
        r = try ok(["export", base + "/src", "--file", exported], auth: true)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText, "zkctl: exported 10000 nodes from \(base)/src\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: exported + ".partial"))
        let doc = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: exported)))
        XCTAssertEqual(doc["format"] as? String, "zkctl-export")
        XCTAssertEqual(doc["version"] as? Int, 1)
        XCTAssertEqual(doc["root"] as? String, base + "/src")
        XCTAssertEqual(doc["skippedEphemeral"] as? Int, 0)
        XCTAssertEqual(doc["nodeCount"] as? Int, 10_000)
        XCTAssertNotNil(ISO8601DateFormatter().date(from: ((doc["exported"] as? String) ?? "").replacingOccurrences(of: #"\.\d+"#, with: "", options: .regularExpression)))
        let nodes = try XCTUnwrap(doc["nodes"] as? [[String: Any]])
        XCTAssertEqual(nodes.count, 10_000)
        var seen: Set<String> = []
        for node in nodes {
            let p = try XCTUnwrap(node["path"] as? String)
            if !p.isEmpty {
                let parent = p.contains("/") ? String(p[..<p.lastIndex(of: "/")!]) : ""
                XCTAssertTrue(seen.contains(parent), "\(p) before its parent")
            }
            seen.insert(p)
        }
        let byPath = Dictionary(uniqueKeysWithValues: nodes.map { ($0["path"] as! String, $0) })
        XCTAssertEqual(byPath[""]?["data"] as? String, "root of the tree")
        XCTAssertEqual(byPath["d00/n0002"]?["data"] as? String, "value 3 ünïcode\n")
        XCTAssertEqual(byPath["d00/n0000"]?["dataBase64"] as? String, Data([0xff, 1, 0, 0xfe]).base64EncodedString())
        XCTAssertNil(byPath["d00/n0000"]?["data"])
        XCTAssertEqual(byPath["d00/n0001"]?["data"] as? String, "")
        XCTAssertEqual(byPath["d00/n0001"]?["type"] as? String, "persistent")
        let guardedACL = try XCTUnwrap(byPath["d07"]?["acl"] as? [[String: String]])
        XCTAssertEqual(Set(guardedACL.map { "\($0["scheme"]!):\($0["id"]!):\($0["perms"]!)" }),
                       ["world:anyone:r", "digest:\(digest):cdrwa"])
        let mixedACL = try XCTUnwrap(byPath["d00/n0010"]?["acl"] as? [[String: String]])
        XCTAssertEqual(Set(mixedACL.map { "\($0["scheme"]!):\($0["id"]!):\($0["perms"]!)" }), ["world:anyone:cdrwa", "ip:127.0.0.1:r"])

        // The live tree, the hand-written file and the export agree.
        try assertSame(base + "/src", "file:" + exported)
        try assertSame("file:" + input, base + "/src")
        try assertSame("file:" + input, "file:" + exported)

        // Import the export under another path of the same server.
        r = try ok(["import", exported, "--to", base + "/copy"], auth: true)
        XCTAssertEqual(r.stderrText, "zkctl: imported \(exported) into \(base)/copy: 10000 created, 0 updated, 0 skipped, 0 removed\n")
        try assertSame(base + "/src", base + "/copy")

        // And into a second, empty server, at the root recorded in the file.
        let second = try ZooKeeperServer.standalone()
        defer { second.shutdown() }
        r = try ok(["-o", "json", "import", exported], on: second, auth: true)
        let summary = try jsonObject(r.stdout)
        XCTAssertEqual(summary["created"] as? Int, 10_001)
        XCTAssertEqual(summary["updated"] as? Int, 0)
        XCTAssertEqual(summary["skipped"] as? Int, 0)
        XCTAssertEqual(summary["removed"] as? Int, 0)
        XCTAssertEqual(summary["root"] as? String, base + "/src")
        XCTAssertEqual(summary["format"] as? String, "zkctl-export")
        XCTAssertEqual(r.stderrText, "")
        try assertSame(base + "/src", "file:" + exported, on: second)
        let exported2 = path("export2.json")
        try ok(["export", base + "/src", "-f", exported2], on: second, auth: true)
        try assertSame("file:" + exported, "file:" + exported2)

        // A second run changes nothing.
        r = try ok(["import", exported, "--to", base + "/copy"], auth: true)
        XCTAssertEqual(r.stderrText, "zkctl: imported \(exported) into \(base)/copy: 0 created, 0 updated, 10000 skipped, 0 removed\n")

        // One changed value: a conflict without --overwrite (nothing written), an update with it.
        let changed = try write(text.replacingOccurrences(of: #""value 3 ünïcode\n""#, with: #""changed""#), to: "changed.json")
        let conflict = try fails(["import", changed, "--to", base + "/copy"], 75, auth: true)
        XCTAssertTrue(conflict.contains("1 existing node differs from the file: \(base)/copy/d00/n0002 (data)"), conflict)
        try assertSame(base + "/src", base + "/copy")
        r = try ok(["import", changed, "--to", base + "/copy", "--overwrite"], auth: true)
        XCTAssertEqual(r.stderrText, "zkctl: imported \(changed) into \(base)/copy: 0 created, 1 updated, 9999 skipped, 0 removed\n")
        r = try on(server, ["diff", base + "/src", base + "/copy"], auth: true)
        XCTAssertEqual(r.status, 1, r.stderrText)
        XCTAssertEqual(r.stdoutText, "~ d00/n0002 (data)\n")
        XCTAssertEqual(r.stderrText, "")

        // diff's JSON document and the other kinds of difference.
        try ok(["delete", base + "/copy/d01/n0005"], auth: true)
        try ok(["create", base + "/copy/d01/extra"], auth: true)
        r = try on(server, ["-o", "json", "diff", base + "/src", base + "/copy"], auth: true)
        XCTAssertEqual(r.status, 1, r.stderrText)
        let d = try jsonObject(r.stdout)
        XCTAssertEqual(d["equal"] as? Bool, false)
        XCTAssertEqual(d["added"] as? [String], ["d01/extra"])
        XCTAssertEqual(d["removed"] as? [String], ["d01/n0005"])
        let changes = try XCTUnwrap(d["changed"] as? [[String: Any]])
        XCTAssertEqual(changes.count, 1)
        XCTAssertEqual(changes.first?["path"] as? String, "d00/n0002")
        XCTAssertEqual(changes.first?["what"] as? [String], ["data"])

        // --prune brings the copy back to the file exactly.
        r = try ok(["import", exported, "--to", base + "/copy", "--overwrite", "--prune"], auth: true)
        XCTAssertEqual(r.stderrText, "zkctl: imported \(exported) into \(base)/copy: 1 created, 1 updated, 9998 skipped, 1 removed\n")
        try assertSame(base + "/src", base + "/copy")
    }

    // MARK: dry run

    func testDryRunChangesNothing() throws {
        let digest = try digestID()
        let (text, _) = makeTree(root: base + "/src", dirs: 2, leaves: 3, digest: digest)
        let input = try write(text, to: "small.json")

        var r = try ok(["import", input, "--dry-run"])
        XCTAssertEqual(r.stdoutText, ([base, base + "/src", base + "/src/d00"] + (0..<3).map { base + "/src/d00/n000\($0)" }
                                      + [base + "/src/d01"] + (0..<3).map { base + "/src/d01/n000\($0)" }).map { "create \($0)\n" }.joined())
        XCTAssertEqual(r.stderrText, "zkctl: dry run, nothing changed: would create 10, update 0, skip 0, remove 0 under \(base)/src\n")
        try fails(["export", base], 1)

        r = try ok(["-o", "json", "import", input, "--dry-run"])
        let plan = try jsonObject(r.stdout)
        XCTAssertEqual(plan["dryRun"] as? Bool, true)
        XCTAssertEqual(plan["created"] as? Int, 10)
        XCTAssertEqual((plan["plan"] as? [[String: Any]])?.first?["action"] as? String, "create")
        XCTAssertEqual((plan["plan"] as? [[String: Any]])?.first?["path"] as? String, base)
        try fails(["export", base], 1)

        // Against an existing, different tree: the plan shows updates, removals and conflicts, and
        // the tree stays as it was.
        try ok(["import", input])
        let before = path("before.json")
        try ok(["export", base, "-f", before], auth: true)
        try ok(["create", base + "/src/d00/stray"])
        try ok(["set", base + "/src/d01", "other"])
        let mine = path("mine.json")
        try ok(["export", base, "-f", mine], auth: true)
        r = try on(server, ["import", input, "--dry-run", "--overwrite", "--prune"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, "update \(base)/src/d01 (data)\nremove \(base)/src/d00/stray\n")
        r = try on(server, ["import", input, "--dry-run"])
        XCTAssertEqual(r.status, 75)
        XCTAssertEqual(r.stdoutText, "conflict \(base)/src/d01 (data)\n")
        XCTAssertTrue(r.stderrText.hasSuffix("zkctl: 1 existing node differs from the file: \(base)/src/d01 (data); nothing was written (use --overwrite to replace them or --skip-existing to keep them)\n"), r.stderrText)
        try assertSame(base, "file:" + mine)
        r = try on(server, ["diff", "file:" + before, base], auth: true)
        XCTAssertEqual(r.stdoutText, "+ src/d00/stray\n~ src/d01 (data)\n")
        XCTAssertEqual(r.status, 1)

        // --skip-existing leaves the different node; usage errors are caught before anything.
        r = try ok(["import", input, "--skip-existing"])
        XCTAssertEqual(r.stderrText, "zkctl: imported \(input) into \(base)/src: 0 created, 0 updated, 9 skipped, 0 removed\n")
        try assertSame(base, "file:" + mine)
        try fails(["import", input, "--overwrite", "--skip-existing"], 64)
        try fails(["import", path("missing.json")], 66)
        try fails(["export", "/zookeeper"], 64)
        try fails(["import", input, "--to", "/zookeeper/x"], 64)
        // A missing root is 2, not 1 (which says the trees differ).
        let missing = try fails(["diff", base + "/nowhere", "file:" + input], 2)
        XCTAssertTrue(missing.contains("\(base)/nowhere: no such znode"), missing)
    }

    // MARK: bad files

    func testTruncatedOrMalformedFileChangesNothing() throws {
        let digest = try digestID()
        let (text, _) = makeTree(root: base + "/src", dirs: 3, leaves: 50, digest: digest)
        let input = try write(text, to: "t.json")
        try ok(["import", input])
        let snapshot = path("snapshot.json")
        try ok(["export", base, "-f", snapshot], auth: true)

        let bytes = Data(text.utf8)
        let truncated = path("truncated.json")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        var message = try fails(["import", truncated, "--to", base + "/new"], 65)
        XCTAssertTrue(message.contains("\(truncated): not valid JSON"), message)
        XCTAssertTrue(message.contains("nothing was changed"), message)
        try fails(["export", base + "/new"], 1)
        // Over the existing tree, with every permission to change it: still nothing.
        try fails(["import", truncated, "--overwrite", "--prune"], 65, auth: true)
        try assertSame(base, "file:" + snapshot)

        // Well-formed JSON that breaks the format's rules, found before the first write.
        let orphan = try write(text.replacingOccurrences(of: #""path":"d02/n0049""#, with: #""path":"d09/n0049""#), to: "orphan.json")
        message = try fails(["import", orphan, "--to", base + "/new"], 65)
        XCTAssertTrue(message.contains("'d09/n0049' comes before its parent"), message)
        try fails(["export", base + "/new"], 1)
        let badBase64 = try write(text.replacingOccurrences(of: #""dataBase64":"/wEA/g==""#, with: #""dataBase64":"%%%""#), to: "b64.json")
        message = try fails(["import", badBase64, "--to", base + "/new"], 65)
        XCTAssertTrue(message.contains("not valid base64"), message)
        try fails(["import", try write("hello", to: "text.json")], 65)
        try fails(["diff", "file:" + truncated, base], 65)
        try fails(["export", base + "/new"], 1)
        try assertSame(base, "file:" + snapshot)
    }

    // MARK: interrupted import

    func testInterruptedImportConvergesWhenRunAgain() throws {
        let digest = try digestID()
        // About 9 MB: ten or so transactions, up to four in flight.
        let (text, count) = makeTree(root: base, dirs: 10, leaves: 1000, valueSize: 800, digest: digest)
        let input = try write(text, to: "large.json")

        // The server applies the third transaction, its answer is lost and the server is gone
        // for good: the first two are answered, the third and those sent after it (at most three
        // more, each checking that the one before was applied) are not.
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        relay.dropNextReply(to: [.multi], skipping: 2, then: .refuse)
        let r = try zkctl(["-s", relay.address, "--timeout", "2s", "import", input], timeout: 60)
        XCTAssertEqual(relay.droppedReplies, [FaultRelay.OpCode.multi.rawValue])
        XCTAssertEqual(r.status, 69, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        let lines = r.stderrText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, r.stderrText)
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("zkctl: ") }, r.stderrText)
        // The writes of the two answered transactions, out of every node and the ACL fix.
        let stopped = try XCTUnwrap(lines.first?.wholeMatch(of: /zkctl: import stopped after (\d+) of (\d+) writes; run the same import again to finish it/),
                                    r.stderrText)
        let answered = try XCTUnwrap(Int(stopped.1)), total = try XCTUnwrap(Int(stopped.2))
        XCTAssertGreaterThan(answered, 0)
        XCTAssertEqual(total, count + 1)
        XCTAssertTrue(lines.last?.contains("the write may or may not have been applied") ?? false, r.stderrText)

        // Part of the tree is there (at least what was answered), part is not.
        var plan = try jsonObject(try ok(["-o", "json", "import", input, "--dry-run"]).stdout)
        let toCreate = try XCTUnwrap(plan["created"] as? Int)
        let done = try XCTUnwrap(plan["skipped"] as? Int)
        // The guarded directory, if it was created, still has its temporary ACL: fixed, not a conflict.
        let fixed = try XCTUnwrap(plan["updated"] as? Int)
        XCTAssertGreaterThan(toCreate, 0)
        XCTAssertGreaterThanOrEqual(done, answered - fixed)
        XCTAssertLessThanOrEqual(fixed, 1)
        XCTAssertEqual(plan["conflicts"] as? Int, 0)
        XCTAssertEqual(toCreate + done + fixed, count)

        // Running it again finishes it, without duplicating or refusing anything.
        let again = try ok(["import", input])
        XCTAssertEqual(again.stderrText, "zkctl: imported \(input) into \(base): \(toCreate) created, \(fixed) updated, \(done) skipped, 0 removed\n")
        try assertSame("file:" + input, base)
        plan = try jsonObject(try ok(["-o", "json", "import", input, "--dry-run"]).stdout)
        XCTAssertEqual(plan["skipped"] as? Int, count)
    }

    /// With several transactions in flight, the answer to one of them is lost (`request`: the
    /// request itself) and the connection comes back at once: the import learns what landed,
    /// sends again what did not, in order, and finishes as without a loss.
    func importThroughALoss(request: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let digest = try digestID()
        let (text, count) = makeTree(root: base, dirs: 8, leaves: 1000, valueSize: 800, digest: digest)
        let input = try write(text, to: "large.json")
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        if request {
            relay.dropNextRequest(to: [.multi], skipping: 1, then: .pass)
        } else {
            relay.dropNextReply(to: [.multi], skipping: 1, then: .pass)
        }
        let r = try zkctl(["-s", relay.address, "--timeout", "5s", "import", input], timeout: 60)
        XCTAssertEqual(relay.droppedReplies, [FaultRelay.OpCode.multi.rawValue], file: file, line: line)
        XCTAssertEqual(r.status, 0, r.stderrText, file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", file: file, line: line)
        XCTAssertEqual(r.stderrText, "zkctl: imported \(input) into \(base): \(count) created, 0 updated, 0 skipped, 0 removed\n",
                       file: file, line: line)
        try assertSame("file:" + input, base, file: file, line: line)
    }

    func testImportWithAReplyLostAmongTransactionsInFlight() throws { try importThroughALoss(request: false) }
    func testImportWithARequestLostAmongTransactionsInFlight() throws { try importThroughALoss(request: true) }

    // MARK: ephemeral nodes

    func testEphemeralNodesAreLeftOut() throws {
        let digest = try digestID()
        let (text, count) = makeTree(root: base + "/app", dirs: 1, leaves: 3, digest: digest)
        try ok(["import", try write(text, to: "e.json")])

        // An ephemeral service instance, held by zkctl's own sidecar mode while `sleep` runs.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: zkctlBinaryPath())
        process.arguments = ["-s", server.connectString, "--services-root", base + "/app/services",
                             "service", "register", "web", "127.0.0.1", "8080", "--id", "web-1", "--ephemeral", "--", "sleep", "120"]
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        children.append(process)

        let file = path("with-ephemeral.json")
        let deadline = Date().addingTimeInterval(30)
        var r = try on(server, ["export", base + "/app", "-f", file])
        while Date() < deadline && !r.stderrText.contains("ephemeral") {
            Thread.sleep(forTimeInterval: 0.1)
            r = try on(server, ["export", base + "/app", "-f", file])
        }
        XCTAssertEqual(r.status, 0, r.stderrText)
        // The instance's parents (services, services/web) are persistent and exported; the instance is not.
        XCTAssertEqual(r.stderrText, "zkctl: exported \(count + 2) nodes from \(base)/app; left out 1 ephemeral node\n")
        let doc = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: file)))
        XCTAssertEqual(doc["skippedEphemeral"] as? Int, 1)
        let paths = (doc["nodes"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
        XCTAssertTrue(paths.contains("services/web"), "\(paths)")
        XCTAssertFalse(paths.contains("services/web/web-1"), "\(paths)")

        // diff leaves the live side's ephemeral node out too, and --prune never removes it.
        try assertSame(base + "/app", "file:" + file)
        r = try ok(["import", file, "--prune"])
        XCTAssertEqual(r.stderrText, "zkctl: imported \(file) into \(base)/app: 0 created, 0 updated, \(count + 2) skipped, 0 removed\n")
        r = try on(server, ["export", base + "/app"])
        XCTAssertTrue(r.stderrText.contains("left out 1 ephemeral node"), r.stderrText)

        process.terminate()
        process.waitUntilExit()
    }

    // MARK: zk-shell dumps

    func testZKShellDumpImports() throws {
        // The shape zk-shell's `cp zk://host/path json://!tmp!dump.json/path recursive` writes: a flat
        // object keyed by absolute path; content in base64 (or null); ACLs as
        // {"perms": bits, "id": {"scheme", "id"}}.
        func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
        let dump = """
        {
            "\(base)/legacy": {"content": "\(b64("top"))", "acls": [{"perms": 31, "id": {"scheme": "world", "id": "anyone"}}]},
            "\(base)/legacy/db": {"content": "\(b64("postgres://db:5432"))", "acls": [{"perms": 31, "id": {"scheme": "world", "id": "anyone"}}]},
            "\(base)/legacy/db/pool": {"content": "\(b64("{\"size\": 10}"))", "acls": [{"perms": 1, "id": {"scheme": "world", "id": "anyone"}}]},
            "\(base)/legacy/blob": {"content": "\(Data([0, 0xff, 0x10]).base64EncodedString())", "acls": []},
            "\(base)/legacy/empty": {"content": null, "acls": [{"perms": 31, "id": {"scheme": "world", "id": "anyone"}}]}
        }
        """
        let file = try write(dump, to: "zkshell.json")

        // To the paths in the dump.
        var r = try ok(["import", file])
        XCTAssertEqual(r.stderrText, "zkctl: imported \(file) into \(base)/legacy: 6 created, 0 updated, 0 skipped, 0 removed\n")
        try assertSame("file:" + file, base + "/legacy")

        // And elsewhere, checked through zkctl's own export of it.
        r = try ok(["import", file, "--to", base + "/moved"])
        XCTAssertEqual(r.stderrText, "zkctl: imported \(file) into \(base)/moved: 5 created, 0 updated, 0 skipped, 0 removed\n")
        let exported = path("moved.json")
        try ok(["export", base + "/moved", "-f", exported])
        let doc = try jsonObject(try Data(contentsOf: URL(fileURLWithPath: exported)))
        let nodes = Dictionary(uniqueKeysWithValues: (doc["nodes"] as? [[String: Any]] ?? []).map { ($0["path"] as! String, $0) })
        XCTAssertEqual(Set(nodes.keys), ["", "db", "db/pool", "blob", "empty"])
        XCTAssertEqual(nodes[""]?["data"] as? String, "top")
        XCTAssertEqual(nodes["db"]?["data"] as? String, "postgres://db:5432")
        XCTAssertEqual(nodes["db/pool"]?["data"] as? String, "{\"size\": 10}")
        XCTAssertEqual(nodes["db/pool"]?["acl"] as? [[String: String]], [["scheme": "world", "id": "anyone", "perms": "r"]])
        XCTAssertEqual(nodes["blob"]?["dataBase64"] as? String, Data([0, 0xff, 0x10]).base64EncodedString())
        XCTAssertEqual(nodes["blob"]?["acl"] as? [[String: String]], [["scheme": "world", "id": "anyone", "perms": "cdrwa"]])
        XCTAssertEqual(nodes["empty"]?["data"] as? String, "")
        try assertSame("file:" + file, "file:" + exported)
        try assertSame(base + "/legacy", base + "/moved")

        // A change shows in diff against the dump.
        try ok(["set", base + "/moved/db", "mysql://db:3306"])
        r = try on(server, ["diff", "file:" + file, base + "/moved"])
        XCTAssertEqual(r.status, 1, r.stderrText)
        XCTAssertEqual(r.stdoutText, "~ db (data)\n")
    }
}
