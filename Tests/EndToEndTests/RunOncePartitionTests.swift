import Foundation
import XCTest
import ZKTestSupport

/// run-once through a partition (issue 15): the claim is a persistent node, so the claimer's CMD
/// runs on while it is cut off, nobody else runs it meanwhile, and its end is recorded once the
/// servers can be reached again, with a new session since the old one expired.
final class RunOncePartitionTests: XCTestCase {
    var server: ZooKeeperServer!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
    }

    func zkctl(_ args: [String], timeout: TimeInterval = 60) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), ["-s", server.connectString] + args, environment: faultEnvironment(), timeout: timeout)
    }

    func testAClaimerCutOffMidRunRecordsItsEndAfterTheHealAndNobodyElseRuns() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "run-once-cut").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = uniqueZnodePath("tasks")
        defer { _ = try? zkctl(["delete", "--recursive", root]) }
        let ran = directory + "/ran"
        // Each CMD that runs appends one line; the claimer's takes 3 s.
        let command = ["--", "sh", "-c", "echo $$ >> '\(ran)'; sleep 3"]
        let common = ["--tasks-root", root, "run-once", "nightly", "--key", "k1"]

        let claimer = try BackgroundProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "2s", "--session-timeout", "3s"]
                                            + common + command, environment: faultEnvironment())
        let started = Date().addingTimeInterval(10)
        while Date() < started, !FileManager.default.fileExists(atPath: ran) { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: ran), "the claimer never ran CMD: \(claimer.stderr)")

        // Cut off for three times the session timeout: the server expires the claimer's session, and
        // the end cannot be recorded for some 6 s after CMD ended.
        relay.mode = .hold
        let healAt = Date().addingTimeInterval(9)
        // Four more invocations meanwhile, straight to the server: none runs CMD.
        for i in 1...4 {
            let other = try zkctl(common + command)
            XCTAssertEqual(other.status, 0, "invocation \(i): \(other.stderrText)")
            XCTAssertTrue(other.stderrText.contains("already ran for k1") && other.stderrText.contains("not finished"),
                          "invocation \(i): \(other.stderrText)")
        }
        // Still unfinished while the claimer is cut off (its CMD ended at 3 s).
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: try zkctl(["get", root + "/nightly/k1"]).stdout) as? [String: Any])
        XCTAssertTrue(record["end"] is NSNull || record["end"] == nil, "the end was recorded through a held relay: \(record)")
        Thread.sleep(forTimeInterval: max(0, healAt.timeIntervalSinceNow))
        relay.mode = .pass

        XCTAssertEqual(claimer.waitForExit(seconds: 60), 0, claimer.stderr)
        print("RunOncePartitionTests: the claimer said:\n" + claimer.stderr)
        XCTAssertTrue(claimer.stderr.contains("cannot record the end of the run yet"), claimer.stderr)
        XCTAssertTrue(claimer.stderr.hasSuffix("reached the servers again; done\n"), claimer.stderr)
        let lines = try String(contentsOfFile: ran, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "CMD ran \(lines.count) times")
        let final = try XCTUnwrap(try JSONSerialization.jsonObject(with: try zkctl(["get", root + "/nightly/k1"]).stdout) as? [String: Any])
        XCTAssertEqual(final["exitCode"] as? Int, 0, "\(final)")
        XCTAssertNotNil(final["end"] as? String, "\(final)")
        // A fifth invocation after the heal sees a finished run.
        let after = try zkctl(common + command)
        XCTAssertEqual(after.status, 0)
        XCTAssertTrue(after.stderrText.contains("(exit 0)"), after.stderrText)
    }
}
