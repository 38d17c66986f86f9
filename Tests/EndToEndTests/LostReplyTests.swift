import Foundation
import XCTest
import ZKTestSupport

/// Every write command through a relay that lets its write reach the server, drops the server's
/// reply and resets the connection (issue 15, "resolved outcomes"). When the client can
/// reconnect (the same session, through the relay), the command must learn that its write
/// landed and exit 0, with the data as written, exactly one node for a create, and stdout as on
/// a normal run. When the relay refuses every later connection, the outcome cannot be learned:
/// exit 69 within the timeout, with one line saying the outcome is unknown and what to check.
final class LostReplyTests: XCTestCase {
    var server: ZooKeeperServer!
    var base = ""
    var scratch: URL!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath("lost")
        scratch = try ZKTestPaths.makeTemporaryDirectory(label: "lost-reply")
        try direct(["create", base])
    }

    override func tearDownWithError() throws {
        _ = try? runProcess(zkctlBinaryPath(), ["-s", server.connectString, "delete", "--recursive", "--force", base],
                            environment: faultEnvironment())
        try? FileManager.default.removeItem(at: scratch)
    }

    // MARK: Helpers

    /// A command straight to the server (no relay) that must succeed.
    @discardableResult
    func direct(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try runProcess(zkctlBinaryPath(), ["-s", server.connectString] + args, environment: faultEnvironment(), timeout: 60)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        return r
    }

    /// The data of `path`, read straight from the server, or nil when it does not exist.
    func data(_ path: String) throws -> String? {
        let r = try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "get", path], environment: faultEnvironment())
        return r.status == 0 ? r.stdoutText : nil
    }

    func children(_ path: String) throws -> [String] {
        try direct(["ls", path]).stdoutText.split(separator: "\n").map(String.init)
    }

    func nodeVersion(_ path: String) throws -> Int? {
        let json = try direct(["-o", "json", "stat", path]).stdout
        let object = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        return (object?["stat"] as? [String: Any])?["version"] as? Int
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = scratch.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// One write command and how to tell that it did what it says.
    struct Case {
        var opcode: FaultRelay.OpCode
        /// Requests of that opcode to let through before the one whose reply is lost.
        var skipping = 0
        /// The command line (without -s and --timeout).
        var args: [String]
        /// stdout of a normal run, or nil when `stdoutMatches` decides.
        var stdout: String? = ""
        var stdoutMatches: ((String) -> Bool)? = nil
        /// What `zkctl ... check with '...'` should name in the unknown-outcome message.
        var check: String
        /// Nil when the server holds what the command wrote; else what is wrong.
        var landed: () throws -> String?
    }

    /// Runs `c` with the reply to its write lost and the relay passing again at once: exit 0,
    /// the normal stdout, and the write landed once. Returns the result.
    @discardableResult
    func lostReply(_ c: Case, file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        relay.dropNextReply(to: [c.opcode], skipping: c.skipping, then: .pass)
        let started = Date()
        let r = try runProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "3s"] + c.args,
                               environment: faultEnvironment(), timeout: 60)
        let took = Date().timeIntervalSince(started)
        let problem = try c.landed()
        report("pass", c, r, took: took, landed: problem)
        XCTAssertEqual(relay.droppedReplies, [c.opcode.rawValue], "\(c.args): the reply was not dropped: the test does not test it",
                       file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertNil(problem, "\(c.args)", file: file, line: line)
        if let expected = c.stdout { XCTAssertEqual(r.stdoutText, expected, "\(c.args)", file: file, line: line) }
        if let matches = c.stdoutMatches { XCTAssertTrue(matches(r.stdoutText), "\(c.args): stdout \(r.stdoutText)", file: file, line: line) }
        XCTAssertLessThan(took, 10, "\(c.args)", file: file, line: line)
        return r
    }

    /// Runs `c` with its request dropped before the server (the client sees the same connection
    /// loss): the write did not land, so it is sent again once, and it lands once.
    func lostRequest(_ c: Case, file: StaticString = #filePath, line: UInt = #line) throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        relay.dropNextRequest(to: [c.opcode], then: .pass)
        let started = Date()
        let r = try runProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "3s"] + c.args,
                               environment: faultEnvironment(), timeout: 60)
        let took = Date().timeIntervalSince(started)
        let problem = try c.landed()
        report("request lost", c, r, took: took, landed: problem)
        XCTAssertEqual(relay.droppedReplies, [c.opcode.rawValue], "\(c.args): the request was not dropped", file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertNil(problem, "\(c.args)", file: file, line: line)
        if let expected = c.stdout { XCTAssertEqual(r.stdoutText, expected, "\(c.args)", file: file, line: line) }
        if let matches = c.stdoutMatches { XCTAssertTrue(matches(r.stdoutText), "\(c.args): stdout \(r.stdoutText)", file: file, line: line) }
    }

    /// Runs `c` through a relay that drops the reply and then refuses every connection: exit 69
    /// within the timeout, one line saying the outcome is unknown and what to check.
    func neverBack(_ c: Case, file: StaticString = #filePath, line: UInt = #line) throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        relay.dropNextReply(to: [c.opcode], skipping: c.skipping, then: .refuse)
        let started = Date()
        let r = try runProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "2s"] + c.args,
                               environment: faultEnvironment(), timeout: 60)
        let took = Date().timeIntervalSince(started)
        report("refuse", c, r, took: took, landed: try c.landed())
        XCTAssertEqual(relay.droppedReplies, [c.opcode.rawValue], "\(c.args): the reply was not dropped", file: file, line: line)
        XCTAssertEqual(r.status, 69, "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(c.args)", file: file, line: line)
        let lines = r.stderrText.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), r.stderrText, file: file, line: line)
        XCTAssertTrue(r.stderrText.contains("the write may or may not have been applied"), "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertTrue(r.stderrText.contains("did not come back within 2000 ms"), "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertTrue(r.stderrText.contains("check with '\(c.check)'"), "\(c.args): \(r.stderrText)", file: file, line: line)
        XCTAssertLessThan(took, 6, "\(c.args): 69 must come within the timeout (2 s) and a little", file: file, line: line)
    }

    /// One line per run for the closing note's table (grep LOSTREPLY in the test log).
    func report(_ relay: String, _ c: Case, _ r: ProcessResult, took: TimeInterval, landed: String?) {
        let args = c.args.map { $0.replacingOccurrences(of: base, with: "B") }.joined(separator: " ")
        let err = r.stderrText.replacingOccurrences(of: base, with: "B").replacingOccurrences(of: "\n", with: " / ")
        let test = String(name.split(separator: " ").last ?? Substring(name)).trimmingCharacters(in: CharacterSet(charactersIn: "[]-"))
        print("LOSTREPLY | \(relay) | \(test) | \(args) | \(r.status) | \(err) | \(landed.map { "no: \($0)" } ?? "yes") | \(String(format: "%.1f", took)) s")
    }

    // MARK: Cases

    func createCase() -> Case {
        let path = base + "/a"
        return Case(opcode: .create2, args: ["create", path, "v1"], stdout: path + "\n", check: "zkctl get \(path)") { [self] in
            try data(path) == "v1" ? nil : "data \(String(describing: try data(path)))"
        }
    }

    func sequentialCase() -> Case {
        let parent = base + "/q"
        return Case(opcode: .create2, args: ["create", "--sequential", parent + "/job-", "payload"], stdout: nil,
                    stdoutMatches: { out in out.hasPrefix(parent + "/job-") && out.hasSuffix("\n") && out.count == parent.count + 16 },
                    check: "zkctl ls \(parent)") { [self] in
            let names = try children(parent)
            guard names.count == 1 else { return "\(names.count) nodes: \(names)" }
            return try data(parent + "/" + names[0]) == "payload" ? nil : "wrong data"
        }
    }

    func parentsCase() -> Case {
        let path = base + "/p/a/b"
        // create2 of p/a/b (no parent yet), then the chain p, p/a, then p/a/b again: the fourth.
        return Case(opcode: .create2, skipping: 3, args: ["create", "--parents", path, "deep"], stdout: path + "\n",
                    check: "zkctl get \(path)") { [self] in
            try data(path) == "deep" ? nil : "data \(String(describing: try data(path)))"
        }
    }

    func containerCase() -> Case {
        let path = base + "/c"
        return Case(opcode: .createContainer, args: ["create", "--container", path, "box"], stdout: path + "\n",
                    check: "zkctl get \(path)") { [self] in
            try data(path) == "box" ? nil : "data \(String(describing: try data(path)))"
        }
    }

    func ttlCase(sequential: Bool) -> Case {
        let path = base + "/ttl" + (sequential ? "/t-" : "")
        let parent = base + "/ttl"
        return Case(opcode: .createTTL, args: ["create", "--ttl", "1h"] + (sequential ? ["--sequential"] : []) + [path, "t"],
                    stdout: sequential ? nil : path + "\n",
                    stdoutMatches: sequential ? { out in out == path + "0000000000\n" } : nil,
                    check: sequential ? "zkctl ls \(parent)" : "zkctl get \(path)") { [self] in
            if !sequential { return try data(path) == "t" ? nil : "data \(String(describing: try data(path)))" }
            let names = try children(parent)
            return names == ["t-0000000000"] ? nil : "children \(names)"
        }
    }

    func setCase(version: Bool) throws -> Case {
        let path = base + "/s"
        try direct(["create", path, "old"])
        return Case(opcode: .setData, args: ["set", path, "new"] + (version ? ["--if-version", "0"] : []),
                    check: "zkctl get \(path)") { [self] in
            let d = try data(path), v = try nodeVersion(path)
            return d == "new" && v == 1 ? nil : "data \(String(describing: d)), version \(String(describing: v))"
        }
    }

    func deleteCase(version: Bool) throws -> Case {
        let path = base + "/d"
        try direct(["create", path, "x"])
        return Case(opcode: .delete, args: ["delete", path] + (version ? ["--if-version", "0"] : []),
                    check: "zkctl exists \(path)") { [self] in
            try data(path) == nil ? nil : "still there"
        }
    }

    func recursiveDeleteCase() throws -> Case {
        let path = base + "/r"
        try direct(["create", "--parents", path + "/x/y", "1"])
        try direct(["create", path + "/z", "2"])
        return Case(opcode: .multi, args: ["delete", "--recursive", path], check: "zkctl exists \(path)") { [self] in
            try data(path) == nil ? nil : "still there"
        }
    }

    func aclCase(version: Bool) throws -> Case {
        let path = base + "/acl"
        try direct(["create", path, "x"])
        return Case(opcode: .setACL, args: ["acl", "set", path, "world:anyone:cdra"] + (version ? ["--if-version", "0"] : []),
                    check: "zkctl acl get \(path)") { [self] in
            let acl = try direct(["acl", "get", path]).stdoutText
            return acl == "world:anyone:cdra\n" ? nil : "acl \(acl)"
        }
    }

    func recursiveACLCase() throws -> Case {
        let path = base + "/aclr"
        try direct(["create", "--parents", path + "/x", "x"])
        try direct(["create", path + "/y", "y"])
        // The root's setACL passes; the reply to the first of the pipelined ones below is lost.
        return Case(opcode: .setACL, skipping: 1, args: ["acl", "set", "--recursive", path, "world:anyone:cdra"],
                    check: "zkctl acl get \(path)") { [self] in
            for p in [path, path + "/x", path + "/y"] {
                let acl = try direct(["acl", "get", p]).stdoutText
                if acl != "world:anyone:cdra\n" { return "\(p): acl \(acl)" }
            }
            return nil
        }
    }

    var configRoot: String { base + "/config" }

    func configArgs(_ args: [String]) -> [String] { ["--config-root", configRoot] + args }

    func configValue(_ key: String) throws -> String? { try data(configRoot + "/" + key) }

    func configSetCase(existing: Bool, extra: [String] = [], opcode: FaultRelay.OpCode = .setData) throws -> Case {
        // The root exists, so the write whose reply is lost is the key's own.
        if existing { try direct(configArgs(["config", "set", "k", "\"old\""])) } else { try direct(["create", configRoot]) }
        return Case(opcode: opcode, args: configArgs(["config", "set", "k", "new"] + extra),
                    check: "zkctl config get k") { [self] in
            let v = try configValue("k")
            return v == "\"new\"" ? nil : "value \(String(describing: v))"
        }
    }

    func configMergeCase() throws -> Case {
        try direct(configArgs(["config", "set", "db", "{\"host\":\"a\"}"]))
        return Case(opcode: .setData, args: configArgs(["config", "set", "db", "--merge", "{\"port\":5432}"]),
                    check: "zkctl config get db") { [self] in
            let v = try configValue("db")
            return v == "{\"host\":\"a\",\"port\":5432}" ? nil : "value \(String(describing: v))"
        }
    }

    func configRemoveCase() throws -> Case {
        try direct(configArgs(["config", "set", "gone", "1"]))
        return Case(opcode: .delete, args: configArgs(["config", "remove", "gone"]), check: "zkctl config get gone") { [self] in
            try configValue("gone") == nil ? nil : "still there"
        }
    }

    func configImportCase() throws -> Case {
        try direct(configArgs(["config", "set", "a", "1"]))
        let file = try write("config.json", #"{"a": 2, "b": "x", "c": [1, 2]}"#)
        return Case(opcode: .multi, args: configArgs(["config", "import", file]), check: "zkctl config get a") { [self] in
            let values = try ["a", "b", "c"].map { try configValue($0) }
            return values == ["2", "\"x\"", "[1,2]"] ? nil : "values \(values)"
        }
    }

    func importCase() throws -> Case {
        try direct(["create", "--parents", base + "/src/one/two", "2"])
        try direct(["create", base + "/src/three", "3"])
        let file = scratch.appendingPathComponent("export.json").path
        try direct(["export", base + "/src", "--file", file])
        let target = base + "/dst"
        return Case(opcode: .multi, args: ["import", file, "--to", target], check: "zkctl get \(target)") { [self] in
            let found = try [target + "/one/two", target + "/three"].map { try data($0) }
            return found == ["2", "3"] ? nil : "found \(found)"
        }
    }

    /// An export holding a TTL node (written by hand: the server shows TTL nodes with
    /// ephemeralOwner 0, so an export of a live one says persistent): import creates it outside
    /// the transactions, pipelined, and its lost answer is settled there.
    func importTTLCase() throws -> Case {
        let acl = #"[{"scheme":"world","id":"anyone","perms":"cdrwa"}]"#
        let file = try write("export-ttl.json", """
            {"format":"zkctl-export","version":1,"root":"/src","exported":"2026-01-01T00:00:00.000Z","nodes":[
            {"path":"","type":"persistent","data":"","acl":\(acl)},
            {"path":"box","type":"ttl","ttl":3600000,"data":"b","acl":\(acl)},
            {"path":"box/item","type":"persistent","data":"i","acl":\(acl)}
            ],"nodeCount":3,"skippedEphemeral":0}
            """)
        let target = base + "/dst"
        return Case(opcode: .createTTL, args: ["import", file, "--to", target], check: "zkctl get \(target)/box") { [self] in
            try data(target + "/box") == "b" && data(target + "/box/item") == "i" ? nil : "not all of \(target)"
        }
    }

    var servicesRoot: String { base + "/services" }

    func registerCase(update: Bool) throws -> Case {
        try direct(["create", servicesRoot])
        if update { try direct(["--services-root", servicesRoot, "service", "register", "api", "10.0.0.1", "80", "--id", "i1"]) }
        return Case(opcode: update ? .setData : .create2,
                    args: ["--services-root", servicesRoot, "service", "register", "api", "10.0.0.2", "8080", "--id", "i1"],
                    stdout: "i1\n", check: "zkctl get \(servicesRoot)/api/i1") { [self] in
            let ids = try children(servicesRoot + "/api")
            guard ids == ["i1"] else { return "instances \(ids)" }
            let doc = try data(servicesRoot + "/api/i1") ?? ""
            return doc.contains("\"address\":\"10.0.0.2\"") && doc.contains("\"port\":8080") ? nil : "document \(doc)"
        }
    }

    func deregisterCase(all: Bool) throws -> Case {
        try direct(["create", servicesRoot])
        for id in ["i1", "i2"] {
            try direct(["--services-root", servicesRoot, "service", "register", "api", "10.0.0.1", "80", "--id", id])
        }
        return Case(opcode: all ? .multi : .delete,
                    args: ["--services-root", servicesRoot, "service", "deregister", "api"] + (all ? ["--all"] : ["i1"]),
                    check: all ? "zkctl ls \(servicesRoot)/api" : "zkctl exists \(servicesRoot)/api/i1") { [self] in
            // The service node goes with its last instance.
            let listing = try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "ls", servicesRoot + "/api"],
                                         environment: faultEnvironment())
            let left = listing.status == 0 ? listing.stdoutText.split(separator: "\n").map(String.init) : []
            return left == (all ? [] : ["i2"]) ? nil : "left \(left)"
        }
    }

    // MARK: Tests: the reply is lost, the server is back at once

    func testCreate() throws { try lostReply(createCase()) }
    func testCreateSequential() throws {
        try direct(["create", base + "/q"])
        try lostReply(sequentialCase())
    }
    func testCreateParents() throws { try lostReply(parentsCase()) }
    func testCreateContainer() throws { try lostReply(containerCase()) }
    func testCreateTTL() throws { try lostReply(ttlCase(sequential: false)) }
    func testCreateTTLSequential() throws {
        try direct(["create", base + "/ttl"])
        try lostReply(ttlCase(sequential: true))
    }
    func testSet() throws { try lostReply(setCase(version: false)) }
    func testSetIfVersion() throws { try lostReply(setCase(version: true)) }
    func testDelete() throws { try lostReply(deleteCase(version: false)) }
    func testDeleteIfVersion() throws { try lostReply(deleteCase(version: true)) }
    func testDeleteRecursive() throws { try lostReply(recursiveDeleteCase()) }
    func testACLSet() throws { try lostReply(aclCase(version: false)) }
    func testACLSetIfVersion() throws { try lostReply(aclCase(version: true)) }
    func testACLSetRecursive() throws { try lostReply(recursiveACLCase()) }
    func testConfigSet() throws { try lostReply(configSetCase(existing: true)) }
    func testConfigSetNewKey() throws { try lostReply(configSetCase(existing: false, opcode: .create2)) }
    func testConfigSetIfVersion() throws {
        try lostReply(configSetCase(existing: true, extra: ["--if-version", "0"]))
        // Run again, it is a conflict about a version that is no longer there, as without a loss.
        let again = try runProcess(zkctlBinaryPath(), ["-s", server.connectString] + configArgs(["config", "set", "k", "new", "--if-version", "0"]),
                                   environment: faultEnvironment())
        XCTAssertEqual(again.status, 75, again.stderrText)
    }
    func testConfigSetIfAbsent() throws { try lostReply(configSetCase(existing: false, extra: ["--if-absent"], opcode: .create2)) }
    func testConfigSetMerge() throws { try lostReply(configMergeCase()) }
    func testConfigRemove() throws { try lostReply(configRemoveCase()) }
    func testConfigImport() throws { try lostReply(configImportCase()) }
    func testImport() throws { try lostReply(importCase()) }
    func testImportTTL() throws { try lostReply(importTTLCase()) }
    func testServiceRegister() throws { try lostReply(registerCase(update: false)) }
    func testServiceRegisterUpdate() throws { try lostReply(registerCase(update: true)) }
    func testServiceDeregister() throws { try lostReply(deregisterCase(all: false)) }
    func testServiceDeregisterAll() throws { try lostReply(deregisterCase(all: true)) }

    // MARK: Tests: the request itself is lost (not applied: sent again, applied once)

    func testLostRequestSetIfVersion() throws { try lostRequest(setCase(version: true)) }
    func testLostRequestCreateSequential() throws {
        try direct(["create", base + "/q"])
        try lostRequest(sequentialCase())
    }
    func testLostRequestConfigImport() throws { try lostRequest(configImportCase()) }
    func testLostRequestDelete() throws { try lostRequest(deleteCase(version: true)) }

    // MARK: Tests: the reply is lost and the servers never come back

    func testNeverBackCreate() throws { try neverBack(createCase()) }
    func testNeverBackCreateSequential() throws {
        try direct(["create", base + "/q"])
        try neverBack(sequentialCase())
    }
    func testNeverBackSet() throws { try neverBack(setCase(version: true)) }
    func testNeverBackDelete() throws { try neverBack(deleteCase(version: false)) }
    func testNeverBackDeleteRecursive() throws { try neverBack(recursiveDeleteCase()) }
    func testNeverBackACLSet() throws { try neverBack(aclCase(version: false)) }
    func testNeverBackConfigSet() throws { try neverBack(configSetCase(existing: true, extra: ["--if-version", "0"])) }
    func testNeverBackConfigMerge() throws { try neverBack(configMergeCase()) }
    func testNeverBackConfigImport() throws { try neverBack(configImportCase()) }
    func testNeverBackImport() throws { try neverBack(importCase()) }
    func testNeverBackServiceRegister() throws { try neverBack(registerCase(update: false)) }
    func testNeverBackServiceDeregister() throws { try neverBack(deregisterCase(all: false)) }
}
