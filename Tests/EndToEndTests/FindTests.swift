import Foundation
import XCTest
import ZKTestSupport

/// `zkctl find` and `zkctl du` through the binary on a real server.
final class FindTests: ToolkitTestCase {
    override var label: String { "find" }

    /// base/app/config ("password=1"), base/app/big (2000 bytes), base/bin (not UTF-8),
    /// base/q with three children, made in one txn.
    func makeTree() throws {
        var ops: [[String: Any]] = [
            ["op": "create", "path": "\(base)/app"],
            ["op": "create", "path": "\(base)/app/config", "data": "password=1"],
            ["op": "create", "path": "\(base)/app/big", "data": String(repeating: "b", count: 2000)],
            ["op": "create", "path": "\(base)/bin", "data": ["base64": Data([0xff, 0xfe, 0x70, 0x61, 0x73, 0x73]).base64EncodedString()]],
            ["op": "create", "path": "\(base)/q"],
        ]
        for i in 1...3 { ops.append(["op": "create", "path": "\(base)/q/job-\(i)", "data": "j"]) }
        try ok(["txn"], stdin: try jsonLines(ops))
    }

    func lines(_ paths: [String]) -> String { paths.map { $0 + "\n" }.joined() }

    func testFiltersAndOutput() throws {
        try makeTree()
        let b = base
        // Walk order: a level's nodes before the next's, sorted by parent and name.
        let all = [b, "\(b)/app", "\(b)/bin", "\(b)/q", "\(b)/app/big", "\(b)/app/config", "\(b)/q/job-1", "\(b)/q/job-2", "\(b)/q/job-3"]
        XCTAssertEqual(try ok(["find", b]), lines(all))
        XCTAssertEqual(try ok(["find", b, "--persistent", "--newer-than", "1h"]), lines(all))
        XCTAssertEqual(try ok(["find", b, "--depth", "1"]), lines(Array(all.prefix(4))))
        XCTAssertEqual(try ok(["find", b, "--name", "job-[12]"]), lines(["\(b)/q/job-1", "\(b)/q/job-2"]))
        XCTAssertEqual(try ok(["find", b, "--regex", "app/b.g$"]), lines(["\(b)/app/big"]))
        // Data is matched as UTF-8 text only: the binary node holding "pass" does not match.
        XCTAssertEqual(try ok(["find", b, "--data", "pass"]), lines(["\(b)/app/config"]))
        XCTAssertEqual(try ok(["find", b, "--min-bytes", "1000"]), lines(["\(b)/app/big"]))
        XCTAssertEqual(try ok(["find", b, "--min-children", "3"]), lines([b, "\(b)/q"]))
        XCTAssertEqual(try ok(["find", b, "--min-children", "1", "--depth", "1", "-0"]), "\(b)\0\(b)/app\0\(b)/q\0")

        // -o json: each match with its stat.
        let doc = try XCTUnwrap(try json(try ok(["-o", "json", "find", b, "--min-bytes", "10"])) as? [[String: Any]])
        XCTAssertEqual(doc.map { $0["path"] as? String }, ["\(b)/app/big", "\(b)/app/config"])
        XCTAssertEqual((doc[0]["stat"] as? [String: Any])?["dataLength"] as? Int, 2000)
        let ndjson = try ok(["-o", "ndjson", "find", b, "--name", "job-*"]).split(separator: "\n")
        XCTAssertEqual(ndjson.count, 3)

        // Nothing matched: exit 1, nothing printed (JSON: an empty array).
        let none = try connected(["find", b, "--older-than", "1h"])
        XCTAssertEqual(none.status, 1)
        XCTAssertEqual(none.stdoutText, "")
        XCTAssertEqual(none.stderrText, "")
        let noneJSON = try connected(["-o", "json", "find", b, "--ephemeral"])
        XCTAssertEqual(noneJSON.status, 1)
        XCTAssertEqual(noneJSON.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "[]")
    }

    func testBadInput() throws {
        try makeTree()
        XCTAssertEqual(try fails(["find", base, "--regex", "(unclosed"], 64),
                       "zkctl: --regex '(unclosed' is not a valid regular expression; see 'zkctl find --help'\n")
        XCTAssertEqual(try fails(["find", base, "--data", "["], 64),
                       "zkctl: --data '[' is not a valid regular expression; see 'zkctl find --help'\n")
        XCTAssertEqual(try fails(["find", base, "--min-bytes", "-5"], 64),
                       "zkctl: bad value '-5' for '--min-bytes': must be from 0 to 2147483647; see 'zkctl find --help'\n")
        XCTAssertEqual(try fails(["du", base, "--top", "-1"], 64),
                       "zkctl: bad value '-1' for '--top': must be from 1 to 1000000; see 'zkctl du --help'\n")
        XCTAssertEqual(try fails(["find", base, "--owner", "nobody"], 64),
                       "zkctl: --owner 'nobody' is not a session id (0x... or a decimal number); see 'zkctl find --help'\n")
        XCTAssertEqual(try fails(["find", base, "--ephemeral", "--persistent"], 64),
                       "zkctl: give --ephemeral or --persistent, not both; see 'zkctl find --help'\n")
        XCTAssertEqual(try fails(["find", "\(base)/missing"], 1), "zkctl: \(base)/missing: no such znode\n")
        XCTAssertEqual(try fails(["du", "\(base)/missing"], 1), "zkctl: \(base)/missing: no such znode\n")
        // The tree is as it was.
        XCTAssertEqual(try ok(["find", base]).split(separator: "\n").count, 9)
    }

    func testEphemeralAndOwner() throws {
        let env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": FileManager.default.temporaryDirectory.path]
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "--locks-root", base, "lock", "held", "--", "sleep", "60"],
                                           environment: env)
        defer { holder.kill() }
        var found = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let r = try connected(["find", base, "--ephemeral"])
            if r.status == 0 { found = r.stdoutText; break }
            XCTAssertEqual(r.status, 1, r.stderrText)
            Thread.sleep(forTimeInterval: 0.1)
        }
        let node = found.trimmingCharacters(in: .newlines)
        XCTAssertTrue(node.hasPrefix("\(base)/held/"), found)
        XCTAssertFalse(node.contains("\n"), found)
        let stat = try XCTUnwrap(try json(try ok(["-o", "json", "stat", node])) as? [String: Any])
        let owner = try XCTUnwrap((stat["stat"] as? [String: Any])?["ephemeralOwner"] as? String)
        XCTAssertEqual(try ok(["find", base, "--owner", owner]), found)
        XCTAssertEqual(try connected(["find", base, "--owner", "0x1"]).status, 1)
        XCTAssertEqual(try ok(["find", base, "--persistent"]), "\(base)\n\(base)/held\n")
    }

    func testDu() throws {
        try makeTree()
        let b = base
        // Depth 1 (default): the root and its children, biggest first.
        let table = try ok(["du", b]).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(table.first, ["BYTES", "NODES", "LARGEST", "PATH"])
        XCTAssertEqual(Array(table.dropFirst()), [
            ["2019", "9", "2000", "\(b)/app/big", b],
            ["2010", "3", "2000", "\(b)/app/big", "\(b)/app"],
            ["6", "1", "6", "\(b)/bin", "\(b)/bin"],
            ["3", "4", "1", "\(b)/q/job-1", "\(b)/q"],
        ])
        let doc = try XCTUnwrap(try json(try ok(["-o", "json", "du", b, "--depth", "2", "--top", "3"])) as? [[String: Any]])
        XCTAssertEqual(doc.map { $0["path"] as? String }, [b, "\(b)/app", "\(b)/app/big"])
        XCTAssertEqual(doc[2]["nodes"] as? Int, 1)
        XCTAssertEqual(doc[2]["bytes"] as? Int, 2000)
        XCTAssertEqual(doc[2]["depth"] as? Int, 2)
        XCTAssertEqual((doc[1]["largest"] as? [String: Any])?["path"] as? String, "\(b)/app/big")
        // --depth 0: one row for the whole subtree.
        let whole = try XCTUnwrap(try json(try ok(["-o", "json", "du", b, "--depth", "0"])) as? [[String: Any]])
        XCTAssertEqual(whole.count, 1)
        XCTAssertEqual(whole[0]["nodes"] as? Int, 9)
    }
}
