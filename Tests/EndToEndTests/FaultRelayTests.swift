import Foundation
import XCTest
import ZKTestSupport

/// The fault relay itself, through the binary: it passes traffic, holds it back (a partition the
/// client sees as silence, not as a closed connection) and drops one reply while the write it
/// answers lands.
final class FaultRelayTests: XCTestCase {
    var server: ZooKeeperServer!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
    }

    func zkctl(_ relay: FaultRelay?, _ args: [String], timeout: TimeInterval = 60) throws -> ProcessResult {
        let servers = relay?.address ?? server.connectString
        return try runProcess(zkctlBinaryPath(), ["-s", servers] + args, environment: faultEnvironment(), timeout: timeout)
    }

    func testTheRelayPassesHoldsAndDropsOneReply() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        let path = uniqueZnodePath("relay")
        defer { _ = try? zkctl(nil, ["delete", "--recursive", path]) }

        // Passing: a write and a read through it.
        XCTAssertEqual(try zkctl(relay, ["create", path, "one"]).status, 0)
        XCTAssertEqual(try zkctl(relay, ["get", path]).stdoutText, "one")

        // Holding: the client hears nothing and gives up within its timeout.
        relay.mode = .hold
        let started = Date()
        let held = try zkctl(relay, ["--timeout", "2s", "get", path])
        let took = Date().timeIntervalSince(started)
        XCTAssertEqual(held.status, 69, held.stderrText)
        XCTAssertLessThan(took, 8, "a held connection must end within the timeout, took \(took) s")
        relay.mode = .pass

        // Dropping the reply to a setData: the write lands, the reply never reaches the client.
        relay.dropNextReply(to: [.setData], then: .refuse)
        _ = try zkctl(relay, ["--timeout", "2s", "set", path, "two"])
        XCTAssertEqual(relay.droppedReplies, [FaultRelay.OpCode.setData.rawValue])
        XCTAssertEqual(try zkctl(nil, ["get", path]).stdoutText, "two", "the write behind the lost reply landed")
        // Refusing: every connection is reset at once.
        let refused = try zkctl(relay, ["--timeout", "2s", "get", path])
        XCTAssertEqual(refused.status, 69, refused.stderrText)
    }
}

/// The client port of a standalone server (its connect string is 127.0.0.1:PORT).
func serverPort(_ server: ZooKeeperServer, member: Int? = nil) throws -> Int {
    let address = member.map { server.memberConnectString($0) } ?? server.connectString
    guard let port = address.split(separator: ":").last.flatMap({ Int($0) }) else {
        throw RelayError("no port in \(address)")
    }
    return port
}
