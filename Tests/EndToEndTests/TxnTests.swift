import Foundation
import XCTest
import ZKTestSupport

/// `zkctl txn`: one all-or-nothing multi from JSON lines, through the binary on a real server.
final class TxnTests: ToolkitTestCase {
    override var label: String { "txn" }

    func testAllOperationsApplyTogether() throws {
        try ok(["create", "\(base)/gone", "old"])
        try ok(["create", "\(base)/guard", "g"])
        let input = try jsonLines([
            ["op": "check", "path": "\(base)/guard", "version": 0],
            ["op": "create", "path": "\(base)/a", "data": "alpha"],
            ["op": "create", "path": "\(base)/q-", "sequential": true, "data": ["base64": Data([0, 1, 2]).base64EncodedString()]],
            ["op": "set", "path": "\(base)/a", "data": "beta"],
            ["op": "delete", "path": "\(base)/gone"],
        ])
        let out = try ok(["txn"], stdin: input)
        XCTAssertEqual(out, """
        checked \(base)/guard
        created \(base)/a
        created \(base)/q-0000000003
        set \(base)/a version 1
        deleted \(base)/gone

        """)
        XCTAssertEqual(try ok(["get", "\(base)/a"]), "beta")
        XCTAssertEqual(try connected(["get", "\(base)/q-0000000003"]).stdout, Data([0, 1, 2]))
        XCTAssertEqual(try connected(["exists", "\(base)/gone"]).status, 1)

        // From a file, with comments and blank lines, -o json.
        let file = try temporaryFile("# a comment\n\n{\"op\":\"set\",\"path\":\"\(base)/a\",\"data\":\"gamma\",\"version\":1}\n")
        let doc = try XCTUnwrap(try json(try ok(["-o", "json", "txn", file])) as? [[String: Any]])
        XCTAssertEqual(doc.count, 1)
        XCTAssertEqual(doc[0]["line"] as? Int, 3)
        XCTAssertEqual(doc[0]["op"] as? String, "set")
        XCTAssertEqual((doc[0]["stat"] as? [String: Any])?["version"] as? Int, 2)
    }

    func testFailingOperationAppliesNothingAndNamesItsLine() throws {
        try ok(["create", "\(base)/a", "one"])
        let input = try jsonLines([
            ["op": "create", "path": "\(base)/new", "data": "n"],
            ["op": "set", "path": "\(base)/a", "data": "two"],
            ["op": "check", "path": "\(base)/a", "version": 5],
        ])
        let line = try fails(["txn", "-"], 75, stdin: input)
        XCTAssertEqual(line, "zkctl: stdin line 3: check \(base)/a: version mismatch (changed by someone else); nothing was applied\n")
        XCTAssertEqual(try connected(["exists", "\(base)/new"]).status, 1)
        XCTAssertEqual(try ok(["get", "\(base)/a"]), "one")

        // A create of a node that exists, on line 2 of a file.
        let file = try temporaryFile("{\"op\":\"set\",\"path\":\"\(base)/a\",\"data\":\"three\"}\n{\"op\":\"create\",\"path\":\"\(base)/a\"}\n")
        XCTAssertEqual(try fails(["txn", file], 75), "zkctl: \(file) line 2: create \(base)/a: already exists; nothing was applied\n")
        XCTAssertEqual(try ok(["get", "\(base)/a"]), "one")
    }

    func testBadInputIsRefusedBeforeSending() throws {
        try ok(["create", "\(base)/a", "keep"])
        func refused(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let got = try fails(["txn"], 65, stdin: Data(text.utf8), file: file, line: line)
            XCTAssertEqual(got, "zkctl: stdin line \(expected)\n", file: file, line: line)
        }
        let set = "{\"op\":\"set\",\"path\":\"\(base)/a\",\"data\":\"changed\"}\n"
        try refused(set + "{\"op\":\"rename\",\"path\":\"\(base)/a\"}\n", "2: unknown op 'rename' (expected check, create, set or delete)")
        let broken = try fails(["txn"], 65, stdin: Data((set + "{\"op\":\"set\",\"path\":\"\(base)/a\"\n").utf8))
        XCTAssertTrue(broken.hasPrefix("zkctl: stdin line 2: invalid JSON at offset "), broken)
        try refused(set + "{\"op\":\"check\",\"path\":\"\(base)/a\"}\n", "2: check \(base)/a: missing \"version\"")
        try refused(set + "{\"op\":\"delete\",\"path\":\"\(base)/a\",\"version\":-1}\n", "2: delete \(base)/a: \"version\" must be a whole number from 0 to 2147483647")
        try refused(set + "{\"op\":\"set\",\"path\":\"\(base)/a\",\"dat\":\"x\"}\n", "2: set: unknown key \"dat\"")
        try refused(set + "[1]\n", "2: expected a JSON object, found an array")
        try refused(set + "{\"op\":\"create\",\"path\":\"relative\"}\n", "2: create relative: a path must start with '/'")
        try refused(set + "{\"op\":\"create\",\"path\":\"\(base)/b\",\"acl\":[\"world:anyone:xyz\"]}\n",
                    "2: create \(base)/b: bad ACL 'world:anyone:xyz': permissions must be letters of cdrwa")
        XCTAssertEqual(try fails(["txn"], 65, stdin: Data("\n# nothing\n".utf8)), "zkctl: stdin: no operations\n")
        XCTAssertEqual(try fails(["txn", "/nonexistent/ops.jsonl"], 66), "zkctl: cannot read '/nonexistent/ops.jsonl'\n")

        // Too large for one request: 65 before anything is sent.
        let big = String(repeating: "x", count: 600_000)
        let two = try jsonLines([["op": "set", "path": "\(base)/a", "data": big], ["op": "create", "path": "\(base)/b", "data": big]])
        let line = try fails(["txn"], 65, stdin: two)
        XCTAssertTrue(line.hasPrefix("zkctl: stdin: the transaction of 2 operations is about "), line)
        XCTAssertTrue(line.hasSuffix("over the server's limit of 1048575 bytes; nothing was sent\n"), line)
        XCTAssertEqual(try ok(["get", "\(base)/a"]), "keep")
        XCTAssertEqual(try connected(["exists", "\(base)/b"]).status, 1)
    }
}

/// `zkctl txn` whose answer is lost (issue 15's relay): settled by the client, never sent twice.
final class TxnLostReplyTests: ToolkitTestCase {
    override var label: String { "txn-lost" }

    func input() throws -> Data {
        try jsonLines([
            ["op": "create", "path": "\(base)/a", "data": "one"],
            ["op": "create", "path": "\(base)/q-", "sequential": true],
            ["op": "set", "path": base, "data": "parent"],
        ])
    }

    func testLostReplyIsSettledAndAppliedOnce() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        relay.dropNextReply(to: [.multi], then: .pass)
        let r = try runProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "3s", "txn"], environment: faultEnvironment(),
                               stdin: try input(), timeout: 60)
        XCTAssertEqual(relay.droppedReplies, [FaultRelay.OpCode.multi.rawValue], "the reply was not dropped")
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText, "created \(base)/a\ncreated \(base)/q-0000000001\nset \(base) version 1\n")
        // Applied once: one sequential node, the parent's version 1.
        XCTAssertEqual(try ok(["ls", base]), "a\nq-0000000001\n")
        XCTAssertEqual(try ok(["get", "\(base)/a"]), "one")
    }

    func testNeverBackIsAnUnknownOutcome() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        relay.dropNextReply(to: [.multi], then: .refuse)
        let started = Date()
        let r = try runProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "2s", "txn"], environment: faultEnvironment(),
                               stdin: try input(), timeout: 60)
        XCTAssertEqual(r.status, 69, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, r.stderrText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: txn (3 operations from stdin): "), r.stderrText)
        XCTAssertTrue(r.stderrText.contains("the write may or may not have been applied"), r.stderrText)
        XCTAssertTrue(r.stderrText.contains("check with 'zkctl get "), r.stderrText)
        XCTAssertLessThan(Date().timeIntervalSince(started), 6)
    }
}
