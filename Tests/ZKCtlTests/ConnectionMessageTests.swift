import Foundation
import XCTest
import ZooKeeper
@testable import ZKCtl

/// The lines a user sees when no session starts or a connection goes (issue 23, items 4 and 8),
/// from the pieces that build them: the srvr probe's classification, its one-line explanation and
/// ExitCode.message.
final class ConnectionMessageTests: XCTestCase {
    func server(_ port: Int) -> ConnectString.Server { ConnectString.Server(host: "127.0.0.1", port: port) }

    func testSrvrAnswersAreClassified() {
        XCTAssertEqual(FourLetterWord.classify("This ZooKeeper instance is not currently serving requests\n"), .notServing)
        XCTAssertEqual(FourLetterWord.classify("Zookeeper version: 3.8.0-debian, built on 2022-01-01\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n"),
                       .serving(mode: "follower"))
        XCTAssertEqual(FourLetterWord.classify("srvr is not executed because it is not in the whitelist.\n"), .wordRefused)
        XCTAssertEqual(FourLetterWord.classify("HTTP/1.1 400 Bad Request\r\n\r\n"), .notZooKeeper)
        XCTAssertEqual(FourLetterWord.classify(""), .notZooKeeper)
    }

    func testNoQuorumIsToldFromNothingListening() {
        let waited = Duration.seconds(3)
        XCTAssertEqual(FourLetterWord.explain([(server(1), .notServing), (server(2), .unreachable("connection refused"))], waited: waited),
                       "not serving: no quorum within 3000 ms; tried 127.0.0.1:1: accepts connections but is not serving, 127.0.0.1:2: connection refused")
        XCTAssertEqual(FourLetterWord.explain([(server(1), .unreachable("connection refused")), (server(2), .unreachable("connection refused"))], waited: waited),
                       "no server reachable within 3000 ms; tried 127.0.0.1:1: connection refused, 127.0.0.1:2: connection refused")
        XCTAssertEqual(FourLetterWord.explain([(server(1), .serving(mode: "read-only"))], waited: waited),
                       "not serving: no quorum (read-only servers only) within 3000 ms; tried 127.0.0.1:1: serves (read-only) but gave no session")
        XCTAssertEqual(FourLetterWord.explain([(server(1), .notZooKeeper), (server(2), .silent)], waited: waited),
                       "no ZooKeeper server reachable within 3000 ms; tried 127.0.0.1:1: answers, but not as a ZooKeeper server, 127.0.0.1:2: accepts connections but does not answer")
        let v6 = ConnectString.Server(host: "::1", port: 2181)
        XCTAssertEqual(FourLetterWord.explain([(v6, .unreachable("connection refused"))], waited: waited),
                       "no server reachable within 3000 ms; tried [::1]:2181: connection refused")
    }

    func testConnectionProblemsLeadWithTheServersNotThePath() {
        let lost = ZooKeeperError(.connectionLoss, path: "/x", message: "lost the connection to the servers (h:1) before the answer came")
        XCTAssertEqual(ExitCode.message(for: lost), "lost the connection to the servers (h:1) before the answer came (request on /x)")
        XCTAssertEqual(ExitCode.code(for: lost), 69)
        let timeout = ZooKeeperError(.operationTimeout, path: "/x", message: "no answer from the servers (h:1) within 2000 ms")
        XCTAssertEqual(ExitCode.message(for: timeout), "no answer from the servers (h:1) within 2000 ms (request on /x)")
        // Other errors still name the path first.
        XCTAssertEqual(ExitCode.message(for: ZooKeeperError(.noNode, path: "/x")), "/x: no such znode")
    }

    func testAMissingChrootIsNamedWithExit1() {
        let e = ZooKeeperError.missingChroot("/app")
        XCTAssertEqual(e.missingChroot, "/app")
        XCTAssertNil(e.path)
        XCTAssertEqual(ExitCode.message(for: e), "chroot /app does not exist")
        XCTAssertEqual(ExitCode.code(for: e), 1)
        // A plain noNode without a path keeps the usual words.
        XCTAssertEqual(ExitCode.message(for: ZooKeeperError(.noNode)), "no such znode")
    }
}
