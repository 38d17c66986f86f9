import Foundation
import XCTest
import ZKTestSupport

/// `ensemble list`, `can-restart`, `add`, `remove` against a real 3-member ensemble with
/// reconfigEnabled=true and a superuser digest (super:secret). The tests share one ensemble and
/// run in name order; each leaves every member running.
final class EnsembleCommandTests: XCTestCase {
    nonisolated(unsafe) static var shared: ZooKeeperServer?
    static let superAuth = ["ZKCTL_AUTH": "super:secret"]

    static func ensemble() throws -> ZooKeeperServer {
        if let s = shared, !s.isShutDown { return s }
        // base64(sha1("super:secret")), ZooKeeper's digest of the superuser's credentials.
        let digest = "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        let s = try ZooKeeperServer.ensemble(size: 3, .init(
            config: ["reconfigEnabled=true"], jvmFlags: ["-Dzookeeper.DigestAuthenticationProvider.superDigest=\(digest)"]))
        shared = s
        return s
    }

    override class func tearDown() {
        shared?.shutdown()
        shared = nil
        super.tearDown()
    }

    func zkctl(_ server: ZooKeeperServer, _ args: [String], env: [String: String?] = [:], timeout: TimeInterval = 60) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "--timeout", "5s"] + args,
                       environment: childEnvironment(env), timeout: timeout)
    }

    func members(_ server: ZooKeeperServer) throws -> [[String: Any]] {
        let r = try zkctl(server, ["-o", "json", "ensemble", "list"])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stderrText)
    }

    func configVersion(_ server: ZooKeeperServer) throws -> String {
        try XCTUnwrap(members(server).first?["configVersion"] as? String)
    }

    func testA_ListShowsOneLeaderAndEveryMember() throws {
        let server = try Self.ensemble()
        let r = try zkctl(server, ["ensemble", "list"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        let lines = r.stdoutText.split(separator: "\n")
        XCTAssertEqual(lines.count, 5, r.stdoutText)
        XCTAssertTrue(lines.first?.hasPrefix("Config version: 1") ?? false, r.stdoutText)
        XCTAssertTrue(lines.dropFirst().first?.hasPrefix("ID  ADDRESS") ?? false, r.stdoutText)

        let list = try members(server)
        XCTAssertEqual(list.map { $0["id"] as? Int }, [1, 2, 3])
        XCTAssertEqual(list.filter { $0["mode"] as? String == "leader" }.count, 1, "\(list)")
        XCTAssertEqual(list.filter { $0["mode"] as? String == "follower" }.count, 2, "\(list)")
        for (i, m) in list.enumerated() {
            XCTAssertEqual(m["role"] as? String, "participant")
            XCTAssertEqual(m["client"] as? String, server.memberConnectString(i + 1))
            XCTAssertEqual(m["lag"] as? Int, 0, "\(m)")
            XCTAssertTrue((m["zxid"] as? String)?.hasPrefix("0x") ?? false, "\(m)")
            XCTAssertEqual(m["source"] as? String, "4lw")
            XCTAssertNotNil(m["address"] as? String)
        }
    }

    func testB_CanRestartWithAllUpAndNotASecondOneWhileOneIsDown() throws {
        let server = try Self.ensemble()
        let leader = try server.leader()
        let follower = server.members.first { $0 != leader }!
        let other = server.members.first { $0 != leader && $0 != follower }!
        var r = try zkctl(server, ["ensemble", "can-restart", String(follower)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stdoutText.hasPrefix("member \(follower) (\(server.memberConnectString(follower)), follower) can be restarted: 2 of 3 voters stay serving and synced, a quorum needs 2"), r.stdoutText)
        // By client address, the leader.
        r = try zkctl(server, ["ensemble", "can-restart", server.memberConnectString(leader)])
        XCTAssertEqual(r.status, 0, r.stderrText)

        try server.stop(member: other)
        defer { try? server.restart(member: other); try? server.waitUntilServing() }
        try server.waitUntilServing()
        r = try zkctl(server, ["-o", "json", "ensemble", "can-restart", String(follower)])
        XCTAssertEqual(r.status, 69, r.stdoutText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: member \(follower) (\(server.memberConnectString(follower)), follower) cannot be restarted now: member \(other) (\(server.memberConnectString(other))) is down"), r.stderrText)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any])
        XCTAssertEqual(json["safe"] as? Bool, false)
        XCTAssertEqual(json["votersLeft"] as? Int, 1)
        XCTAssertEqual(json["needed"] as? Int, 2)

        // --wait: safe once the member is back.
        let restarter = Thread { try? server.restart(member: other) }
        restarter.start()
        r = try zkctl(server, ["ensemble", "can-restart", String(follower), "--wait", "60s"], timeout: 90)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stdoutText.contains("can be restarted"), r.stdoutText)

        r = try zkctl(server, ["ensemble", "can-restart", "9"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrText, "zkctl: no member '9' in the ensemble (members: 1, 2, 3)\n")
    }

    func testC_RefusalsChangeNothing() throws {
        let server = try Self.ensemble()
        try server.waitUntilServing()
        let version = try configVersion(server)
        let victim = server.members.first { $0 != (try? server.leader()) }!

        // No credentials: the server's ACL refuses, and the line says what it needs.
        var r = try zkctl(server, ["ensemble", "remove", String(victim)], env: ["ZKCTL_AUTH": nil])
        XCTAssertEqual(r.status, 77, r.stderrText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: not authorized to reconfigure: the server lets only a superuser"), r.stderrText)

        // A stale --if-version.
        r = try zkctl(server, ["ensemble", "remove", String(victim), "--if-version", "1"], env: Self.superAuth)
        XCTAssertEqual(r.status, 75, r.stderrText)
        XCTAssertEqual(r.stderrText, "zkctl: the configuration is at version \(version), not 1: read it again ('zkctl ensemble list') and retry\n")

        // --dry-run prints the change and the quorum, and changes nothing.
        r = try zkctl(server, ["ensemble", "remove", String(victim), "--dry-run"], env: Self.superAuth)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stdoutText.hasPrefix("Dry run: nothing changed.\n  - server.\(victim)="), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("Quorum before: 3 of 3 voters serving, needs 2\nQuorum after:  2 of 2 voters serving, needs 2\n"), r.stdoutText)

        // Adding a member that is not running.
        r = try zkctl(server, ["ensemble", "add", "server.7=127.0.0.1:1:2:participant;127.0.0.1:3"], env: Self.superAuth)
        XCTAssertEqual(r.status, 75, r.stderrText)
        XCTAssertTrue(r.stderrText.contains("member 7 (127.0.0.1:3) is not running: start it first"), r.stderrText)

        // With one member down, removing another would leave no quorum of members that are up.
        try server.stop(member: victim)
        defer { try? server.restart(member: victim); try? server.waitUntilServing() }
        try server.waitUntilServing()
        let up = server.members.first { $0 != victim }!
        r = try zkctl(server, ["ensemble", "remove", String(up)], env: Self.superAuth)
        XCTAssertEqual(r.status, 75, r.stderrText)
        XCTAssertTrue(r.stderrText.contains("the members up now would not form a quorum: 1 of the 2 voters after the change serve, a quorum needs 2"), r.stderrText)
        XCTAssertEqual(try configVersion(server), version)
        XCTAssertEqual(try members(server).count, 3)
    }

    /// Remove a member and add it back while a `config set` loop runs (it loses nothing), then
    /// a 4th member joins as an observer and is promoted.
    func testD_RemoveAddBackAndPromoteAnObserver() throws {
        let server = try Self.ensemble()
        try server.waitUntilServing()
        let before = try members(server)
        let victim = try server.leader()  // the hardest case: the leader leaves
        let address = try XCTUnwrap(before.first { $0["id"] as? Int == victim }?["address"] as? String, "\(before)")
        let line = "server.\(victim)=\(address):participant;\(server.memberConnectString(victim))"

        // A writer through the whole change: every write it was told succeeded must be there
        // after. A write that failed (a leader change can cut one off) said so and is not counted.
        let stop = LockedFlag()
        let acknowledged = LockedList()
        let failures = LockedList()
        let writer = Thread {
            var i = 0
            while !stop.isSet && i < 2000 {
                i += 1
                let r = try? runProcess(zkctlBinaryPath(), ["-s", server.connectString, "--timeout", "20s", "config", "set", "ens-k\(i)", "\(i)"], timeout: 60)
                if r?.status == 0 { acknowledged.append(i) } else { failures.append(i, r.map { "\($0.status): \($0.stderrText)" } ?? "timed out") }
            }
        }
        writer.start()

        var r = try zkctl(server, ["ensemble", "remove", String(victim)], env: Self.superAuth)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stdoutText.hasPrefix("Config version: "), r.stdoutText)
        XCTAssertFalse(r.stdoutText.contains("server.\(victim)="), r.stdoutText)
        XCTAssertEqual(try members(server).count, 2)

        // Back again (the removed server keeps running; it rejoins once named).
        r = try zkctl(server, ["ensemble", "add", line], env: Self.superAuth)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stdoutText.contains(line), r.stdoutText)

        // A 4th member as an observer, then promoted.
        let grown = try server.grow(observer: true)
        let version = try configVersion(server)
        r = try zkctl(server, ["ensemble", "add", grown.server, "--if-version", version], env: Self.superAuth)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(ensembleEventually(30) { (try? self.members(server))?.first { $0["id"] as? Int == grown.member }?["mode"] as? String == "observer" })
        let promoted = grown.server.replacingOccurrences(of: ":observer;", with: ":participant;")
        r = try zkctl(server, ["ensemble", "add", promoted], env: Self.superAuth)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(ensembleEventually(30) {
            let list = (try? self.members(server)) ?? []
            return list.count == 4 && list.allSatisfy { $0["role"] as? String == "participant" && ["leader", "follower"].contains($0["mode"] as? String ?? "") }
        }, "\((try? members(server)) ?? [])")

        stop.set()
        writer.join(timeout: 120)
        let written = acknowledged.items
        XCTAssertGreaterThan(written.count, 10, "the writer hardly wrote")
        // At most a few writes cut off by the leader's departure, each with its error.
        XCTAssertLessThanOrEqual(failures.items.count, 3, "\(failures.messages)")
        for message in failures.messages { XCTAssertTrue(message.contains("zkctl: "), message) }
        r = try zkctl(server, ["-o", "json", "config", "list"])
        let stored = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any], r.stderrText)
        let lost = written.filter { stored["ens-k\($0)"] as? Int != $0 }
        XCTAssertEqual(lost, [], "acknowledged writes lost")
        // Back to the 3 members it was, as a whole membership from a file (ensemble set).
        let file = try ZKTestPaths.makeTemporaryDirectory(label: "members").appendingPathComponent("members.cfg")
        let three = try members(server).filter { $0["id"] as? Int != grown.member }
            .map { "server.\($0["id"]!)=\($0["address"]!):participant;\($0["client"]!)" }
        try ("# the three\n" + three.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        r = try zkctl(server, ["ensemble", "set", file.path], env: Self.superAuth)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stdoutText.split(separator: "\n").dropFirst().map(String.init), three, r.stdoutText)
        XCTAssertEqual(try members(server).map { $0["id"] as? Int }, [1, 2, 3])
        // A file that is not server lines changes nothing.
        r = try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "ensemble", "set", "-"], stdin: Data("server.x=1\n".utf8))
        XCTAssertEqual(r.status, 65)
        XCTAssertEqual(r.stderrText, "zkctl: -, line 1: not a server line: server.x=1\n")
    }

    /// sessions through the four-letter words (cons, and dump on the leader).
    func testF_SessionsNameTheOwnerOfAnEphemeralNode() throws {
        let server = try Self.ensemble()
        try server.waitUntilServing()
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.memberConnectString(2), "service", "register", "db", "127.0.0.1", "5432", "--ephemeral", "--id", "db-1"],
                                           environment: ProcessInfo.processInfo.environment)
        defer { holder.kill() }
        XCTAssertTrue(holder.waitForLines(1), holder.stderr)
        let r = try zkctl(server, ["-o", "json", "sessions"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let sessions = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        let owner = try XCTUnwrap(sessions.first { ($0["ephemeralPaths"] as? [String]) == ["/services/db/db-1"] }, r.stdoutText)
        XCTAssertEqual(owner["member"] as? String, server.memberConnectString(2))
        XCTAssertEqual(owner["source"] as? String, "4lw")
        XCTAssertEqual(owner["ephemerals"] as? Int, 1)
        XCTAssertTrue((owner["client"] as? String)?.hasPrefix("127.0.0.1:") ?? false, "\(owner)")

        // stat of the ephemeral node names the same client.
        var s = try zkctl(server, ["-o", "json", "stat", "/services/db/db-1"])
        XCTAssertEqual(s.status, 0, s.stderrText)
        let stat = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(s.stdoutText.utf8)) as? [String: Any], s.stdoutText)
        let statOwner = try XCTUnwrap(stat["owner"] as? [String: Any], s.stdoutText)
        XCTAssertEqual(statOwner["client"] as? String, owner["client"] as? String)
        XCTAssertEqual(statOwner["member"] as? String, server.memberConnectString(2))
        XCTAssertEqual((stat["stat"] as? [String: Any])?["ephemeralOwner"] as? String, owner["sessionId"] as? String)
        s = try zkctl(server, ["stat", "/services/db/db-1"])
        XCTAssertTrue(s.stdoutText.hasSuffix("ownerClient     \(owner["client"] as? String ?? "?") (on \(server.memberConnectString(2)))\n"), s.stdoutText)
    }

    /// service discover --owners: a held ephemeral instance names the client that holds it (the
    /// session sessions shows), a persistent one has no owner; plain discover stays as it was.
    func testG_DiscoverOwnersNamesTheClientOfAnEphemeralInstance() throws {
        let server = try Self.ensemble()
        try server.waitUntilServing()
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.memberConnectString(3), "service", "register", "api", "127.0.0.1", "8081", "--ephemeral", "--id", "api-held"],
                                           environment: ProcessInfo.processInfo.environment)
        defer { holder.kill() }
        XCTAssertTrue(holder.waitForLines(1), holder.stderr)
        var r = try zkctl(server, ["service", "register", "api", "127.0.0.1", "8082", "--id", "api-static"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        defer { _ = try? zkctl(server, ["service", "deregister", "api", "api-static"]) }

        r = try zkctl(server, ["-o", "json", "sessions"])
        let sessions = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        let session = try XCTUnwrap(sessions.first { ($0["ephemeralPaths"] as? [String]) == ["/services/api/api-held"] }, r.stdoutText)
        let client = try XCTUnwrap(session["client"] as? String)

        r = try zkctl(server, ["-o", "json", "service", "discover", "api", "--owners"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        let instances = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        let held = try XCTUnwrap(instances.first { $0["id"] as? String == "api-held" }, r.stdoutText)
        let owner = try XCTUnwrap(held["owner"] as? [String: Any], r.stdoutText)
        XCTAssertEqual(owner["client"] as? String, client)
        XCTAssertEqual(owner["session"] as? String, session["sessionId"] as? String)
        XCTAssertEqual(owner["member"] as? String, server.memberConnectString(3))
        let persistent = try XCTUnwrap(instances.first { $0["id"] as? String == "api-static" }, r.stdoutText)
        XCTAssertTrue(persistent["owner"] is NSNull, "\(persistent)")

        r = try zkctl(server, ["service", "discover", "api", "--owners"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let lines = r.stdoutText.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasSuffix(" OWNER") ?? false, r.stdoutText)
        XCTAssertTrue(lines.contains { $0.hasPrefix("api-held ") && $0.hasSuffix(" \(client)") }, r.stdoutText)
        XCTAssertTrue(lines.contains { $0.hasPrefix("api-static ") && $0.hasSuffix(" -") }, r.stdoutText)

        // Without --owners: no owner field, no OWNER column.
        r = try zkctl(server, ["-o", "json", "service", "discover", "api"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let plain = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        XCTAssertEqual(plain.count, 2)
        XCTAssertTrue(plain.allSatisfy { $0["owner"] == nil }, r.stdoutText)
        r = try zkctl(server, ["service", "discover", "api"])
        XCTAssertFalse(r.stdoutText.contains("OWNER"), r.stdoutText)

        r = try zkctl(server, ["service", "discover", "api", "--owners", "--url"])
        XCTAssertEqual(r.status, 64)
    }

    /// The leader keeps a summary per learner (learner_handler_qp_size, keyed by the learner's
    /// id): -o prometheus names it as ZooKeeper's Prometheus provider does, with a key label,
    /// and every line is a TYPE line or a well-formed sample. The text table ends no line in spaces.
    func testH_MetricsNameSummarySetsWithAKeyLabel() throws {
        let server = try Self.ensemble()
        try server.waitUntilServing()
        let list = try members(server)
        let leader = try XCTUnwrap(list.first { $0["mode"] as? String == "leader" }, "\(list)")
        let leaderClient = try XCTUnwrap(leader["client"] as? String)
        let followerIDs = list.filter { $0["mode"] as? String == "follower" }.compactMap { $0["id"] as? Int }
        XCTAssertEqual(followerIDs.count, 2, "\(list)")

        var r = try zkctl(server, ["metrics", "-o", "prometheus"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        for id in followerIDs {
            XCTAssertTrue(lines.contains { $0.hasPrefix("learner_handler_qp_size_count{server=\"\(leaderClient)\",key=\"\(id)\"} ") },
                          "no per-learner summary for \(id): \(r.stdoutText)")
        }
        XCTAssertTrue(lines.contains("# TYPE learner_handler_qp_size summary"), r.stdoutText)
        var families = Set<String>()
        for line in lines {
            if line.hasPrefix("# TYPE ") {
                let family = line.split(separator: " ")[2]
                XCTAssertTrue(families.insert(String(family)).inserted, "two TYPE lines for \(family)")
                XCTAssertFalse(family.hasPrefix("_"), line)
                continue
            }
            XCTAssertNotNil(line.range(of: #"^[a-zA-Z][a-zA-Z0-9_]*\{server="[^"]+"(,[a-z_]+="[^"]*")*\} -?[0-9.eE+-]+$"#, options: .regularExpression),
                            "not a sample: \(line)")
        }

        r = try zkctl(server, ["metrics"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertFalse(r.stdoutText.split(separator: "\n").contains { $0.hasSuffix(" ") }, r.stdoutText)
        r = try zkctl(server, ["ensemble", "list"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertFalse(r.stdoutText.split(separator: "\n").contains { $0.hasSuffix(" ") }, r.stdoutText)
    }

    func testE_ReconfigDisabledSaysWhatTheServerNeeds() throws {
        let plain = try ZooKeeperServer.ensemble(size: 1)
        defer { plain.shutdown() }
        let r = try zkctl(plain, ["ensemble", "remove", "1", "--force"])
        XCTAssertEqual(r.status, 69, r.stderrText)
        XCTAssertEqual(r.stderrText, "zkctl: the server does not allow reconfig: every member needs reconfigEnabled=true in its zoo.cfg\n")
    }
}

/// `metrics`, `status` and `sessions` against a server that allows only `srvr` and runs the
/// AdminServer, and the message when neither transport answers.
final class EnsembleMonitoringTests: XCTestCase {
    nonisolated(unsafe) static var shared: ZooKeeperServer?

    /// One server for the class: only srvr allowed, the AdminServer on a free port.
    static func server() throws -> ZooKeeperServer {
        if let s = shared, !s.isShutDown { return s }
        let s = try ZooKeeperServer.standalone(.init(config: ["4lw.commands.whitelist=srvr"], adminServer: true))
        shared = s
        return s
    }

    override class func tearDown() {
        shared?.shutdown()
        shared = nil
        super.tearDown()
    }

    func zkctl(_ args: [String], env: [String: String?] = [:]) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), ["-s", try Self.server().connectString, "--timeout", "5s"] + args,
                       environment: childEnvironment(env), timeout: 60)
    }

    func testMetricsAndStatusThroughTheAdminServer() throws {
        let server = try Self.server()
        let admin = try XCTUnwrap(server.adminPort(member: 1))

        // metrics: mntr is not allowed, the AdminServer answers (the port from the environment).
        var r = try zkctl(["-o", "json", "metrics"], env: ["ZKCTL_ADMIN_PORT": String(admin)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.count, 1)
        XCTAssertEqual(list[0]["server"] as? String, server.connectString)
        XCTAssertEqual(list[0]["source"] as? String, "admin-server")
        let metrics = try XCTUnwrap(list[0]["metrics"] as? [String: Any])
        XCTAssertEqual(metrics["server_state"] as? String, "standalone")
        XCTAssertNotNil(metrics["znode_count"] as? Int, "\(metrics)")

        r = try zkctl(["metrics", "-o", "prometheus", "--admin-port", String(admin)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let label = "server=\"\(server.connectString)\""
        XCTAssertTrue(r.stdoutText.contains("# TYPE zkctl_member_up gauge\nzkctl_member_up{\(label)} 1\n"), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("\nznode_count{\(label)} "), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("server_state=\"standalone\""), r.stdoutText)
        for line in r.stdoutText.split(separator: "\n") where !line.hasPrefix("#") {
            XCTAssertNotNil(line.range(of: #"^[a-zA-Z_][a-zA-Z0-9_]*\{.*\} -?[0-9.eE+-]+$"#, options: .regularExpression), "not a sample: \(line)")
        }

        r = try zkctl(["metrics", "--admin-port", String(admin)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stdoutText.hasPrefix("METRIC "), r.stdoutText)
        XCTAssertTrue(r.stdoutText.contains("\nsource "), r.stdoutText)

        // status: srvr is allowed here, and still works when it is asked through the AdminServer
        // (the json says which source answered).
        r = try zkctl(["-o", "json", "status", "--admin-port", String(admin)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let status = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any])
        let s0 = try XCTUnwrap((status["servers"] as? [[String: Any]])?.first)
        XCTAssertEqual(s0["mode"] as? String, "standalone")
        XCTAssertEqual(status["healthy"] as? Bool, true)

        // A client port that accepts but never answers (as a TLS-only port does for plain text):
        // status takes the member's figures from its AdminServer. (ZooKeeper 3.8 always allows
        // srvr, so a whitelist cannot turn it off.)
        let silent = try SilentListener()
        defer { silent.close() }
        r = try runProcess(zkctlBinaryPath(), ["-s", "127.0.0.1:\(silent.port)", "--timeout", "2s", "-o", "json", "status", "--admin-port", String(admin)], timeout: 60)
        let viaAdmin = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any], r.stderrText)
        let s1 = try XCTUnwrap((viaAdmin["servers"] as? [[String: Any]])?.first)
        XCTAssertEqual(s1["mode"] as? String, "standalone", "\(s1)")
        XCTAssertEqual(s1["source"] as? String, "admin-server", "\(s1)")
        XCTAssertNotNil(s1["nodeCount"] as? Int, "\(s1)")

        // Neither mntr nor an AdminServer: one clear line per member, exit 69.
        let closed = try closedPort()
        r = try zkctl(["metrics", "--admin-port", String(closed)])
        XCTAssertEqual(r.status, 69)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: \(server.connectString): mntr is not allowed and no AdminServer answered on port \(closed) (connection refused): allow mntr in 4lw.commands.whitelist, or enable the AdminServer (admin.enableServer=true) and name its port with --admin-port or ZKCTL_ADMIN_PORT"), r.stderrText)
    }

    func testSessionsNameTheOwnerOfAnEphemeralNode() throws {
        let server = try Self.server()
        let admin = try XCTUnwrap(server.adminPort(member: 1))
        var r: ProcessResult
        // sessions: the session of a held ephemeral registration owns its node.
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "service", "register", "web", "127.0.0.1", "80", "--ephemeral", "--id", "w1"],
                                           environment: ProcessInfo.processInfo.environment)
        defer { holder.kill() }
        XCTAssertTrue(holder.waitForLines(1), holder.stderr)
        r = try zkctl(["-o", "json", "sessions", "--admin-port", String(admin)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let sessions = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        let owner = try XCTUnwrap(sessions.first { ($0["ephemeralPaths"] as? [String]) == ["/services/web/w1"] }, r.stdoutText)
        XCTAssertEqual(owner["ephemerals"] as? Int, 1)
        XCTAssertEqual(owner["source"] as? String, "admin-server")
        XCTAssertEqual(owner["member"] as? String, server.connectString)
        XCTAssertTrue((owner["client"] as? String)?.hasPrefix("127.0.0.1:") ?? false, "\(owner)")
        XCTAssertTrue((owner["sessionId"] as? String)?.hasPrefix("0x") ?? false, "\(owner)")
        r = try zkctl(["sessions", "--admin-port", String(admin)])
        XCTAssertTrue(r.stdoutText.contains(" 1           /services/web/w1"), r.stdoutText)
    }
}

extension EnsembleMonitoringTests {
    /// service discover --owners through the AdminServer's connections (cons is not allowed),
    /// and the one stderr line when no member can say.
    func testDiscoverOwnersThroughTheAdminServer() throws {
        let server = try Self.server()
        let admin = try XCTUnwrap(server.adminPort(member: 1))
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "service", "register", "owned", "127.0.0.1", "90", "--ephemeral", "--id", "o1"],
                                           environment: ProcessInfo.processInfo.environment)
        defer { holder.kill() }
        XCTAssertTrue(holder.waitForLines(1), holder.stderr)
        var r = try zkctl(["-o", "json", "service", "discover", "owned", "--owners"], env: ["ZKCTL_ADMIN_PORT": String(admin)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        var instances = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        let owner = try XCTUnwrap(instances.first?["owner"] as? [String: Any], r.stdoutText)
        XCTAssertEqual(owner["member"] as? String, server.connectString)
        XCTAssertTrue((owner["client"] as? String)?.hasPrefix("127.0.0.1:") ?? false, "\(owner)")
        let session = try XCTUnwrap(owner["session"] as? String)

        // No AdminServer on that port and cons not allowed: owner null, and why, once.
        let closed = try closedPort()
        r = try zkctl(["-o", "json", "service", "discover", "owned", "--owners"], env: ["ZKCTL_ADMIN_PORT": String(closed)])
        XCTAssertEqual(r.status, 0, r.stderrText)
        instances = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [[String: Any]], r.stdoutText)
        XCTAssertTrue(instances.first?["owner"] is NSNull, r.stdoutText)
        XCTAssertEqual(r.stderrText, "zkctl: warning: owner not found for o1 (session \(session)): no member said: "
                       + "\(server.connectString): cons is not allowed and no AdminServer answered on port \(closed) (connection refused): "
                       + "allow cons in 4lw.commands.whitelist, or enable the AdminServer (admin.enableServer=true) and name its port with --admin-port or ZKCTL_ADMIN_PORT\n")
        r = try zkctl(["service", "discover", "owned", "--owners"], env: ["ZKCTL_ADMIN_PORT": String(closed)])
        XCTAssertTrue(r.stdoutText.split(separator: "\n").last?.hasSuffix(" ?") ?? false, r.stdoutText)
    }
}

/// metrics, sessions and status through an AdminServer that serves only HTTPS
/// (admin.forceHttps=true, with the ssl.quorum.* stores), with --tls and --tls-ca, and without
/// --tls from the plain client port.
final class AdminServerHTTPSTests: XCTestCase {
    func testMetricsSessionsAndStatusOverHTTPS() throws {
        let fx = try TLSFixtures.make()
        let stores = fx.stores.path
        let password = try String(contentsOf: fx.stores.appendingPathComponent("password"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var config = ["4lw.commands.whitelist=srvr", "admin.forceHttps=true"]
        for (store, file) in [("keyStore", "keystore.p12"), ("trustStore", "truststore.p12")] {
            config += ["ssl.quorum.\(store).location=\(stores)/\(file)", "ssl.quorum.\(store).password=\(password)",
                       "ssl.quorum.\(store).type=PKCS12"]
        }
        let server = try ZooKeeperServer.secure(stores: fx.stores, setup: .init(config: config, adminServer: true))
        defer { server.shutdown() }
        let admin = String(try XCTUnwrap(server.adminPort(member: 1)))
        let secure = try XCTUnwrap(server.secureConnectString)
        let tls = ["--tls", "--tls-ca", fx.path("ca.pem")]
        // No CA of the environment's: "the system's CAs" are the machine's, which do not know the test CA.
        func zkctl(_ args: [String], env: [String: String?] = [:]) throws -> ProcessResult {
            try runProcess(zkctlBinaryPath(), ["--timeout", "5s"] + args,
                           environment: childEnvironment(["SSL_CERT_FILE": nil, "SSL_CERT_DIR": nil].merging(env) { $1 }), timeout: 60)
        }
        func json<T>(_ r: ProcessResult, as: T.Type) throws -> T {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? T, r.stdoutText + r.stderrText)
        }

        // metrics: mntr is not allowed; the AdminServer answers over HTTPS, verified by --tls-ca.
        var r = try zkctl(["-s", secure] + tls + ["-o", "json", "metrics", "--admin-port", admin])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let list = try json(r, as: [[String: Any]].self)
        XCTAssertEqual(list.first?["source"] as? String, "admin-server", r.stdoutText)
        XCTAssertEqual((list.first?["metrics"] as? [String: Any])?["server_state"] as? String, "standalone", r.stdoutText)

        // sessions: the AdminServer's connections and dump name a held registration's session.
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "service", "register", "secured", "127.0.0.1", "443", "--ephemeral", "--id", "s1"],
                                           environment: ProcessInfo.processInfo.environment)
        defer { holder.kill() }
        XCTAssertTrue(holder.waitForLines(1), holder.stderr)
        r = try zkctl(["-s", secure] + tls + ["-o", "json", "sessions", "--admin-port", admin])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let owner = try XCTUnwrap(try json(r, as: [[String: Any]].self).first { ($0["ephemeralPaths"] as? [String]) == ["/services/secured/s1"] }, r.stdoutText)
        XCTAssertEqual(owner["source"] as? String, "admin-server")

        // status: a client port that never answers; the member's figures come over HTTPS.
        let silent = try SilentListener()
        defer { silent.close() }
        r = try zkctl(["-s", "127.0.0.1:\(silent.port)", "--timeout", "1s"] + tls + ["-o", "json", "status", "--admin-port", admin])
        var first = try XCTUnwrap((try json(r, as: [String: Any].self)["servers"] as? [[String: Any]])?.first, r.stdoutText)
        XCTAssertEqual(first["source"] as? String, "admin-server", "\(first)")
        XCTAssertEqual(first["mode"] as? String, "standalone", "\(first)")

        // A CA that did not sign the AdminServer's certificate: no plain HTTP instead, the reason.
        let otherCA = fx.path("other-ca.pem")
        r = try zkctl(["-s", "127.0.0.1:\(silent.port)", "--timeout", "1s", "--tls", "--tls-ca", otherCA, "-o", "json", "status", "--admin-port", admin])
        first = try XCTUnwrap((try json(r, as: [String: Any].self)["servers"] as? [[String: Any]])?.first, r.stdoutText)
        XCTAssertTrue(first["source"] is NSNull, "\(first)")
        XCTAssertEqual(first["error"] as? String, "srvr is not allowed and HTTPS to the AdminServer on port \(admin) failed: "
                       + "the server's certificate is not signed by the CA in '\(otherCA)' (unknown CA)", "\(first)")

        // Without --tls, from the plain client port: the port answers plain HTTP with TLS, so
        // HTTPS, verified with the system's CAs (here SSL_CERT_FILE names the test CA).
        r = try zkctl(["-s", server.connectString, "-o", "json", "metrics", "--admin-port", admin], env: ["SSL_CERT_FILE": fx.path("ca.pem")])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(try json(r, as: [[String: Any]].self).first?["source"] as? String, "admin-server", r.stdoutText)
        r = try zkctl(["-s", server.connectString, "metrics", "--admin-port", admin])
        XCTAssertEqual(r.status, 69)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText, "zkctl: \(server.connectString): mntr is not allowed and HTTPS to the AdminServer on port \(admin) failed: "
                       + "the server's certificate is not signed by the system's CAs (unknown CA) (its port serves HTTPS only: give --tls and "
                       + "--tls-ca when the client port is TLS too, or add the CA to the system's store)\n")
    }
}

fileprivate final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var isSet: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

fileprivate final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [(Int, String)] = []
    var items: [Int] { lock.withLock { list.map(\.0) } }
    var messages: [String] { lock.withLock { list.map(\.1) } }
    func append(_ i: Int, _ message: String = "") { lock.withLock { list.append((i, message)) } }
}

fileprivate extension Thread {
    /// Waits (bounded) until the thread has finished.
    func join(timeout: TimeInterval) {
        let end = Date().addingTimeInterval(timeout)
        while !isFinished && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
    }
}

fileprivate func ensembleEventually(_ seconds: TimeInterval, _ check: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if check() { return true }
        Thread.sleep(forTimeInterval: 0.5)
    }
    return check()
}
