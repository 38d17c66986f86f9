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
        XCTAssertTrue(lines.first?.hasPrefix("Config version: 1") ?? false, r.stdoutText)
        XCTAssertTrue(lines[1].hasPrefix("ID  ADDRESS"), r.stdoutText)
        XCTAssertEqual(lines.count, 5, r.stdoutText)

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
