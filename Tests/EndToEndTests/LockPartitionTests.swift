import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The lease rule under partitions (issue 15): contenders of one lock, some reaching the server
/// through a relay that is then made to hold every byte back (the sockets stay open, nothing
/// flows), others connected directly. Each holder's CMD writes a timestamp every 20 ms while it
/// runs; whatever happens, no two holders' runs may overlap.
final class LockPartitionTests: XCTestCase {
    var server: ZooKeeperServer!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
    }

    /// The session timeout the partitioned contenders ask for (the test server grants it).
    let sessionTimeout = 3.0

    /// A CMD that records its run: a file named after its start, one line per 20 ms tick.
    static func tickingCommand(_ directory: String, ticks: Int = 40, side: String = "x") -> [String] {
        ["sh", "-c", "f=\"\(directory)/run-\(side)-\(ticks)-$(date +%s%N)-$$\"; i=0; while [ $i -lt \(ticks) ]; do date +%s%N >> \"$f\"; sleep 0.02; i=$((i+1)); done"]
    }

    struct Run: Sendable {
        var name: String
        var first: Double
        var last: Double
        var ticks: Int
        /// The side of the partition ("p" through the relay, "d" direct), from the name.
        var side: Substring { name.split(separator: "-")[1] }
        /// Whether CMD ran to its end (else it was stopped).
        var complete: Bool { Int(name.split(separator: "-")[2]).map { ticks >= $0 } ?? true }
    }

    /// Every recorded run, in order of start; times in seconds since the epoch.
    static func runs(in directory: String) throws -> [Run] {
        var out: [Run] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasPrefix("run-") {
            let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            let times = text.split(separator: "\n").compactMap { Double($0) }.map { $0 / 1e9 }
            guard let first = times.min(), let last = times.max() else { continue }
            out.append(Run(name: name, first: first, last: last, ticks: times.count))
        }
        return out.sorted { $0.first < $1.first }
    }

    /// Pairs of runs that overlap in time.
    static func overlaps(_ runs: [Run]) -> [(Run, Run)] {
        var found: [(Run, Run)] = []
        for (i, a) in runs.enumerated() {
            for b in runs[(i + 1)...] where b.first <= a.last { found.append((a, b)) }
        }
        return found
    }

    final class Trial: @unchecked Sendable {
        // Unchecked: `results` is guarded by `lock`; the rest is set before the threads start.
        let lock = NSLock()
        var results: [(side: String, result: ProcessResult)] = []
        var stop = false
        func add(_ side: String, _ r: ProcessResult) { lock.lock(); results.append((side, r)); lock.unlock() }
        var stopped: Bool { lock.lock(); defer { lock.unlock() }; return stop }
        func finish() { lock.lock(); stop = true; lock.unlock() }
    }

}

/// One trial's contenders and relay.
struct LockTrial: Sendable {
    let port: Int
    let connectString: String
    let sessionTimeout: Double
    typealias Run = LockPartitionTests.Run

    /// One trial: `partitioned` contenders through a relay, `direct` ones straight to the server,
    /// each running `zkctl lock` again and again; the relay holds everything back at
    /// `partitionAt` seconds for `holdFor` seconds. Returns the runs, the relay-side results and
    /// the partition's start (epoch seconds).
    func run(lock name: String, partitioned: Int, direct: Int, partitionAt: Double, holdFor: Double,
             directory: String) throws -> (runs: [Run], results: [(side: String, result: ProcessResult)], partition: Double) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let relay = try FaultRelay(upstreamPort: port)
        defer { relay.stop() }
        let state = LockPartitionTests.Trial()
        let session = "\(Int(sessionTimeout * 1000))ms"
        var threads: [Thread] = []
        for i in 0..<(partitioned + direct) {
            let side = i < partitioned ? "p" : "d"
            let servers = i < partitioned ? relay.address : connectString
            // CMD runs from 0.2 s to about 3.5 s, so that the partition finds holders early and late.
            let ticks = 10 + (i * 37) % 150
            let args = ["-s", servers, "--timeout", "2s", "--session-timeout", session, "lock", "--wait", "20s", name, "--"]
                + LockPartitionTests.tickingCommand(directory, ticks: ticks, side: side)
            let t = Thread {
                while !state.stopped {
                    if let r = try? runProcess(zkctlBinaryPath(), args, environment: faultEnvironment(), timeout: 60) {
                        state.add(side, r)
                    }
                }
            }
            threads.append(t)
            t.start()
        }
        if partitionAt < 0 {
            // Just after a contender on the relay's side started its CMD (within -partitionAt s).
            let deadline = Date().addingTimeInterval(20)
            let seen = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            while Date() < deadline {
                let now = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                if now.subtracting(seen).contains(where: { $0.hasPrefix("run-p-") }) { break }
                Thread.sleep(forTimeInterval: 0.01)
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0...(-partitionAt)))
        } else {
            Thread.sleep(forTimeInterval: partitionAt)
        }
        relay.mode = .hold
        let partition = Date().timeIntervalSince1970
        Thread.sleep(forTimeInterval: holdFor)
        relay.mode = .pass
        Thread.sleep(forTimeInterval: 1.5)
        state.finish()
        let deadline = Date().addingTimeInterval(90)
        while threads.contains(where: { !$0.isFinished }) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if threads.contains(where: { !$0.isFinished }) { throw RelayError("\(name): contenders still running after 90 s") }
        return (try LockPartitionTests.runs(in: directory), state.lock.withLock { state.results }, partition)
    }
}

extension LockPartitionTests {

    /// 20 trials, five at a time, with the partition at a random moment of the contenders' cycle
    /// (while waiting, right after acquiring, while CMD runs), two to four contenders on each
    /// side: no two runs ever overlap, and a holder cut off is stopped before its session could
    /// expire.
    func testNoTwoHoldersEverOverlapAcrossPartitions() throws {
        var rng = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64(UInt32.max), using: &rng)
        var random = SplitMix(seed: seed)
        let base = try ZKTestPaths.makeTemporaryDirectory(label: "lock-partition").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let total = 20, parallel = 5
        var overlapCount = 0, runCount = 0
        var stopTimes: [Double] = []
        var statuses: [Int32: Int] = [:]
        for round in 0..<(total / parallel) {
            let plans = (0..<parallel).map { i in
                (name: "partition-\(seed)-\(round)-\(i)", partitioned: Int.random(in: 2...4, using: &random),
                 direct: Int.random(in: 2...4, using: &random),
                 // Twelve trials at a random moment, eight just after (up to 0.5 s) a contender
                 // behind the relay acquired the lock.
                 at: i % 2 == 0 ? Double.random(in: 0.3...2.5, using: &random) : -0.5)
            }
            let results = LockedResults()
            let runner = LockTrial(port: try serverPort(server), connectString: server.connectString, sessionTimeout: sessionTimeout)
            let hold = sessionTimeout + 1.0
            var threads: [Thread] = []
            for plan in plans {
                let t = Thread {
                    do {
                        let r = try runner.run(lock: plan.name, partitioned: plan.partitioned, direct: plan.direct,
                                               partitionAt: plan.at, holdFor: hold, directory: base + "/" + plan.name)
                        results.add(plan.name, r.runs, r.results, r.partition)
                    } catch {
                        results.fail("\(plan.name): \(error)")
                    }
                }
                threads.append(t)
                t.start()
            }
            let deadline = Date().addingTimeInterval(180)
            while threads.contains(where: { !$0.isFinished }) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            XCTAssertFalse(threads.contains { !$0.isFinished }, "a trial did not finish within 180 s")
            for failure in results.failures { XCTFail(failure) }
            for (name, runs, processResults, partition) in results.all {
                runCount += runs.count
                let found = Self.overlaps(runs)
                overlapCount += found.count
                for (a, b) in found {
                    XCTFail("\(name): runs overlap: \(a.name) \(a.first)...\(a.last) and \(b.name) \(b.first)...\(b.last)")
                }
                // A run of the partitioned side going on at the partition and stopped before its
                // end: how long after the partition it was stopped.
                for run in runs where run.side == "p" && !run.complete && run.first < partition && run.last > partition {
                    stopTimes.append(run.last - partition)
                }
                for (side, r) in processResults {
                    statuses[r.status, default: 0] += 1
                    // 75: the lock was lost (or not acquired in time; on the direct side only when
                    // a heartbeat came too late on a busy machine, which is safe); 69, on the
                    // partitioned side only: the servers did not answer (waiting, or connecting).
                    let expected: [Int32] = side == "p" ? [0, 69, 75] : [0, 75]
                    if !expected.contains(r.status) { XCTFail("\(name): zkctl lock (\(side)) exited \(r.status): \(r.stderrText)") }
                }
            }
        }
        XCTAssertGreaterThan(runCount, total * 2, "too few runs to say anything")
        XCTAssertFalse(stopTimes.isEmpty, "no trial caught a holder at the partition")
        // Stopped before the session could expire, with the lease's margin: by 2/3 of it, plus
        // scheduling slack on a busy machine.
        for t in stopTimes { XCTAssertLessThan(t, sessionTimeout, "a cut-off holder's CMD ran \(t) s into the partition") }
        let worst = stopTimes.max() ?? 0
        print("LockPartitionTests: seed \(seed); \(total) trials, \(runCount) runs, \(overlapCount) overlaps; "
              + "\(stopTimes.count) cut-off holders stopped \(String(format: "%.2f", stopTimes.min() ?? 0))..."
              + "\(String(format: "%.2f", worst)) s after the partition (session timeout \(sessionTimeout) s); exits \(statuses.sorted { $0.key < $1.key })")
    }

    /// A partition shorter than the lease leaves the holder alone: CMD runs to its end and zkctl
    /// exits with CMD's code.
    func testAHolderThatKeepsItsSessionKeepsRunning() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "lock-blip").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let name = "blip-\(UUID().uuidString.prefix(8))"
        // Session timeout 10 s, grace 3.3 s: SIGTERM only after 3.3 s without an answer.
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", relay.address, "--session-timeout", "10s", "lock", name, "--"]
                                           + Self.tickingCommand(directory, ticks: 150), environment: faultEnvironment())
        XCTAssertTrue(waitFor(10) { ((try? Self.runs(in: directory)) ?? []).count == 1 }, "CMD never started: \(holder.stderr)")
        Thread.sleep(forTimeInterval: 0.5)
        relay.mode = .hold
        Thread.sleep(forTimeInterval: 1.5)
        relay.mode = .pass
        XCTAssertEqual(holder.waitForExit(seconds: 30), 0, holder.stderr)
        XCTAssertEqual(holder.stderr, "")
        let run = try XCTUnwrap(try Self.runs(in: directory).first)
        let lines = try String(contentsOfFile: directory + "/" + run.name, encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(lines, 150, "CMD did not run to its end")
    }

    /// A partition longer than the lease: CMD gets SIGTERM, then SIGKILL, before the session could
    /// expire; zkctl says why and exits 75; another contender gets the lock only after that.
    func testACutOffHolderStopsCMDBeforeItsSessionCouldExpire() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "lock-cut").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let name = "cut-\(UUID().uuidString.prefix(8))"
        // CMD ignores SIGTERM, so only the SIGKILL at 2/3 of the session timeout stops it.
        let stubborn = ["sh", "-c", "trap '' TERM; f=\"\(directory)/run-s-0-$(date +%s%N)-$$\"; while :; do date +%s%N >> \"$f\"; sleep 0.02; done"]
        let holder = try BackgroundProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "2s", "--session-timeout", "3s",
                                                               "lock", "--grace", "500ms", name, "--"] + stubborn,
                                           environment: faultEnvironment())
        XCTAssertTrue(waitFor(10) { ((try? Self.runs(in: directory)) ?? []).count == 1 }, "CMD never started: \(holder.stderr)")
        relay.mode = .hold
        let partition = Date().timeIntervalSince1970
        // The next holder, connected directly, gets the lock once the server expires the session.
        let next = try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "lock", "--wait", "20s", name, "--"]
                                  + Self.tickingCommand(directory, ticks: 5), environment: faultEnvironment(), timeout: 40)
        XCTAssertEqual(next.status, 0, next.stderrText)
        let status = holder.waitForExit(seconds: 20)
        relay.mode = .pass
        XCTAssertEqual(status, 75, holder.stderr)
        XCTAssertTrue(holder.stderr.hasPrefix("zkctl: lock '\(name)' lost while CMD ran (the servers did not answer for "), holder.stderr)
        XCTAssertTrue(holder.stderr.contains("CMD was stopped (killed by SIGKILL)"), holder.stderr)
        let all = try Self.runs(in: directory)
        XCTAssertEqual(all.count, 2)
        XCTAssertTrue(Self.overlaps(all).isEmpty, "the runs overlap: \(all)")
        let stoppedAfter = all[0].last - partition
        // SIGTERM at 2/3 T - grace = 1.5 s (ignored), SIGKILL at 2/3 T = 2 s; expiry from 3 s on.
        XCTAssertGreaterThan(stoppedAfter, 1.0, "stopped before the lease ran out")
        XCTAssertLessThan(stoppedAfter, 3.0, "not stopped before the session could expire")
        XCTAssertGreaterThan(all[1].first - all[0].last, 0.5, "the next holder started too close to the first's end")
        print("LockPartitionTests: cut-off holder's CMD killed \(String(format: "%.2f", stoppedAfter)) s after the partition "
              + "(session timeout 3 s); next holder started \(String(format: "%.2f", all[1].first - partition)) s after it")
    }

    /// The lease rule for `service register --ephemeral -- CMD`: cut off for longer than the
    /// lease, CMD is stopped before the registration could expire and zkctl exits 75; once the
    /// servers answer again the instance is gone.
    func testASidecarIsStoppedBeforeItsRegistrationCouldExpire() throws {
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "sidecar-cut").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let root = uniqueZnodePath("services")
        let sidecar = try BackgroundProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "2s", "--session-timeout", "3s",
                                                                "--services-root", root, "service", "register", "api", "127.0.0.1", "9000",
                                                                "--id", "a1", "--ephemeral", "--"] + Self.tickingCommand(directory, ticks: 1000),
                                            environment: faultEnvironment())
        XCTAssertTrue(waitFor(10) { ((try? Self.runs(in: directory)) ?? []).count == 1 }, "CMD never started: \(sidecar.stderr)")
        relay.mode = .hold
        let partition = Date().timeIntervalSince1970
        let status = sidecar.waitForExit(seconds: 20)
        let exited = Date().timeIntervalSince1970 - partition
        relay.mode = .pass
        XCTAssertEqual(status, 75, sidecar.stderr)
        XCTAssertTrue(sidecar.stderr.contains("zkctl: the registration of api/a1 may have expired (the servers did not answer for too long); 'sh' was stopped (killed by SIGTERM)"), sidecar.stderr)
        let run = try XCTUnwrap(try Self.runs(in: directory).first)
        XCTAssertLessThan(run.last - partition, 2.0, "CMD ran on past 2/3 of the session timeout")
        XCTAssertLessThan(exited, 10)
        // zkctl could not close the session through the held relay: the server expires it.
        XCTAssertTrue(waitFor(15) { (try? self.zkctl(["-s", self.server.connectString, "exists", root + "/api/a1"]).status) == 1 },
                      "the instance outlived its session")
        _ = try zkctl(["-s", server.connectString, "delete", "--recursive", root])
    }

    func zkctl(_ args: [String]) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), args, environment: faultEnvironment(), timeout: 30)
    }

    func waitFor(_ seconds: TimeInterval, _ predicate: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if predicate() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return predicate()
    }
}

/// The trials' outcomes, gathered from their threads.
final class LockedResults: @unchecked Sendable {
    // Unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var entries: [(String, [LockPartitionTests.Run], [(side: String, result: ProcessResult)], Double)] = []
    private var failed: [String] = []
    func add(_ name: String, _ runs: [LockPartitionTests.Run], _ results: [(side: String, result: ProcessResult)], _ partition: Double) {
        lock.withLock { entries.append((name, runs, results, partition)) }
    }
    func fail(_ message: String) { lock.withLock { failed.append(message) } }
    var all: [(String, [LockPartitionTests.Run], [(side: String, result: ProcessResult)], Double)] { lock.withLock { entries } }
    var failures: [String] { lock.withLock { failed } }
}
