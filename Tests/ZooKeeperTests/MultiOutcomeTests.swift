import Foundation
import XCTest
@testable import ZooKeeper

/// The rule that tells, after a transaction's answer was lost, whether the server applied it,
/// from what the nodes it touches look like now (no server: the states are made up).
final class MultiOutcomeTests: XCTestCase {
    let session: Int64 = 0x1234

    func stat(version: Int32, czxid: Int64 = 1, mzxid: Int64 = 1, owner: Int64 = 0) -> Stat {
        Stat(czxid: czxid, mzxid: mzxid, version: version, ephemeralOwner: owner)
    }

    func verdict(_ ops: [MultiOp], _ now: [String: (Data, Stat)]) -> String {
        let outcome = MultiOutcome(ops)
        let evidence = outcome.paths.map { outcome.evidence($0, now[$0], session: session) }
        switch MultiOutcome.verdict(evidence) {
        case .applied: return "applied"
        case .notApplied: return "not applied"
        case .unclear: return "unclear"
        }
    }

    func testAVersionedSetAndCreatesAreAppliedWhenTheyCarryOneZxid() {
        let ops: [MultiOp] = [.set("/c/a", data: Data("2".utf8), version: 3), .create("/c/b", data: Data("x".utf8))]
        XCTAssertEqual(verdict(ops, ["/c/a": (Data("2".utf8), stat(version: 4, mzxid: 90)),
                                     "/c/b": (Data("x".utf8), stat(version: 0, czxid: 90, mzxid: 90))]), "applied")
        // The same state, but written by two transactions: not ours for certain.
        XCTAssertEqual(verdict(ops, ["/c/a": (Data("2".utf8), stat(version: 4, mzxid: 90)),
                                     "/c/b": (Data("x".utf8), stat(version: 0, czxid: 91, mzxid: 91))]), "unclear")
    }

    func testNothingOfItThereIsNotApplied() {
        let ops: [MultiOp] = [.set("/c/a", data: Data("2".utf8), version: 3), .create("/c/b", data: Data("x".utf8))]
        XCTAssertEqual(verdict(ops, ["/c/a": (Data("1".utf8), stat(version: 3))]), "not applied")
        // Someone else's node where ours was to be created (never changed since): ours failed.
        XCTAssertEqual(verdict([.create("/c/b", data: Data("x".utf8))], ["/c/b": (Data("y".utf8), stat(version: 0))]), "not applied")
    }

    func testHalfThereIsUnclear() {
        let ops: [MultiOp] = [.create("/t/a", data: Data("1".utf8)), .create("/t/b", data: Data("2".utf8))]
        XCTAssertEqual(verdict(ops, ["/t/a": (Data("1".utf8), stat(version: 0, czxid: 7))]), "unclear")
    }

    func testDeletesAreAppliedWhenEveryNodeIsGone() {
        let ops: [MultiOp] = [.delete("/r/x/y"), .delete("/r/z")]
        XCTAssertEqual(verdict(ops, [:]), "applied")
        XCTAssertEqual(verdict(ops, ["/r/z": (Data(), stat(version: 0))]), "not applied")
    }

    func testAReplacementIsJudgedByTheNodeItLeaves() {
        // delete + create of one path (a service instance replaced): the new node is what counts.
        let ops: [MultiOp] = [.delete("/s/i", version: 0), .create("/s/i", data: Data("new".utf8), mode: .ephemeral)]
        XCTAssertEqual(verdict(ops, ["/s/i": (Data("new".utf8), stat(version: 0, czxid: 5, owner: session))]), "applied")
        XCTAssertEqual(verdict(ops, ["/s/i": (Data("old".utf8), stat(version: 0, czxid: 2))]), "not applied")
        // Our data, but another session's ephemeral node: ours never landed, or it did and was
        // replaced since; nothing tells which.
        XCTAssertEqual(verdict(ops, ["/s/i": (Data("new".utf8), stat(version: 0, czxid: 5, owner: 99))]), "unclear")
    }

    func testOnlyChecksTellNothing() {
        XCTAssertEqual(verdict([.check("/a", version: 1)], [:]), "unclear")
    }
}
