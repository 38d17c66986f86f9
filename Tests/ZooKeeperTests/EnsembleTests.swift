import Foundation
import XCTest
import ZKTestSupport
@testable import ZooKeeper

/// The client against a real 3-server ensemble.
final class EnsembleTests: XCTestCase {
    nonisolated(unsafe) static var ensemble: ZooKeeperServer?

    override class func setUp() {
        super.setUp()
        ensemble = try? ZooKeeperServer.ensemble(size: 3)
    }

    override class func tearDown() {
        ensemble?.shutdown()
        ensemble = nil
        super.tearDown()
    }

    func requireEnsemble() throws -> ZooKeeperServer {
        if let e = Self.ensemble { return e }
        // Fail (never skip) with the harness's own reason.
        _ = try ZooKeeperServer.ensemble(size: 3)
        throw ZooKeeperError(.unavailable, message: "ensemble did not start")
    }

    func testStoppingTheConnectedServerFailsOverToAnother() async throws {
        let ensemble = try requireEnsemble()
        let zk = try await ZooKeeperClient.connect(ConnectOptions(connectString: ensemble.connectString,
                                                                  sessionTimeout: .seconds(6), connectTimeout: .seconds(10),
                                                                  requestTimeout: .seconds(15)))
        let path = "/failover-\(UUID().uuidString.prefix(8))"
        try await zk.create(path, data: Data("before".utf8))
        let connected = try XCTUnwrap(zk.connectedServer)
        let port = try XCTUnwrap(Int(connected.split(separator: ":").last ?? ""))
        let member = try XCTUnwrap(ensemble.memberPorts.firstIndex(of: port)) + 1
        try ensemble.stop(member: member)
        defer { try? ensemble.restart(member: member) }

        // The next read goes through another member (the client retries reads on connection loss).
        let (data, _) = try await zk.get(path)
        XCTAssertEqual(data, Data("before".utf8))
        let now = try XCTUnwrap(zk.connectedServer)
        XCTAssertNotEqual(now, connected)
        // Writes work too once reconnected, and the session survived (same id, still connected).
        try await zk.set(path, data: Data("after".utf8))
        let after = try await zk.get(path).data
        XCTAssertEqual(after, Data("after".utf8))
        XCTAssertEqual(zk.state, .connected)
        await zk.close()
    }

    func testEnsembleConfigIsReadable() async throws {
        let ensemble = try requireEnsemble()
        let zk = try await ZooKeeperClient.connect(ConnectOptions(connectString: ensemble.connectString))
        let (data, _) = try await zk.getConfig()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("server.") }.count, 3, text)
        await zk.close()
    }

    func testFourLetterWordReportsModes() async throws {
        let ensemble = try requireEnsemble()
        var modes: [String] = []
        for port in ensemble.memberPorts {
            let answer = try await FourLetterWord.queryAsync(host: "127.0.0.1", port: port, word: "srvr")
            modes.append(FourLetterWord.fields(of: answer)["Mode"] ?? "?")
        }
        XCTAssertEqual(modes.filter { $0 == "leader" }.count, 1, "\(modes)")
        XCTAssertEqual(modes.filter { $0 == "follower" }.count, 2, "\(modes)")
    }
}
