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

/// `zkctl elect` with real Curator LeaderLatch participants.
final class CuratorElectionTests: XCTestCase {
    var kit: CoordinationKit!
    var electionsRoot: String { kit.root + "/elections" }

    override func setUpWithError() throws {
        kit = try CoordinationKit(server: try SharedServers.standalone(), label: "curator-elect")
    }

    override func tearDown() {
        kit?.finish()
    }

    func zkctl(_ args: [String], env: [String: String] = [:]) throws -> ProcessResult {
        try kit.zkctl(["--elections-root", electionsRoot] + args, env: env)
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
    }

    func testOneLeaderAcrossZkctlAndCuratorTakingOverFromEachOther() throws {
        let kit = self.kit!, root = electionsRoot
        let path = root + "/scheduler"
        let log = kit.file("log"), go = kit.file("zkctl-go")
        let readyA = kit.file("a-ready"), releaseA = kit.file("a-release")
        let readyB = kit.file("b-ready"), releaseB = kit.file("b-release")
        let curatorA = kit.background { try kit.curator(["elect", path, "curator-a", readyA, releaseA, log]) }
        defer { kit.touch(releaseA); kit.touch(releaseB); kit.touch(go); _ = try? curatorA.wait() }
        try kit.waitForFile(readyA)

        let script = #"echo "leader $ID $(date +%s%3N)" >> "$LOG"; while [ ! -e "$GO" ]; do sleep 0.02; done; echo "close $ID $(date +%s%3N)" >> "$LOG""#
        let zkctl = kit.background {
            try kit.zkctl(["--elections-root", root, "elect", "scheduler", "--id", "zkctl-1", "--", "sh", "-c", script],
                          env: ["LOG": log, "GO": go, "ID": "zkctl-1"])
        }
        try kit.waitUntil("zkctl is a candidate") { try kit.children(path).count == 2 }

        // Status, from zkctl and from Curator: Curator leads, zkctl waits.
        var r = try self.zkctl(["-o", "json", "elect", "scheduler", "--status"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let status = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(status["leader"] as? String, "curator-a")
        let participants = try XCTUnwrap(status["participants"] as? [[String: Any]])
        XCTAssertEqual(participants.map { $0["id"] as? String }, ["curator-a", "zkctl-1"])
        XCTAssertEqual(participants.map { $0["leader"] as? Bool }, [true, false])
        XCTAssertTrue((participants[1]["node"] as? String)?.contains("-latch-") ?? false, "\(participants)")
        r = try self.zkctl(["elect", "scheduler", "--status"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let table = r.stdoutText.split(separator: "\n")
        XCTAssertEqual(table.count, 3, r.stdoutText)
        XCTAssertTrue(table[1].hasPrefix("leader") && table[1].contains("curator-a"), r.stdoutText)
        XCTAssertTrue(table[2].hasPrefix("candidate") && table[2].contains("zkctl-1"), r.stdoutText)

        // Curator closes its latch: zkctl takes over, and Curator's getLeader() names it.
        kit.touch(releaseA)
        XCTAssertEqual(try curatorA.wait().status, 0)
        try kit.waitUntil("zkctl leads") { self.lines(log).contains("leader zkctl-1") }
        r = try kit.curator(["leader", path])
        XCTAssertEqual(r.stdoutText, "zkctl-1\n", r.stderrText)

        // A second Curator participant waits; once zkctl's CMD ends, it leads.
        let curatorB = kit.background { try kit.curator(["elect", path, "curator-b", readyB, releaseB, log]) }
        try kit.waitUntil("Curator B is a candidate") { try kit.children(path).count == 2 }
        XCTAssertFalse(FileManager.default.fileExists(atPath: readyB), "B must not lead while zkctl does")
        kit.touch(go)
        let z = try zkctl.wait()
        XCTAssertEqual(z.status, 0, z.stderrText)
        try kit.waitForFile(readyB)
        kit.touch(releaseB)
        XCTAssertEqual(try curatorB.wait().status, 0)
        XCTAssertEqual(lines(log), ["leader curator-a", "close curator-a", "leader zkctl-1", "close zkctl-1",
                                    "leader curator-b", "close curator-b"])
    }

    func testLeadershipLostStopsCommand() throws {
        // The node deleted under the leader (as an expired session would): CMD is stopped, exit 75.
        let kit = self.kit!, root = electionsRoot
        let started = kit.file("started")
        let leader = kit.background {
            try kit.zkctl(["--elections-root", root, "elect", "lost", "--grace", "1s", "--", "sh", "-c", #"touch "$STARTED"; exec sleep 60"#],
                          env: ["STARTED": started])
        }
        try kit.waitForFile(started)
        let nodes = try kit.children(root + "/lost")
        XCTAssertEqual(nodes.count, 1)
        let d = try zkctl(["delete", root + "/lost/" + nodes[0]])
        XCTAssertEqual(d.status, 0, d.stderrText)
        let r = try leader.wait()
        XCTAssertEqual(r.status, 75, r.stderrText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: leadership of 'lost' lost while CMD ran (its node "), r.stderrText)
    }

    func testStatusOfMissingElectionAndUsage() throws {
        var r = try zkctl(["elect", "nobody", "--status"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrText, "zkctl: no election 'nobody' (\(electionsRoot)/nobody does not exist)\n")
        r = try zkctl(["elect", "nobody"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: missing '-- CMD [ARGS...]'"), r.stderrText)
        // The root comes from the environment too.
        r = try kit.zkctl(["elect", "nobody", "--status"], env: ["ZKCTL_ELECTIONS_ROOT": electionsRoot + "-env"])
        XCTAssertEqual(r.stderrText, "zkctl: no election 'nobody' (\(electionsRoot)-env/nobody does not exist)\n")
    }
}

/// `zkctl lock --read|--write` with Curator's InterProcessReadWriteLock and kazoo's ReadLock,
/// and `lock --status`.
final class CuratorReadWriteLockTests: XCTestCase {
    var kit: CoordinationKit!

    override func setUpWithError() throws {
        kit = try CoordinationKit(server: try SharedServers.standalone(), label: "curator-rw")
    }

    override func tearDown() {
        kit?.finish()
    }

    /// Runs of a log of "start MS WHO"/"end MS WHO" lines, in start order.
    static func runs(_ log: String) -> [(who: String, start: Int64, end: Int64)] {
        var open: [String: [Int64]] = [:]
        var done: [(who: String, start: Int64, end: Int64)] = []
        for line in log.split(separator: "\n") {
            let p = line.split(separator: " ").map(String.init)
            guard p.count == 3, let t = Int64(p[1]) else { continue }
            if p[0] == "start" { open[p[2], default: []].append(t) }
            else if var starts = open[p[2]], !starts.isEmpty { done.append((p[2], starts.removeFirst(), t)); open[p[2]] = starts }
        }
        return done.sorted { $0.start < $1.start }
    }

    func testZkctlWriterNeverOverlapsCuratorOrKazooReaders() throws {
        let kit = self.kit!
        let log = kit.file("log")
        let path = kit.locksRoot + "/table"
        var background: [CoordinationBackgroundRun] = []
        // A Curator reader holds; zkctl's writer queues behind it.
        background.append(kit.background { try kit.curator(["read-lock", path, "800", log]) })
        try kit.waitUntil("the first Curator reader holds") {
            (try? String(contentsOfFile: log, encoding: .utf8))?.contains("curator-reader") ?? false
        }
        background.append(kit.background {
            try kit.zkctl(["lock", "table", "--write", "--"] + CuratorLockTests.loggedRun(ms: 400, who: "zkctl-writer"), env: ["LOG": log])
        })
        try kit.waitUntil("zkctl's writer waits") { try kit.children(path).count == 2 }
        let queued = try kit.children(path)
        XCTAssertTrue(queued.contains { $0.contains("-__WRIT__") }, "\(queued)")
        // Readers that come after the writer wait for it: kazoo's, Curator's and zkctl's.
        background.append(kit.background { try kit.kazoo(["read-lock", path, "600", log]) })
        background.append(kit.background { try kit.curator(["read-lock", path, "600", log]) })
        background.append(kit.background {
            try kit.zkctl(["lock", "table", "--read", "--"] + CuratorLockTests.loggedRun(ms: 600, who: "zkctl-reader"), env: ["LOG": log])
        })
        for run in background {
            let r = try run.wait()
            XCTAssertEqual(r.status, 0, r.stderrText)
        }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let runs = Self.runs(text)
        XCTAssertEqual(runs.count, 5, text)
        let writer = try XCTUnwrap(runs.first { $0.who == "zkctl-writer" }, text)
        for reader in runs where reader.who != "zkctl-writer" {
            XCTAssertTrue(reader.end <= writer.start || reader.start >= writer.end,
                          "\(reader.who) \(reader.start)...\(reader.end) overlaps the writer \(writer.start)...\(writer.end):\n\(text)")
        }
        XCTAssertEqual(runs.first?.who, "curator-reader", text)
        // Readers share: those after the writer held the lock together.
        let later = runs.filter { $0.start >= writer.end }
        XCTAssertEqual(later.count, 3, text)
        XCTAssertGreaterThanOrEqual(CuratorLockTests.peakHolders(text.split(separator: "\n").filter { !$0.hasSuffix("zkctl-writer") }
                                                                    .joined(separator: "\n")).peak, 2, text)
        XCTAssertEqual(try kit.children(path), [])
    }

    func testStatusNamesCuratorHolderAndZkctlWaiter() throws {
        let kit = self.kit!
        let ready = kit.file("ready"), release = kit.file("release")
        let path = kit.locksRoot + "/held"
        let holder = kit.background { try kit.curator(["hold-mutex", path, ready, release]) }
        defer { kit.touch(release); _ = try? holder.wait() }
        try kit.waitForFile(ready, nonEmpty: true)
        let held = try String(contentsOfFile: ready, encoding: .utf8).trimmingCharacters(in: .newlines).split(separator: " ", maxSplits: 1).map(String.init)
        XCTAssertEqual(held.count, 2, "Curator's node and data: \(held)")
        let waiter = kit.background { try kit.zkctl(["lock", "held", "--wait", "60s", "--", "true"]) }
        try kit.waitUntil("zkctl waits") { try kit.children(path).count == 2 }

        var r = try kit.zkctl(["-o", "json", "lock", "--status", "held"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        let status = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        let holders = try XCTUnwrap(status["holders"] as? [[String: Any]])
        let waiters = try XCTUnwrap(status["waiters"] as? [[String: Any]])
        XCTAssertEqual(holders.count, 1)
        XCTAssertEqual(holders.first?["node"] as? String, held[0])
        XCTAssertEqual(holders.first?["data"] as? String, held[1], "the data Curator writes (the client's IP address)")
        XCTAssertEqual(holders.first?["kind"] as? String, "lock")
        XCTAssertEqual(waiters.count, 1)
        XCTAssertTrue((waiters.first?["data"] as? String)?.contains(":") ?? false, "zkctl writes host:pid: \(waiters)")
        XCTAssertNotEqual(holders.first?["session"] as? String, waiters.first?["session"] as? String)
        // The owning clients, from the server's connection list: both on loopback, not the same.
        let holderClient = try XCTUnwrap(holders.first?["client"] as? String, "\(holders)")
        let waiterClient = try XCTUnwrap(waiters.first?["client"] as? String, "\(waiters)")
        XCTAssertTrue(holderClient.hasPrefix("127.0.0.1:") && waiterClient.hasPrefix("127.0.0.1:"), "\(holderClient) \(waiterClient)")
        XCTAssertNotEqual(holderClient, waiterClient)
        XCTAssertNotNil(holders.first?["since"] as? Int)

        r = try kit.zkctl(["lock", "--status", "held"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, r.stdoutText)
        XCTAssertTrue(lines[0].hasPrefix("ROLE"), r.stdoutText)
        XCTAssertTrue(lines[1].hasPrefix("holder") && lines[1].contains(held[1]) && lines[1].contains(holderClient), r.stdoutText)
        XCTAssertTrue(lines[2].hasPrefix("waiting"), r.stdoutText)

        kit.touch(release)
        XCTAssertEqual(try waiter.wait().status, 0)
        r = try kit.zkctl(["lock", "--status", "missing"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrText, "zkctl: no lock 'missing' (\(kit.locksRoot)/missing does not exist)\n")
    }

    func testStatusOfSemaphoreShowsLeases() throws {
        let kit = self.kit!
        let ready = kit.file("ready"), release = kit.file("release")
        let holder = kit.background { try kit.curator(["semaphore-hold", kit.locksRoot + "/pool", "2", ready, release]) }
        defer { kit.touch(release); _ = try? holder.wait() }
        try kit.waitForFile(ready)
        let r = try kit.zkctl(["-o", "json", "lock", "--status", "pool", "--max", "2"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let status = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        let holders = try XCTUnwrap(status["holders"] as? [[String: Any]])
        XCTAssertEqual(holders.map { $0["kind"] as? String }, ["lease"])
        XCTAssertTrue((holders.first?["node"] as? String)?.contains("/pool/leases/_c_") ?? false, "\(holders)")
    }
}

/// The lease rule for `elect`: a leader cut off from the servers stops CMD before its session
/// could expire, and only then can a Curator participant take over.
final class ElectionPartitionTests: XCTestCase {
    func testACutOffLeaderStopsBeforeCuratorTakesOver() throws {
        let server = try SharedServers.standalone()
        let kit = try CoordinationKit(server: server, label: "elect-cut")
        defer { kit.finish() }
        let relay = try FaultRelay(upstreamPort: serverPort(server))
        defer { relay.stop() }
        let root = kit.root + "/elections"
        let ticks = kit.file("ticks"), log = kit.file("log")
        let ready = kit.file("curator-ready"), release = kit.file("curator-release")
        // CMD ignores SIGTERM, so only the SIGKILL at 2/3 of the session timeout stops it.
        let stubborn = ["sh", "-c", #"trap '' TERM; while :; do date +%s%3N >> "$TICKS"; sleep 0.02; done"#]
        let leader = try BackgroundProcess(zkctlBinaryPath(), ["-s", relay.address, "--timeout", "2s", "--session-timeout", "3s",
                                                               "--elections-root", root, "elect", "cut", "--id", "zkctl-cut",
                                                               "--grace", "500ms", "--"] + stubborn,
                                           environment: faultEnvironment(["TICKS": ticks]))
        defer { leader.kill() }
        try kit.waitForFile(ticks, nonEmpty: true)
        let curator = kit.background { try kit.curator(["elect", root + "/cut", "curator-next", ready, release, log]) }
        defer { kit.touch(release); _ = try? curator.wait() }
        try kit.waitUntil("Curator is a candidate") { try kit.children(root + "/cut").count == 2 }

        relay.mode = .hold
        let partition = Int64(Date().timeIntervalSince1970 * 1000)
        let status = leader.waitForExit(seconds: 20)
        try kit.waitForFile(ready)
        relay.mode = .pass
        XCTAssertEqual(status, 75, leader.stderr)
        XCTAssertTrue(leader.stderr.hasPrefix("zkctl: leadership of 'cut' lost while CMD ran (the servers did not answer for "), leader.stderr)
        XCTAssertTrue(leader.stderr.contains("CMD was stopped (killed by SIGKILL)"), leader.stderr)
        let lastTick = try XCTUnwrap(Int64(try String(contentsOfFile: ticks, encoding: .utf8).split(separator: "\n").last ?? ""))
        let took = try XCTUnwrap(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").first
            .flatMap { Int64($0.split(separator: " ")[2]) })
        // SIGKILL at 2/3 T = 2 s; the server may expire the session from 3 s on.
        XCTAssertLessThan(lastTick - partition, 3000, "CMD ran on past the session timeout")
        XCTAssertGreaterThan(took - lastTick, 500, "Curator led too close to the end of zkctl's CMD")
        print("ElectionPartitionTests: zkctl's CMD killed \(lastTick - partition) ms after the partition (session timeout 3 s); "
              + "Curator leader \(took - partition) ms after it")
    }
}
