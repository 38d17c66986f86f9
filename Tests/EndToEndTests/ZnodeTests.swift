import Foundation
import XCTest
import ZKTestSupport

/// The znode commands (get, stat, exists, ls, set, create, delete, acl, digest) through the
/// built binary against a real server: what the user sees on stdout and stderr, and exit codes.
final class ZnodeTests: XCTestCase {
    var server: ZooKeeperServer!
    /// This test's own root on the shared server.
    var base = ""

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("znode")
        let r = try connected(["create", base])
        XCTAssertEqual(r.status, 0, r.stderrText)
    }

    override func tearDownWithError() throws {
        // Best effort: leave the shared server tidy (digest-protected nodes need the credential).
        _ = try? connected(["delete", "--recursive", "--force", base], env: ["ZKCTL_AUTH": "user:pass"])
    }

    /// Runs zkctl with a clean environment (no settings leak in from the machine).
    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(env) { $1 }
        return try runProcess(zkctlBinaryPath(), args, environment: environment, stdin: stdin, timeout: timeout)
    }

    func connected(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
        try zkctl(["-s", server.connectString] + args, env: env, stdin: stdin, timeout: timeout)
    }

    /// Runs a command that must succeed with nothing on stderr; returns stdout.
    @discardableResult
    func ok(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try connected(args, env: env, stdin: stdin)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText, "", "\(args)", file: file, line: line)
        return r.stdoutText
    }

    /// Runs a command that must fail with `status` and exactly one `zkctl: ` line on stderr.
    @discardableResult
    func fails(_ args: [String], _ status: Int32, env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try connected(args, env: env)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "\(args): \(r.stderrText)", file: file, line: line)
        return r.stderrText
    }

    func jsonObject(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text, file: file, line: line)
    }

    func jsonArray(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any], text, file: file, line: line)
    }

    func temporaryFile(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-znode-\(UUID().uuidString)").path
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    // MARK: get, stat, exists

    func testGetStatAndExists() throws {
        let p = "\(base)/greeting"
        XCTAssertEqual(try ok(["create", p, "hello world"]), "\(p)\n")
        XCTAssertEqual(try ok(["get", p]), "hello world")

        // get --stat: the data, then the stat lines with the JSON's field names.
        let withStat = try ok(["get", "--stat", p]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(withStat.first, "hello world")
        let names = withStat.dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
        XCTAssertEqual(names, ["czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion",
                               "ephemeralOwner", "dataLength", "numChildren"])

        // stat: aligned name/value lines.
        let stat = try ok(["stat", p])
        let lines = stat.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 11)
        XCTAssertTrue(lines.contains("dataLength      11"), stat)
        XCTAssertTrue(lines.contains("version         0"), stat)
        XCTAssertTrue(lines.contains("ephemeralOwner  0x0"), stat)
        let valueColumns = Set(lines.map { line in line.distance(from: line.startIndex, to: line.firstIndex(of: " ")!) + line.drop { $0 != " " }.prefix { $0 == " " }.count })
        XCTAssertEqual(valueColumns.count, 1, "values start in one column:\n\(stat)")

        // JSON: get with and without the stat, stat with the path.
        let doc = try jsonObject(try ok(["-o", "json", "get", p]))
        XCTAssertEqual(doc["path"] as? String, p)
        XCTAssertEqual(doc["data"] as? String, "hello world")
        XCTAssertNil(doc["stat"])
        let docStat = try jsonObject(try ok(["--json", "get", "--stat", p]))
        let s = try XCTUnwrap(docStat["stat"] as? [String: Any])
        XCTAssertEqual(s["dataLength"] as? Int, 11)
        XCTAssertEqual(s["version"] as? Int, 0)
        let statDoc = try jsonObject(try ok(["-o", "json", "stat", p]))
        XCTAssertEqual(statDoc["path"] as? String, p)
        XCTAssertEqual(Set(statDoc.keys), ["path", "stat"])
        let statObject = try XCTUnwrap(statDoc["stat"] as? [String: Any])
        XCTAssertEqual(statObject["numChildren"] as? Int, 0)
        XCTAssertEqual(statObject["ephemeralOwner"] as? String, "0x0")
        XCTAssertEqual(Set(statObject.keys), ["czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion",
                                              "aversion", "ephemeralOwner", "dataLength", "numChildren"])

        // An empty node prints an empty line.
        try ok(["create", "\(base)/empty"])
        XCTAssertEqual(try ok(["get", "\(base)/empty"]), "")

        // exists: exit code only, in both output modes.
        XCTAssertEqual(try ok(["exists", p]), "")
        for args in [["exists", "\(base)/missing"], ["-o", "json", "exists", "\(base)/missing"]] {
            let r = try connected(args)
            XCTAssertEqual(r.status, 1)
            XCTAssertEqual(r.stdoutText, "")
            XCTAssertEqual(r.stderrText, "")
        }
        XCTAssertEqual(try ok(["-o", "json", "exists", p]), "")
    }

    func testMissingNodesAreExitOneNamingThePath() throws {
        let missing = "\(base)/nothing"
        for args in [["get", missing], ["stat", missing], ["ls", missing], ["set", missing, "x"], ["delete", missing],
                     ["delete", "--recursive", missing], ["acl", "get", missing], ["acl", "set", missing, "world:anyone:r"],
                     ["-o", "json", "get", missing]] {
            XCTAssertEqual(try fails(args, 1), "zkctl: \(missing): no such znode\n", "\(args)")
        }
        // A missing parent: create says which node is missing and how to get it made.
        XCTAssertEqual(try fails(["create", "\(missing)/child"], 1), "zkctl: \(missing): no such znode (use --parents to create it)\n")
    }

    func testBadPathsAreUsageErrors() throws {
        for command in [["get"], ["stat"], ["exists"], ["ls"], ["set"], ["create"], ["delete"], ["acl", "get"]] {
            for bad in ["a/b", "/a//b", "/a//"] {
                var args = command + [bad]
                if command == ["set"] { args.append("v") }
                let message = try fails(args, 64)
                XCTAssertTrue(message.hasPrefix("zkctl: bad PATH '\(bad)': "), message)
                XCTAssertTrue(message.hasSuffix("; see 'zkctl \(command.joined(separator: " ")) --help'\n"), message)
            }
        }
    }

    // MARK: ls

    func testLsSortedPlainStatAndJSON() throws {
        for name in ["b", "a", "c"] { try ok(["create", "\(base)/\(name)", name == "a" ? "12345" : ""]) }
        try ok(["create", "\(base)/a/x"])
        XCTAssertEqual(try ok(["ls", base]), "a\nb\nc\n")
        XCTAssertEqual(try jsonArray(try ok(["-o", "json", "ls", base])) as? [String], ["a", "b", "c"])
        XCTAssertEqual(try jsonArray(try ok(["-o", "json", "ls", "\(base)/b"])).count, 0)
        XCTAssertEqual(try ok(["ls", "\(base)/b"]), "")

        let table = try ok(["ls", "--stat", base]).split(separator: "\n").map(String.init)
        XCTAssertEqual(table.count, 4)
        XCTAssertTrue(table[0].hasPrefix("NAME"), table[0])
        XCTAssertEqual(table[1].split(separator: " ").prefix(5).map(String.init), ["a", "0", "5", "1", "no"])
        XCTAssertEqual(table[2].split(separator: " ").first, "b")

        let rows = try XCTUnwrap(try jsonArray(try ok(["-o", "json", "ls", "--stat", base])) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["name"] as? String }, ["a", "b", "c"])
        XCTAssertEqual(rows.map { $0["path"] as? String }, ["\(base)/a", "\(base)/b", "\(base)/c"])
        XCTAssertEqual((rows[0]["stat"] as? [String: Any])?["numChildren"] as? Int, 1)
        XCTAssertEqual((rows[0]["stat"] as? [String: Any])?["dataLength"] as? Int, 5)
    }

    /// 20,000 children with 60-character names: the list of names alone is over 1.2 MB, more
    /// than the server accepts in a request (which the client must still read as a response).
    func testLsOfADirectoryLargerThanOneMegabyte() throws {
        let dir = "\(base)/wide"
        let names = (0..<20_000).map { i in "child-" + String(format: "%06d", i) + String(repeating: "x", count: 48) }
        XCTAssertEqual(names[0].count, 60)
        try makeChildren(of: dir, names: names)
        let listing = try ok(["ls", dir])
        XCTAssertGreaterThan(listing.utf8.count, 1 << 20)
        XCTAssertEqual(listing, names.map { $0 + "\n" }.joined())
        XCTAssertEqual(try jsonArray(try ok(["-o", "json", "ls", dir])) as? [String], names)
        XCTAssertEqual((try jsonObject(try ok(["-o", "json", "stat", dir]))["stat"] as? [String: Any])?["numChildren"] as? Int, 20_000)
        // Cleaning up is a recursive delete of a wide level, in several multi batches.
        XCTAssertEqual(try jsonObject(try ok(["-o", "json", "delete", "--recursive", "--force", dir]))["deleted"] as? Int, 20_001)
    }

    // MARK: JSON shapes

    /// One stat object, the same wherever a node carries one: stat, get --stat, ls --stat and
    /// tree --stat give the same keys and values for the same node, nested under "stat"; the text
    /// of stat uses those keys; times are ms since the epoch in JSON and ISO 8601 in text.
    func testEveryOutputGivesTheSameStatObject() throws {
        let dir = "\(base)/shapes"
        let p = "\(dir)/node"
        let before = Int(Date().timeIntervalSince1970 * 1000) - 1000
        try ok(["create", "--parents", p, "abc"])
        try ok(["create", "\(p)/child"])
        try ok(["set", p, "abcd"])
        let after = Int(Date().timeIntervalSince1970 * 1000) + 1000

        let statDoc = try jsonObject(try ok(["-o", "json", "stat", p]))
        XCTAssertEqual(Set(statDoc.keys), ["path", "stat"])
        let stat = try XCTUnwrap(statDoc["stat"] as? [String: Any])
        let keys = ["czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion",
                    "ephemeralOwner", "dataLength", "numChildren"]
        XCTAssertEqual(Set(stat.keys), Set(keys))
        XCTAssertEqual(stat["version"] as? Int, 1)
        XCTAssertEqual(stat["dataLength"] as? Int, 4)
        XCTAssertEqual(stat["numChildren"] as? Int, 1)
        let ctime = try XCTUnwrap(stat["ctime"] as? Int, "ctime is a number")
        let mtime = try XCTUnwrap(stat["mtime"] as? Int, "mtime is a number")
        XCTAssertTrue(before <= ctime && ctime <= mtime && mtime <= after, "\(before) \(ctime) \(mtime) \(after)")

        let get = try jsonObject(try ok(["-o", "json", "get", "--stat", p]))
        XCTAssertEqual(get["stat"] as? NSDictionary, stat as NSDictionary, "get --stat")

        let rows = try XCTUnwrap(try jsonArray(try ok(["-o", "json", "ls", "--stat", dir])) as? [[String: Any]])
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows.first?["stat"] as? NSDictionary, stat as NSDictionary, "ls --stat")

        let tree = try jsonObject(try ok(["-o", "json", "tree", "--stat", dir]))
        let treeNode = try XCTUnwrap((tree["children"] as? [[String: Any]])?.first)
        XCTAssertEqual(treeNode["path"] as? String, p)
        XCTAssertEqual(treeNode["stat"] as? NSDictionary, stat as NSDictionary, "tree --stat")
        XCTAssertEqual(Set(treeNode.keys), ["path", "name", "stat", "children"], "no stat fields flat on the node")
        XCTAssertEqual((tree["stat"] as? [String: Any])?["numChildren"] as? Int, 1)
        let streamed = try ok(["-o", "ndjson", "tree", "--stat", dir]).split(separator: "\n").map { try jsonObject(String($0)) }
        XCTAssertEqual(streamed.first { $0["path"] as? String == p }?["stat"] as? NSDictionary, stat as NSDictionary, "tree -o ndjson --stat")

        // The text names the same keys, in the same order, with times as ISO 8601 UTC.
        let text = try ok(["stat", p]).split(separator: "\n").map { $0.split(separator: " ", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) } }
        XCTAssertEqual(text.map { $0[0] }, keys)
        let values = Dictionary(uniqueKeysWithValues: text.map { ($0[0], $0[1]) })
        XCTAssertEqual(values["version"], "1")
        XCTAssertEqual(values["numChildren"], "1")
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        XCTAssertTrue(values["mtime"]?.hasSuffix("Z") ?? false, "\(values)")
        XCTAssertEqual(iso.date(from: values["mtime"] ?? "").map { Int(($0.timeIntervalSince1970 * 1000).rounded()) }, mtime)
        XCTAssertEqual(values["mzxid"], "0x" + String(try XCTUnwrap(stat["mzxid"] as? Int), radix: 16))
    }

    /// A node whose children --depth kept from being listed says so, instead of looking like a leaf.
    func testTreeDepthMarksTruncatedNodes() throws {
        let top = "\(base)/deep"
        try ok(["create", "--parents", "\(top)/a/b/c"])
        try ok(["create", "\(top)/a/b2"])
        try ok(["create", "\(top)/leaf"])

        func node(_ doc: [String: Any], _ name: String) throws -> [String: Any] {
            try XCTUnwrap((doc["children"] as? [[String: Any]])?.first { $0["name"] as? String == name }, "\(name) in \(doc)")
        }
        let one = try jsonObject(try ok(["-o", "json", "tree", top, "--depth", "1"]))
        XCTAssertNil(one["truncated"])
        let a = try node(one, "a")
        XCTAssertNil(a["children"], "a's children were not listed: \(a)")
        XCTAssertEqual(a["truncated"] as? Bool, true)
        XCTAssertEqual(a["numChildren"] as? Int, 2)
        let leaf = try node(one, "leaf")
        XCTAssertEqual((leaf["children"] as? [Any])?.count, 0, "a leaf at the limit is still a leaf: \(leaf)")
        XCTAssertNil(leaf["truncated"])

        let zero = try jsonObject(try ok(["-o", "json", "tree", top, "--depth", "0"]))
        XCTAssertNil(zero["children"])
        XCTAssertEqual(zero["truncated"] as? Bool, true)
        XCTAssertEqual(zero["numChildren"] as? Int, 2)

        // With --stat the count is also in the stat; without a limit nothing is truncated.
        let withStat = try node(try jsonObject(try ok(["-o", "json", "tree", top, "--depth", "1", "--stat"])), "a")
        XCTAssertEqual(withStat["truncated"] as? Bool, true)
        XCTAssertEqual((withStat["stat"] as? [String: Any])?["numChildren"] as? Int, 2)
        let full = try ok(["-o", "json", "tree", top])
        XCTAssertFalse(full.contains("truncated"), full)
        let b = try node(try node(try jsonObject(full), "a"), "b")
        XCTAssertEqual((b["children"] as? [[String: Any]])?.map { $0["name"] as? String }, ["c"])

        // ndjson marks the same nodes.
        let lines = try ok(["-o", "ndjson", "tree", top, "--depth", "1"]).split(separator: "\n").map { try jsonObject(String($0)) }
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(lines.filter { $0["truncated"] as? Bool == true }.map { $0["path"] as? String }, ["\(top)/a"])
        XCTAssertTrue(lines.allSatisfy { $0["children"] == nil })
    }

    // MARK: set

    func testSetWithVersionsFilesAndStdin() throws {
        let p = "\(base)/value"
        try ok(["create", p, "one"])
        XCTAssertEqual(try ok(["set", p, "two"]), "")
        XCTAssertEqual(try ok(["get", p]), "two")
        // --if-version: the current version works, another is a conflict and changes nothing.
        XCTAssertEqual(try ok(["set", p, "three", "--if-version", "1"]), "")
        XCTAssertEqual(try fails(["set", p, "four", "--if-version", "1"], 75), "zkctl: \(p): version mismatch (changed by someone else)\n")
        XCTAssertEqual(try ok(["get", p]), "three")
        // JSON: the new stat.
        let doc = try jsonObject(try ok(["-o", "json", "set", p, "json"]))
        XCTAssertEqual(doc["path"] as? String, p)
        XCTAssertEqual((doc["stat"] as? [String: Any])?["version"] as? Int, 3)
        // From a file and from stdin.
        let file = try temporaryFile(Data("from a file\n".utf8))
        try ok(["set", p, "--file", file])
        XCTAssertEqual(try ok(["get", p]), "from a file\n")
        try ok(["set", p, "--file", "-"], stdin: Data("from stdin".utf8))
        XCTAssertEqual(try ok(["get", p]), "from stdin")
        // An empty value is a value.
        try ok(["set", p, ""])
        XCTAssertEqual((try jsonObject(try ok(["-o", "json", "stat", p]))["stat"] as? [String: Any])?["dataLength"] as? Int, 0)
        // Mistakes: both or neither value source, an unreadable file, a bad version.
        XCTAssertEqual(try fails(["set", p, "x", "--file", file], 64),
                       "zkctl: give the value either as an argument or with --file, not both; see 'zkctl set --help'\n")
        XCTAssertEqual(try fails(["set", p], 64), "zkctl: missing VALUE (or --file FILE); see 'zkctl set --help'\n")
        XCTAssertEqual(try fails(["set", p, "--file", "/nonexistent/file"], 66), "zkctl: cannot read '/nonexistent/file'\n")
        XCTAssertEqual(try fails(["set", p, "x", "--if-version", "-3"], 64),
                       "zkctl: bad value '-3' for '--if-version': must be from 0 to 2147483647; see 'zkctl set --help'\n")
    }

    // MARK: binary data

    func testBinaryDataRoundTrip() throws {
        var bytes = Data((0...255).map { UInt8($0) })
        bytes.append(contentsOf: [0xff, 0xfe, 0x00, 0xc3])
        let file = try temporaryFile(bytes)
        let p = "\(base)/binary"
        XCTAssertEqual(try ok(["create", p, "--file", file]), "\(p)\n")

        // --base64 gives the exact bytes back.
        let text = try ok(["get", "--base64", p])
        XCTAssertEqual(Data(base64Encoded: text.trimmingCharacters(in: .newlines)), bytes)
        // JSON: {"base64": ...} for data that is not UTF-8.
        let doc = try jsonObject(try ok(["-o", "json", "get", p]))
        let data = try XCTUnwrap(doc["data"] as? [String: Any])
        XCTAssertEqual(Data(base64Encoded: try XCTUnwrap(data["base64"] as? String)), bytes)
        // To a pipe, get writes the bytes exactly (a terminal gets a description: OperatorDefectTests).
        XCTAssertEqual(try connected(["get", p]).stdout, bytes)
        // Through stdin, byte for byte, and back.
        try ok(["set", p, "--file", "-"], stdin: Data(bytes.reversed()))
        XCTAssertEqual(Data(base64Encoded: try ok(["get", "--base64", p]).trimmingCharacters(in: .newlines)), Data(bytes.reversed()))
        // UTF-8 text is a JSON string, and --base64 forces base64 in JSON too.
        try ok(["set", p, "grüße ✓"])
        XCTAssertEqual(try jsonObject(try ok(["-o", "json", "get", p]))["data"] as? String, "grüße ✓")
        let forced = try jsonObject(try ok(["-o", "json", "get", "--base64", p]))
        XCTAssertEqual((forced["data"] as? [String: Any])?["base64"] as? String, Data("grüße ✓".utf8).base64EncodedString())
    }

    // MARK: create

    func testCreateModesAndParents() throws {
        // Exists: 75.
        try ok(["create", "\(base)/once"])
        XCTAssertEqual(try fails(["create", "\(base)/once"], 75), "zkctl: \(base)/once: already exists\n")

        // Sequential: the path printed is the one created.
        try ok(["create", "\(base)/q"])
        let first = try ok(["create", "--sequential", "\(base)/q/job-", "payload"])
        let second = try ok(["-o", "json", "create", "--sequential", "\(base)/q/job-"])
        XCTAssertEqual(first, "\(base)/q/job-0000000000\n")
        XCTAssertEqual(try jsonObject(second)["path"] as? String, "\(base)/q/job-0000000001")
        XCTAssertEqual(try ok(["get", "\(base)/q/job-0000000000"]), "payload")

        // --parents creates the chain; without it the missing parent is exit 1.
        XCTAssertEqual(try ok(["create", "--parents", "\(base)/p/q/r", "leaf"]), "\(base)/p/q/r\n")
        XCTAssertEqual(try ok(["get", "\(base)/p/q/r"]), "leaf")
        XCTAssertEqual(try ok(["ls", "\(base)/p"]), "q\n")

        // Container: removed by the server once its last child goes (the test server checks every second).
        try ok(["create", "--container", "\(base)/box"])
        try ok(["create", "\(base)/box/item"])
        try ok(["delete", "\(base)/box/item"])
        XCTAssertTrue(try waitUntilGone("\(base)/box"), "the container was not removed")

        // TTL: removed when unchanged and childless for that long.
        try ok(["create", "--ttl", "500ms", "\(base)/ephemeral-ish", "x"])
        XCTAssertTrue(try waitUntilGone("\(base)/ephemeral-ish"), "the TTL node was not removed")
        // The sequence number counts the parent's child changes: a fresh parent starts at 0.
        try ok(["create", "\(base)/ttl-queue"])
        let ttlSeq = try ok(["create", "--ttl", "1h", "--sequential", "\(base)/ttl-queue/t-"])
        XCTAssertEqual(ttlSeq, "\(base)/ttl-queue/t-0000000000\n")
        XCTAssertEqual(try ok(["exists", "\(base)/ttl-queue/t-0000000000"]), "")

        // Combinations that make no sense are usage errors, and nothing is created.
        XCTAssertEqual(try fails(["create", "--container", "--ttl", "1m", "\(base)/bad"], 64),
                       "zkctl: --container and --ttl cannot be combined; see 'zkctl create --help'\n")
        XCTAssertEqual(try fails(["create", "--container", "--sequential", "\(base)/bad"], 64),
                       "zkctl: --container and --sequential cannot be combined; see 'zkctl create --help'\n")
        XCTAssertEqual(try fails(["create", "--ttl", "0s", "\(base)/bad"], 64), "zkctl: --ttl must be longer than 0; see 'zkctl create --help'\n")
        XCTAssertEqual(try fails(["create", "--acl", "world:nobody:r", "\(base)/bad"], 64),
                       "zkctl: bad ACL 'world:nobody:r': the world scheme's only id is 'anyone'; see 'zkctl create --help'\n")
        XCTAssertEqual(try fails(["create", "--acl", "auth::cdrwa", "\(base)/bad"], 64),
                       "zkctl: an auth:: ACL entry needs credentials (ZKCTL_AUTH or --auth-file); see 'zkctl create --help'\n")
        XCTAssertEqual(try fails(["create", "\(base)/bad", "v", "--file", "/etc/hostname"], 64),
                       "zkctl: give the value either as an argument or with --file, not both; see 'zkctl create --help'\n")
        XCTAssertEqual(try fails(["create", "--ephemeral", "\(base)/bad"], 64),
                       "zkctl: --ephemeral is offered only inside 'zkctl shell': the node would vanish as soon as this command's session ended; see 'zkctl create --help'\n")
        XCTAssertEqual(try connected(["exists", "\(base)/bad"]).status, 1)
    }

    func waitUntilGone(_ path: String) throws -> Bool {
        for _ in 0..<40 {
            if try connected(["exists", path]).status == 1 { return true }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return false
    }

    // MARK: delete

    func testDeleteVersionsChildrenAndProtectedPaths() throws {
        let p = "\(base)/victim"
        try ok(["create", p, "v0"])
        try ok(["set", p, "v1"])
        XCTAssertEqual(try fails(["delete", p, "--if-version", "0"], 75), "zkctl: \(p): version mismatch (changed by someone else)\n")
        XCTAssertEqual(try ok(["delete", p, "--if-version", "1"]), "")
        XCTAssertEqual(try connected(["exists", p]).status, 1)

        try ok(["create", "--parents", "\(p)/child/grandchild"])
        XCTAssertEqual(try fails(["delete", p], 75), "zkctl: \(p): has children (use --recursive to delete the subtree)\n")
        // A recursive delete with a wrong version deletes nothing.
        XCTAssertEqual(try fails(["delete", "--recursive", p, "--if-version", "7"], 75), "zkctl: \(p): version mismatch (changed by someone else)\n")
        XCTAssertEqual(try ok(["exists", "\(p)/child/grandchild"]), "")
        let doc = try jsonObject(try ok(["-o", "json", "delete", "-r", p, "--if-version", "0"]))
        XCTAssertEqual(doc["path"] as? String, p)
        XCTAssertEqual(doc["deleted"] as? Int, 3)
        XCTAssertEqual(try connected(["exists", p]).status, 1)

        for protected in ["/", "/zookeeper", "/zookeeper/quota"] {
            for args in [["delete", protected], ["delete", "--recursive", "--force", protected]] {
                let message = try fails(args, 64)
                XCTAssertTrue(message.hasPrefix("zkctl: refusing to delete '\(protected)'"), message)
            }
        }
        XCTAssertEqual(try ok(["exists", "/zookeeper/quota"]), "")
        XCTAssertEqual(try fails(["delete", "--force", "\(base)/x"], 64), "zkctl: --force only applies with --recursive; see 'zkctl delete --help'\n")
        // 'rm' is another name for delete.
        try ok(["create", "\(base)/gone"])
        XCTAssertEqual(try ok(["rm", "\(base)/gone"]), "")
        XCTAssertEqual(try connected(["exists", "\(base)/gone"]).status, 1)
    }

    /// 10,000 nodes three levels deep: refused without --force (saying how many), then deleted.
    func testRecursiveDeleteOfTenThousandNodes() throws {
        let root = "\(base)/big"
        var paths: [String] = []
        for a in 0..<10 {
            paths.append("\(root)/a\(a)")
            for b in 0..<10 {
                paths.append("\(root)/a\(a)/b\(b)")
                for c in 0..<99 { paths.append("\(root)/a\(a)/b\(b)/node-with-a-longer-name-\(c)") }
            }
        }
        XCTAssertEqual(paths.count + 1, 10_011)
        try makeTree(root: root, paths: paths)
        XCTAssertEqual((try jsonObject(try ok(["-o", "json", "stat", "\(root)/a3/b7"]))["stat"] as? [String: Any])?["numChildren"] as? Int, 99)

        XCTAssertEqual(try fails(["delete", "--recursive", root], 64),
                       "zkctl: \(root) holds 10011 znodes (more than 1000); add --force to delete them all; see 'zkctl delete --help'\n")
        XCTAssertEqual(try ok(["exists", "\(root)/a9/b9/node-with-a-longer-name-98"]), "")

        let doc = try jsonObject(try ok(["-o", "json", "delete", "--recursive", "--force", root]))
        XCTAssertEqual(doc["deleted"] as? Int, 10_011)
        XCTAssertEqual(try connected(["exists", root]).status, 1)
        XCTAssertEqual(try ok(["ls", base]), "")
    }

    // MARK: ACLs and digest auth

    func testDigestPrintsTheKnownId() throws {
        XCTAssertEqual(try ok(["digest", "super:test"]), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")
        // From stdin, with or without '-', with the line ending removed; never on a server.
        XCTAssertEqual(try zkctl(["digest"], stdin: Data("super:test\n".utf8)).stdoutText, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")
        XCTAssertEqual(try zkctl(["digest", "-"], stdin: Data("super:test".utf8)).stdoutText, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")
        XCTAssertEqual(try zkctl(["-s", "127.0.0.1:1", "digest", "-"], stdin: Data("super:test\r\n".utf8)).stdoutText,
                       "super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n")
        let doc = try jsonObject(try zkctl(["-o", "json", "digest", "super:test"]).stdoutText)
        XCTAssertEqual(doc["user"] as? String, "super")
        XCTAssertEqual(doc["id"] as? String, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        XCTAssertEqual(doc["acl"] as? String, "digest:super:D/InIHSb7yEEbrWz8b9l71RjZJU=:cdrwa")
        XCTAssertFalse(try zkctl(["-o", "json", "digest", "super:test"]).stdoutText.contains("test\""), "no password in the output")
        // A password may hold colons; only the first one separates the user.
        XCTAssertTrue(try zkctl(["digest", "u:a:b"]).stdoutText.hasPrefix("u:"))

        let bad = try zkctl(["digest", "nocolon"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(bad.stderrText, "zkctl: expected user:password; see 'zkctl digest --help'\n")
        let empty = try zkctl(["digest"], stdin: Data())
        XCTAssertEqual(empty.status, 65)
        XCTAssertEqual(empty.stderrText, "zkctl: stdin: no user:password given\n")
        let twoLines = try zkctl(["digest"], stdin: Data("a:b\nc:d\n".utf8))
        XCTAssertEqual(twoLines.status, 65)
        XCTAssertEqual(twoLines.stderrText, "zkctl: stdin: expected one line user:password\n")
        // The help says the password can come from stdin.
        XCTAssertTrue(try zkctl(["digest", "--help"]).stdoutText.contains("read from stdin"))
    }

    func testDigestACLRoundTrip() throws {
        let id = try zkctl(["digest", "-"], stdin: Data("user:pass".utf8)).stdoutText.trimmingCharacters(in: .newlines)
        XCTAssertEqual(id, "user:smGaoVKd/cQkjm7b88GyorAUz20=")
        let p = "\(base)/secret"
        let auth = ["ZKCTL_AUTH": "user:pass"]
        XCTAssertEqual(try ok(["create", p, "s3cret", "--acl", "digest:\(id):cdrwa"], env: auth), "\(p)\n")

        // Without the credential: 77, naming the path.
        XCTAssertEqual(try fails(["get", p], 77), "zkctl: \(p): not authorized\n")
        XCTAssertEqual(try fails(["set", p, "x"], 77), "zkctl: \(p): not authorized\n")
        XCTAssertEqual(try fails(["acl", "get", p], 77), "zkctl: \(p): not authorized\n")
        // With the wrong one: also 77.
        XCTAssertEqual(try fails(["get", p], 77, env: ["ZKCTL_AUTH": "user:wrong"]), "zkctl: \(p): not authorized\n")
        // With it: works.
        XCTAssertEqual(try ok(["get", p], env: auth), "s3cret")
        XCTAssertEqual(try ok(["acl", "get", p], env: auth), "digest:\(id):cdrwa\n")
        let acl = try XCTUnwrap(try jsonArray(try ok(["-o", "json", "acl", "get", p], env: auth)) as? [[String: String]])
        XCTAssertEqual(acl, [["scheme": "digest", "id": id, "perms": "cdrwa"]])

        // Open it for reading to everyone, keeping admin for the user; auth:: means "me".
        XCTAssertEqual(try ok(["acl", "set", p, "world:anyone:r", "auth::cdrwa"], env: auth), "")
        XCTAssertEqual(try ok(["get", p]), "s3cret")
        XCTAssertEqual(try fails(["set", p, "x"], 77), "zkctl: \(p): not authorized\n")
        // Without admin rights the server hides digest hashes.
        XCTAssertEqual(try ok(["acl", "get", p]), "world:anyone:r\ndigest:user:x:cdrwa\n")
        XCTAssertEqual(try ok(["acl", "get", p], env: auth), "world:anyone:r\ndigest:\(id):cdrwa\n")
        // --if-version checks the ACL version (now 1).
        XCTAssertEqual(try fails(["acl", "set", p, "world:anyone:cdrwa", "--if-version", "0"], 75, env: auth),
                       "zkctl: \(p): version mismatch (changed by someone else)\n")
        try ok(["acl", "set", p, "world:anyone:cdrwa", "ip:127.0.0.1:r", "--if-version", "1"], env: auth)
        XCTAssertEqual(try ok(["acl", "get", p]), "world:anyone:cdrwa\nip:127.0.0.1:r\n")
        // Bad specs are usage errors naming the spec.
        XCTAssertEqual(try fails(["acl", "set", p, "world:anyone:rx"], 64),
                       "zkctl: bad ACL 'world:anyone:rx': permissions must be letters of cdrwa; see 'zkctl acl set --help'\n")
        XCTAssertEqual(try fails(["acl", "set", p, "digest:user:cdrwa"], 64),
                       "zkctl: bad ACL 'digest:user:cdrwa': a digest id is user:HASH (see 'zkctl digest'); see 'zkctl acl set --help'\n")
        XCTAssertEqual(try fails(["acl", "set", p], 64), "zkctl: missing argument SPEC for 'acl set'; see 'zkctl acl set --help'\n")
    }

    func testACLSetRecursive() throws {
        try ok(["create", "--parents", "\(base)/tree/a/b"])
        try ok(["create", "\(base)/tree/c"])
        let doc = try jsonObject(try ok(["-o", "json", "acl", "set", "--recursive", "\(base)/tree", "world:anyone:rca"]))
        XCTAssertEqual(doc["updated"] as? Int, 4)
        for node in ["tree", "tree/a", "tree/a/b", "tree/c"] {
            XCTAssertEqual(try ok(["acl", "get", "\(base)/\(node)"]), "world:anyone:cra\n", node)
        }
        XCTAssertEqual(try fails(["set", "\(base)/tree/a/b", "x"], 77), "zkctl: \(base)/tree/a/b: not authorized\n")
        // A version mismatch on the root changes nothing below it.
        XCTAssertEqual(try fails(["acl", "set", "-r", "\(base)/tree", "world:anyone:cdrwa", "--if-version", "0"], 75),
                       "zkctl: \(base)/tree: version mismatch (changed by someone else)\n")
        XCTAssertEqual(try ok(["acl", "get", "\(base)/tree/c"]), "world:anyone:cra\n")
        try ok(["acl", "set", "-r", "\(base)/tree", "world:anyone:cdrwa", "--if-version", "1"])
        XCTAssertEqual(try ok(["acl", "get", "\(base)/tree/a/b"]), "world:anyone:cdrwa\n")
    }

    // MARK: watch

    /// Starts `zkctl watch` in the background; it is killed when the test ends.
    func startWatch(_ args: [String], server: ZooKeeperServer? = nil, env: [String: String] = [:]) throws -> BackgroundProcess {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(env) { $1 }
        let run = try BackgroundProcess(zkctlBinaryPath(), ["-s", (server ?? self.server).connectString] + args, environment: environment)
        addTeardownBlock { run.kill() }
        return run
    }

    func testWatchANodeThroughItsLife() throws {
        let p = "\(base)/watched"
        let watch = try startWatch(["watch", p])
        // Not there yet: said on stderr, then waited for.
        XCTAssertTrue(watch.waitForStderr { $0.contains("does not exist yet") }, watch.stderr)
        XCTAssertEqual(watch.stderr, "zkctl: \(p) does not exist yet; waiting\n")
        try ok(["create", p, "one"])
        XCTAssertTrue(watch.waitForLines(1), watch.stdout)
        try ok(["set", p, "two\nlines"])
        XCTAssertTrue(watch.waitForLines(2), watch.stdout)
        try ok(["set", p, "two\nlines"])   // the same value again is still a change
        XCTAssertTrue(watch.waitForLines(3), watch.stdout)
        try ok(["create", "\(p)/child"])        // children are not followed without --children
        try ok(["delete", "\(p)/child"])
        try ok(["delete", p])
        XCTAssertTrue(watch.waitForLines(4), watch.stdout)
        try ok(["create", p, "back"])
        XCTAssertTrue(watch.waitForLines(5), watch.stdout)
        watch.signal(SIGINT)
        XCTAssertEqual(watch.waitForExit(seconds: 10), 130)
        XCTAssertEqual(watch.stdout, """
        created \(p) = one
        changed \(p) = two\\nlines
        changed \(p) = two\\nlines
        removed \(p)
        created \(p) = back

        """)

        // An existing node starts with 'initial'; JSON is one object per line.
        let json = try startWatch(["-o", "json", "watch", p])
        XCTAssertTrue(json.waitForLines(1), json.stdout)
        try ok(["set", p, "again"])
        XCTAssertTrue(json.waitForLines(2), json.stdout)
        try ok(["delete", p])
        XCTAssertTrue(json.waitForLines(3), json.stdout)
        json.signal(SIGINT)
        XCTAssertEqual(json.waitForExit(seconds: 10), 130)
        XCTAssertEqual(json.stderr, "")
        let events = try json.stdout.split(separator: "\n").map { try jsonObject(String($0)) }
        XCTAssertEqual(events.map { $0["event"] as? String }, ["initial", "changed", "removed"])
        XCTAssertEqual(events.map { $0["path"] as? String }, [p, p, p])
        XCTAssertEqual(events.map { $0["data"] as? String }, ["back", "again", nil])
        XCTAssertEqual((events[1]["stat"] as? [String: Any])?["version"] as? Int, 1)
        XCTAssertNil(events[2]["stat"])
    }

    func testWatchChildrenAndRecursive() throws {
        let p = "\(base)/parent"
        try ok(["create", p, "top"])
        try ok(["create", "\(p)/old", "o"])
        let children = try startWatch(["watch", "--children", p])
        let subtree = try startWatch(["watch", "--recursive", p])
        XCTAssertTrue(children.waitForLines(2), children.stdout)
        XCTAssertTrue(subtree.waitForLines(2), subtree.stdout)
        try ok(["create", "\(p)/new", "n"])
        XCTAssertTrue(children.waitForLines(3), children.stdout)
        XCTAssertTrue(subtree.waitForLines(3), subtree.stdout)
        try ok(["create", "\(p)/new/deep", "d"])   // below the children: only --recursive sees it
        XCTAssertTrue(subtree.waitForLines(4), subtree.stdout)
        try ok(["set", "\(p)/new/deep", "d2"])
        XCTAssertTrue(subtree.waitForLines(5), subtree.stdout)
        try ok(["set", "\(p)/old", "o2"])          // child data: only --recursive reports it
        XCTAssertTrue(subtree.waitForLines(6), subtree.stdout)
        try ok(["delete", "\(p)/old"])
        XCTAssertTrue(children.waitForLines(4), children.stdout)
        XCTAssertTrue(subtree.waitForLines(7), subtree.stdout)
        for run in [children, subtree] {
            run.signal(SIGINT)
            XCTAssertEqual(run.waitForExit(seconds: 10), 130)
            XCTAssertEqual(run.stderr, "")
        }
        XCTAssertEqual(children.stdout, """
        initial \(p) = top
        initial \(p)/old
        created \(p)/new
        removed \(p)/old

        """)
        XCTAssertEqual(subtree.stdout, """
        initial \(p) = top
        initial \(p)/old = o
        created \(p)/new = n
        created \(p)/new/deep = d
        changed \(p)/new/deep = d2
        changed \(p)/old = o2
        removed \(p)/old

        """)
    }

    /// The server goes away and comes back: the watch says so on stderr, keeps running, and
    /// reports what changed.
    func testWatchSurvivesAServerRestart() throws {
        let own = try ZooKeeperServer.standalone()
        defer { own.shutdown() }
        let p = "/watch-restart"
        XCTAssertEqual(try zkctl(["-s", own.connectString, "create", p, "before"]).status, 0)
        let watch = try startWatch(["--timeout", "30s", "watch", p], server: own)
        XCTAssertTrue(watch.waitForLines(1), watch.stdout)
        try own.stop(member: 1)
        XCTAssertTrue(watch.waitForStderr { $0.contains("connection lost") }, watch.stderr)
        try own.restart(member: 1)
        XCTAssertTrue(watch.waitForStderr { $0.contains("reconnected") || $0.contains("new session") }, watch.stderr)
        XCTAssertEqual(try zkctl(["-s", own.connectString, "set", p, "after"]).status, 0)
        XCTAssertTrue(watch.waitForLines(2, seconds: 30), watch.stdout + watch.stderr)
        watch.signal(SIGINT)
        XCTAssertEqual(watch.waitForExit(seconds: 10), 130)
        XCTAssertEqual(watch.stdout, "initial \(p) = before\nchanged \(p) = after\n")
        for line in watch.stderr.split(separator: "\n") { XCTAssertTrue(line.hasPrefix("zkctl: watch: "), String(line)) }
    }

    // MARK: help

    func testEveryZnodeCommandHasHelpWithExamples() throws {
        for command in [["get"], ["stat"], ["exists"], ["ls"], ["set"], ["create"], ["delete"], ["acl", "get"], ["acl", "set"], ["digest"], ["watch"]] {
            let r = try zkctl(command + ["--help"])
            XCTAssertEqual(r.status, 0, "\(command)")
            XCTAssertTrue(r.stdoutText.contains("Usage: zkctl \(command.joined(separator: " "))"), r.stdoutText)
            XCTAssertTrue(r.stdoutText.contains("Examples:"), "\(command)")
        }
    }

    // MARK: building large trees

    /// Creates `names` as children of `dir` (created too).
    func makeChildren(of dir: String, names: [String]) throws {
        try makeTree(root: dir, paths: names.map { "\(dir)/\($0)" })
    }

    /// Creates `root` and every path of `paths` (parents listed before their children).
    ///
    /// Tens of thousands of nodes cannot be made with one zkctl process per node in reasonable
    /// time, and the end-to-end target has no ZooKeeper client of its own. The ZooKeeper
    /// installation that runs the test server has one, though: its shell (ZooKeeperMain) reads
    /// commands from stdin, so one JVM creates them all (about 10 s for 20,000 nodes). It uses
    /// the same java and class path as scripts/zkserver, so it needs nothing the server does not.
    func makeTree(root: String, paths: [String]) throws {
        let environment = ProcessInfo.processInfo.environment
        var java = "java"
        if let explicit = environment["ZKSERVER_JAVA"], !explicit.isEmpty {
            java = explicit
        } else if let home = environment["JAVA_HOME"], FileManager.default.isExecutableFile(atPath: "\(home)/bin/java") {
            java = "\(home)/bin/java"
        }
        let classPath = environment["ZKSERVER_CLASSPATH"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
        let script = ([root] + paths).map { "create \($0)\n" }.joined()
        let r = try runProcess(java, ["-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp", classPath,
                                      "org.apache.zookeeper.ZooKeeperMain", "-server", server.connectString],
                               stdin: Data(script.utf8), timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderrText)
        // Prove it: every node is there.
        let top = try jsonObject(try ok(["-o", "json", "stat", root]))
        XCTAssertEqual((top["stat"] as? [String: Any])?["numChildren"] as? Int, Set(paths.filter { PathParent.of($0) == root }).count)
    }
}

enum PathParent {
    static func of(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}

