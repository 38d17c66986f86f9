import Foundation
import XCTest
import ZKTestSupport

/// zkctl's lock recipes mixed with real Apache Curator holders (Tests/Peers/CuratorPeer.java)
/// and kazoo, on a real server.
final class CuratorLockTests: XCTestCase {
    var kit: CoordinationKit!

    override func setUpWithError() throws {
        kit = try CoordinationKit(server: try SharedServers.standalone(), label: "curator-lock")
    }

    override func tearDown() {
        kit?.finish()
    }

    /// Reads "start MS WHO"/"end MS WHO" lines (in any interleaving) and returns the most holders at any
    /// moment, and how many runs there were. An end at the same millisecond as a start counts
    /// first: each holder logs its end before it lets go and its start after it took hold.
    static func peakHolders(_ log: String) -> (peak: Int, runs: Int) {
        var events: [(time: Int64, delta: Int)] = []
        for line in log.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let t = Int64(parts[1]) else { continue }
            events.append((t, parts[0] == "start" ? 1 : -1))
        }
        events.sort { $0.time != $1.time ? $0.time < $1.time : $0.delta < $1.delta }
        var now = 0, peak = 0
        for e in events { now += e.delta; peak = max(peak, now) }
        return (peak, events.filter { $0.delta == 1 }.count)
    }

    /// A shell CMD that logs its run to $LOG in milliseconds, as the Curator peer does.
    static func loggedRun(ms: Int, who: String = "zkctl") -> [String] {
        ["sh", "-c", #"echo "start $(date +%s%3N) "# + who + #"" >> "$LOG"; sleep "# + String(format: "%.3f", Double(ms) / 1000)
            + #"; echo "end $(date +%s%3N) "# + who + #"" >> "$LOG""#]
    }

    // MARK: Semaphore

    func testSemaphoreHoldersOfZkctlAndCuratorNeverExceedMax() throws {
        let log = kit.file("log")
        let kit = self.kit!
        let path = kit.locksRoot + "/pool"
        var runs: [CoordinationBackgroundRun] = []
        // Curator first, so that zkctl meets its leases (a JVM takes a while to start).
        for _ in 0..<2 {
            runs.append(kit.background { try kit.curator(["semaphore", path, "2", "300", log, "3"]) })
        }
        try kit.waitUntil("a Curator holder runs") {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("curator") ?? false
        }
        for _ in 0..<3 {
            runs.append(kit.background {
                var last: ProcessResult?
                for _ in 0..<2 {
                    let r = try kit.zkctl(["lock", "pool", "--max", "2", "--"] + Self.loggedRun(ms: 300), env: ["LOG": log])
                    if r.status != 0 { return r }
                    last = r
                }
                return last!
            })
        }
        for run in runs {
            let r = try run.wait()
            XCTAssertEqual(r.status, 0, r.stderrText)
        }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let (peak, count) = Self.peakHolders(text)
        XCTAssertEqual(count, 12, text)
        XCTAssertEqual(peak, 2, "at most 2, and 2 were held at once at some point:\n\(text)")
        // Every lease was given back: nothing is left under leases.
        XCTAssertEqual(try kit.children(path + "/leases"), [])
    }

    func testSemaphoreWaitGivesUpAndLeavesNoNode() throws {
        let ready = kit.file("ready"), release = kit.file("release")
        let kit = self.kit!
        let path = kit.locksRoot + "/single"
        let holder = kit.background { try kit.curator(["semaphore-hold", path, "1", ready, release]) }
        defer { kit.touch(release); _ = try? holder.wait() }
        try kit.waitForFile(ready)
        let r = try kit.zkctl(["lock", "single", "--max", "1", "--wait", "500ms", "--", "true"])
        XCTAssertEqual(r.status, 75, r.stderrText)
        XCTAssertEqual(r.stderrText, "zkctl: lock 'single' not acquired within 500ms\n")
        XCTAssertEqual(try kit.children(path + "/leases").count, 1, "only Curator's lease is left")
        XCTAssertEqual(try kit.children(path + "/locks"), [])
    }
}

extension CoordinationKit {
    /// The children of `path`, sorted, listed through kazoo (independently of zkctl); empty
    /// when the node is gone.
    func children(_ path: String) throws -> [String] {
        let r = try kazoo(["children", path])
        if r.status == 1 { return [] }
        guard r.status == 0 else { throw CoordinationKitError("listing \(path) failed: \(r.stderrText)") }
        return r.stdoutText.split(separator: "\n").map(String.init)
    }
}
