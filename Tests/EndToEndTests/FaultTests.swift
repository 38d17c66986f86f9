import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// zkctl while servers fail: a 3-server ensemble on loopback whose members are stopped, killed
/// (SIGKILL) and restarted, the leader and every other member in turn (so whichever member a
/// long-running zkctl is connected to goes down at least once), while `tree`, `config list`,
/// `config set --merge` loops, `config set`, `import`, `lock`, `config watch` and
/// `service register --ephemeral` run through the binary. Then no quorum, and servers that are not
/// there at all.
///
/// Every command either succeeds with correct output or fails with its documented exit code and
/// exactly one `zkctl: ` line on stderr (nothing on stdout), before its process limit. Every loop
/// has an iteration count and a deadline, so the suite's run time stays bounded.
final class FaultTests: XCTestCase {
    /// Bounds of the worker loops under faults.
    static let mergeCount = 400
    static let keyCount = 200
    static let importCount = 30

    // MARK: Faults while commands run

    func testCommandsUnderStopsKillsAndRestartsOfEveryMember() throws {
        let ensemble = try ZooKeeperServer.ensemble(size: 3)
        defer { ensemble.shutdown() }
        let kit = try FaultKit(servers: ensemble.connectString, label: "faults")
        defer { kit.finish() }

        // Before the faults: a seed key, an import file of 40 nodes (one transaction), and the
        // long-running commands.
        try kit.expect(["config", "set", "seed", #"{"seed":1}"#], 0)
        let importFile = try kit.writeExport(nodeCount: 40)
        let watch = try kit.background(["-o", "json", "config", "watch"])
        defer { watch.kill() }
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""key":"seed""#) },
                      "config watch did not print the initial value: \(watch.stderr)")
        let service = try kit.background(["service", "register", "svc", "127.0.0.1", "9000", "--id", "inst-1", "--ephemeral"])
        defer { service.kill() }
        let childPidFile = kit.file("held-child.pid")
        let held = try kit.background(["lock", "held", "--", "sh", "-c", "echo $$ > '\(childPidFile)'; exec sleep 600"])
        defer { held.kill() }
        XCTAssertTrue(kit.waitForFile(childPidFile, timeout: 30), "lock did not start its child: \(held.stderr)")
        XCTAssertTrue(kit.waitUntil(timeout: 30) { (try? kit.run(["exists", kit.servicesRoot + "/svc/inst-1"]).status) == 0 },
                      "the ephemeral instance was not registered: \(service.stderr)")

        // The workers: each loop has an iteration count and a deadline.
        let log = CommandLog()
        let deadline = Date().addingTimeInterval(150)
        let stop = StopFlag()
        // Each loop goes on until the faults are over, at most `count` times and until the deadline,
        // pausing `pause` seconds between runs.
        func loop(_ count: Int, pause: TimeInterval = 0, _ body: @escaping @Sendable (Int) -> Void) -> Thread {
            let thread = Thread {
                for i in 0..<count {
                    if Date() >= deadline || stop.isSet { break }
                    body(i)
                    if pause > 0 { Thread.sleep(forTimeInterval: pause) }
                }
            }
            thread.start()
            return thread
        }
        var workers: [Thread] = []
        for prefix in ["a", "b"] {
            workers.append(loop(Self.mergeCount) { i in
                log.record(kit, ["config", "set", "merged", "--merge", "{\"\(prefix)\(i)\":\(i)}"], tag: "merge \(prefix)\(i)")
            })
        }
        workers.append(loop(Self.keyCount, pause: 0.2) { i in
            log.record(kit, ["config", "set", "k\(i)", "\(i)"], tag: "set k\(i)")
        })
        workers.append(loop(400) { i in
            if i % 2 == 0 {
                log.record(kit, ["-o", "json", "tree", kit.root, "--data", "--stat"], tag: "tree")
            } else {
                log.record(kit, ["-o", "json", "config", "list"], tag: "list")
            }
        })
        workers.append(loop(Self.importCount, pause: 2) { i in
            log.record(kit, ["import", importFile, "--to", "\(kit.root)/imp-\(i)"], tag: "import \(i)")
        })
        workers.append(loop(100, pause: 0.3) { i in
            log.record(kit, ["lock", "--wait", "15s", "short", "--", "true"], tag: "lock")
        })

        // The faults: the leader stopped, each other member killed, the new leader killed, each
        // restarted after a pause during which the workers go on.
        var faults: [String] = []
        var downWindows: [(Date, Date)] = []
        func fault(_ what: String, _ member: Int, _ action: (Int) throws -> Void) throws {
            let down = Date()
            try action(member)
            faults.append("\(what) member \(member)")
            Thread.sleep(forTimeInterval: 3)
            try ensemble.restart(member: member)
            downWindows.append((down, Date()))
            faults.append("restart member \(member)")
            Thread.sleep(forTimeInterval: 2)
        }
        Thread.sleep(forTimeInterval: 2)
        try ensemble.waitUntilServing()
        let firstLeader = try ensemble.leader()
        try fault("stop leader", firstLeader) { try ensemble.stop(member: $0) }
        for member in ensemble.members where member != firstLeader {
            try fault("kill", member) { try ensemble.kill(member: $0) }
        }
        try ensemble.waitUntilServing()
        try fault("kill leader", try ensemble.leader()) { try ensemble.kill(member: $0) }
        try ensemble.waitUntilServing()
        stop.set()
        for w in workers { while !w.isFinished { Thread.sleep(forTimeInterval: 0.1) } }

        // Every command: success, or its documented failure as one line.
        let runs = log.all
        var failedTags = Set<String>()
        for run in runs {
            guard let result = run.result else {
                XCTFail("\(run.tag): did not finish within its limit: \(run.error ?? "")")
                failedTags.insert(run.tag)
                continue
            }
            if result.status != 0 {
                failedTags.insert(run.tag)
                let allowed: Set<Int32> = run.tag == "lock" ? [69, 75] : [69]
                XCTAssertTrue(allowed.contains(result.status), "\(run.tag): exit \(result.status): \(result.stderrText)")
                assertOneErrorLine(result, run.tag)
                continue
            }
            switch run.tag {
            case "tree":
                let json = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
                XCTAssertEqual(json?["path"] as? String, kit.root, "tree: \(result.stdoutText.prefix(300))")
            case "list":
                let json = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
                XCTAssertEqual((json?["seed"] as? [String: Any])?["seed"] as? Int, 1, "config list: \(result.stdoutText.prefix(300))")
            default:
                break
            }
        }

        // The data is what the succeeded commands wrote: every field of a succeeded merge, no
        // field nobody tried to write, every succeeded key.
        let merged = try kit.jsonObject(["-o", "json", "config", "get", "merged"])
        for prefix in ["a", "b"] {
            for i in 0..<Self.mergeCount {
                let field = "\(prefix)\(i)"
                let tag = "merge \(field)"
                guard runs.contains(where: { $0.tag == tag }) else {
                    XCTAssertNil(merged[field], "\(field) was never written")
                    continue
                }
                if !failedTags.contains(tag) {
                    XCTAssertEqual(merged[field] as? Int, i, "a succeeded merge lost its field \(field)")
                } else if let value = merged[field] {
                    // A write whose answer was lost may have happened: then with its own value.
                    XCTAssertEqual(value as? Int, i, field)
                }
            }
        }
        XCTAssertTrue(merged.keys.allSatisfy { k in runs.contains { $0.tag == "merge \(k)" } }, "unexpected fields: \(merged.keys.sorted())")
        let list = try kit.jsonObject(["-o", "json", "config", "list"])
        for i in 0..<Self.keyCount where runs.contains(where: { $0.tag == "set k\(i)" }) && !failedTags.contains("set k\(i)") {
            XCTAssertEqual(list["k\(i)"] as? Int, i, "a succeeded set lost key k\(i)")
        }

        // No partial import: each target is the whole file or nothing, and running a failed
        // import again completes it.
        let expected = try kit.exportedNodes(of: kit.importSourceRoot)
        for i in 0..<Self.importCount where runs.contains(where: { $0.tag == "import \(i)" }) {
            let target = "\(kit.root)/imp-\(i)"
            let exists = try kit.run(["exists", target]).status == 0
            if !failedTags.contains("import \(i)") {
                XCTAssertEqual(try kit.exportedNodes(of: target), expected, "import \(i) succeeded but \(target) differs")
                continue
            }
            if exists {
                XCTAssertEqual(try kit.exportedNodes(of: target), expected, "failed import \(i) left a partial tree")
            }
            try kit.expect(["import", importFile, "--to", target], 0, stderrContains: nil)
            XCTAssertEqual(try kit.exportedNodes(of: target), expected, "import \(i) run again")
        }

        // config watch reported every key with its final value, changes made while it was
        // reconnecting included.
        let finalList = try kit.jsonObject(["-o", "json", "config", "list"])
        let finalText = finalList.mapValues { compactJSON($0) }
        let caughtUp = watch.waitUntil(timeout: 40) { out, _ in
            let last = lastWatchValues(out)
            return finalText.allSatisfy { last[$0.key] == $0.value }
        }
        let last = lastWatchValues(watch.stdout)
        XCTAssertTrue(caughtUp, "config watch missed changes: " + finalText.filter { last[$0.key] != $0.value }
            .map { "\($0.key): server \($0.value), watch \(last[$0.key] ?? "nothing")" }.sorted().joined(separator: "; "))
        XCTAssertNil(watch.exitStatus, "config watch exited: \(watch.stderr)")

        // The ephemeral registration survived (or was made again) and goes on SIGTERM.
        XCTAssertNil(service.exitStatus, "service register exited: \(service.stderr)")
        XCTAssertTrue(kit.waitUntil(timeout: 30) { (try? kit.run(["exists", kit.servicesRoot + "/svc/inst-1"]).status) == 0 },
                      "the instance is gone while zkctl still holds it")
        service.signal(SIGTERM)
        XCTAssertEqual(service.waitForExit(seconds: 30), 143, service.stderr)
        XCTAssertEqual(try kit.run(["exists", kit.servicesRoot + "/svc/inst-1"]).status, 1, "SIGTERM leaves no instance behind")

        // The lock holder: still holding, or (its session lost) exited 75 with its child stopped.
        let childPid = Int32((try? String(contentsOfFile: childPidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        XCTAssertGreaterThan(childPid, 0)
        if let status = held.exitStatus {
            XCTAssertEqual(status, 75, held.stderr)
            XCTAssertFalse(processAlive(childPid), "the lock's child outlived the lock")
        } else {
            // Now expire its session: freeze zkctl past the session timeout, then let it go on.
            held.signal(SIGSTOP)
            Thread.sleep(forTimeInterval: 10)
            held.signal(SIGCONT)
            let status = held.waitForExit(seconds: 40)
            XCTAssertEqual(status, 75, "a lock holder whose session expired must exit 75: \(held.stderr)")
            XCTAssertFalse(processAlive(childPid), "the child of a lock whose session expired is still running")
        }
        XCTAssertTrue(kit.waitUntil(timeout: 20) { (try? kit.lockContenders("held"))?.isEmpty ?? false },
                      "the expired holder's contender node is still there")

        let failures = runs.filter { $0.result?.status != 0 }.count
        let duringFaults = runs.filter { run in downWindows.contains { run.start < $0.1 && run.end > $0.0 } }.count
        let slowest = runs.compactMap(\.seconds).max() ?? 0
        print("FaultTests: \(faults.count) faults (\(faults.joined(separator: ", "))); \(runs.count) commands (\(duringFaults) while a member was down), "
              + "\(failures) failed as documented; slowest \(String(format: "%.1f", slowest)) s")
    }

    // MARK: No quorum

    func testNoQuorumFailsWritesAndReadsClearlyAndRecovers() throws {
        let ensemble = try ZooKeeperServer.ensemble(size: 3)
        defer { ensemble.shutdown() }
        let kit = try FaultKit(servers: ensemble.connectString, label: "quorum", timeout: "3s")
        defer { kit.finish() }
        try kit.expect(["config", "set", "k", "1"], 0)
        let importFile = try kit.writeExport(nodeCount: 5)
        let watch = try kit.background(["-o", "json", "config", "watch", "k"])
        defer { watch.kill() }
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in lastWatchValues(out)["k"] == "1" }, watch.stderr)

        let survivor = try ensemble.leader()
        let stopped = ensemble.members.filter { $0 != survivor }
        for m in stopped { try ensemble.stop(member: m) }

        // Writes: exit 69 within the timeout, one line naming the servers tried.
        let servers = kit.servers.split(separator: ",").map(String.init)
        for args in [["config", "set", "k", "2"], ["config", "set", "k", "--merge", #"{"x":1}"#],
                     ["create", kit.root + "/new"], ["import", importFile, "--to", kit.root + "/imp"],
                     ["service", "register", "svc", "127.0.0.1", "1", "--id", "i"], ["lock", "--wait", "2s", "nq", "--", "true"]] {
            let r = try kit.run(args, limit: 30)
            XCTAssertEqual(r.status, 69, "\(args): \(r.stderrText)")
            assertOneErrorLine(r, "\(args)")
            XCTAssertTrue(servers.contains { r.stderrText.contains($0) }, "\(args): the message names no server: \(r.stderrText)")
        }
        // Reads: no server serves without a quorum; they say so and which servers they tried.
        // The survivor accepts connections: the line says it is not serving (no quorum), not
        // that no server is reachable.
        let survivorAddress = ensemble.memberConnectString(survivor)
        for args in [["config", "get", "k"], ["config", "list"], ["tree", kit.root], ["get", kit.configRoot + "/k"]] {
            let r = try kit.run(args, limit: 30)
            XCTAssertEqual(r.status, 69, "\(args): \(r.stderrText)")
            assertOneErrorLine(r, "\(args)")
            XCTAssertTrue(servers.contains { r.stderrText.contains($0) }, "\(args): the message names no server: \(r.stderrText)")
            XCTAssertTrue(r.stderrText.hasPrefix("zkctl: not serving: no quorum within 3000 ms; tried "), "\(args): \(r.stderrText)")
            XCTAssertTrue(r.stderrText.contains("\(survivorAddress): accepts connections but is not serving"), "\(args): \(r.stderrText)")
            XCTAssertFalse(r.stderrText.contains("no server reachable"), "\(args): \(r.stderrText)")
        }
        // status says, per server, what answered and what did not.
        let status = try kit.run(["-o", "json", "status"], limit: 30)
        XCTAssertNotEqual(status.status, 0, "status without quorum cannot be healthy")
        XCTAssertTrue([69].contains(status.status), "status: exit \(status.status): \(status.stderrText)")
        for s in servers { XCTAssertTrue(status.stdoutText.contains(s) || status.stderrText.contains(s), "status does not mention \(s): \(status.stdoutText) \(status.stderrText)") }

        // Recovery: the same commands work again, and the watch that ran through it all sees it.
        for m in stopped { try ensemble.restart(member: m) }
        try ensemble.waitUntilServing()
        XCTAssertTrue(kit.waitUntil(timeout: 30) { (try? kit.run(["config", "get", "k"]).status) == 0 })
        try kit.expect(["config", "set", "k", "3"], 0)
        try kit.expect(["import", importFile, "--to", kit.root + "/imp"], 0, stderrContains: nil)
        try kit.expect(["lock", "--wait", "10s", "nq", "--", "true"], 0)
        XCTAssertEqual(try kit.run(["config", "get", "k"]).stdoutText, "3\n")
        XCTAssertTrue(watch.waitUntil(timeout: 40) { out, _ in lastWatchValues(out)["k"] == "3" },
                      "config watch did not report the change made after the quorum came back: \(watch.stdout) \(watch.stderr)")
        XCTAssertNil(watch.exitStatus, watch.stderr)
    }

    // MARK: Nobody there

    /// A port nobody listens on, a port that accepts and never answers, a name that does not
    /// resolve: exit 69 before the process limit, one line naming the servers tried.
    func testUnreachableServersFailWithinTheTimeout() throws {
        let closed = try closedPort()
        let silent = try SilentListener()
        defer { silent.close() }
        let cases: [(String, String)] = [
            ("nothing listening", "127.0.0.1:\(closed)"),
            ("accepts, never answers", "127.0.0.1:\(silent.port)"),
            ("does not resolve", "zk-\(UUID().uuidString.prefix(8).lowercased()).invalid:2181"),
            ("two of them", "127.0.0.1:\(closed),127.0.0.1:\(silent.port)"),
        ]
        for (what, servers) in cases {
            for args in [["config", "list"], ["config", "set", "k", "1"], ["tree", "/"], ["lock", "x", "--", "true"],
                         ["service", "register", "s", "127.0.0.1", "1", "--ephemeral"], ["config", "watch", "k"]] {
                let start = Date()
                let r = try runProcess(zkctlBinaryPath(), ["-s", servers, "--timeout", "2s"] + args,
                                       environment: faultEnvironment(), timeout: 30)
                let took = Date().timeIntervalSince(start)
                XCTAssertEqual(r.status, 69, "\(what) \(args): \(r.stderrText)")
                assertOneErrorLine(r, "\(what) \(args)")
                for server in servers.split(separator: ",") {
                    let host = server.split(separator: ":").first.map(String.init) ?? ""
                    XCTAssertTrue(r.stderrText.contains(String(server)) || r.stderrText.contains(host),
                                  "\(what) \(args): the message does not name \(server): \(r.stderrText)")
                }
                if what == "does not resolve" {
                    // The reason, in words: not an unrelated errno text.
                    XCTAssertTrue(r.stderrText.contains("resolve"), "\(what) \(args): the message does not say the name does not resolve: \(r.stderrText)")
                }
                print("FaultTests: \(what) \(args.prefix(2).joined(separator: " ")): exit \(r.status) after \(String(format: "%.1f", took)) s")
            }
        }
    }
}

extension FaultTests {
    // MARK: Memory over many events

    /// `config watch`, a held `lock` and a held `service register --ephemeral` keep a flat memory
    /// footprint over 10,000 events: their RSS (VmRSS) after 10,000 events is within a few MiB of
    /// what it was after 1,000. The events come from a kazoo writer (Debian's python3-kazoo),
    /// which is much faster than one zkctl per change; every loop is bounded in count and time.
    func testLongRunningCommandsKeepAFlatMemoryFootprint() throws {
        let server = try SharedServers.standalone()
        let kit = try FaultKit(servers: server.connectString, label: "rss")
        defer { kit.finish() }
        let limitMiB = 8.0
        var report: [String] = []

        // config watch: 10 keys changed round-robin; each line it prints is one event.
        try kit.expect(["config", "set", "k0", "0"], 0)
        let watch = try kit.background(["-o", "json", "config", "watch"])
        defer { watch.kill() }
        XCTAssertTrue(watch.waitUntil(timeout: 30) { out, _ in out.contains(#""key":"k0""#) }, watch.stderr)
        let watchRSS = try measure(kit, process: watch, churn: "set", path: kit.configRoot, count: { lineCount(watch.stdoutData) })
        report.append("config watch \(watchRSS.description)")

        // lock: held while contenders behind it come and go.
        let held = try kit.background(["lock", "rss", "--", "sleep", "600"])
        defer { held.kill() }
        XCTAssertTrue(kit.waitUntil(timeout: 30) { !childPids(of: held.pid).isEmpty }, held.stderr)
        let lockRSS = try measure(kit, process: held, churn: "siblings", path: kit.locksRoot + "/rss", count: nil)
        report.append("lock \(lockRSS.description)")

        // service register --ephemeral: held while other instances of the service come and go.
        let service = try kit.background(["service", "register", "svc", "127.0.0.1", "9000", "--id", "held", "--ephemeral"])
        defer { service.kill() }
        XCTAssertTrue(kit.waitUntil(timeout: 30) { (try? kit.run(["exists", kit.servicesRoot + "/svc/held"]).status) == 0 }, service.stderr)
        let serviceRSS = try measure(kit, process: service, churn: "siblings", path: kit.servicesRoot + "/svc", count: nil)
        report.append("service register --ephemeral \(serviceRSS.description)")

        for (name, rss) in [("config watch", watchRSS), ("lock", lockRSS), ("service register", serviceRSS)] {
            XCTAssertGreaterThanOrEqual(rss.events, 10_000, "\(name): only \(rss.events) events")
            XCTAssertLessThan(rss.growthMiB, limitMiB, "\(name): RSS grew \(rss.growthMiB) MiB from 1,000 to 10,000 events")
        }
        XCTAssertNil(watch.exitStatus, watch.stderr)
        XCTAssertNil(held.exitStatus, held.stderr)
        XCTAssertNil(service.exitStatus, service.stderr)
        print("FaultTests: RSS: " + report.joined(separator: "; "))
    }

    struct RSSReading: CustomStringConvertible {
        var atThousand: Double
        var atTenThousand: Double
        var events: Int
        var growthMiB: Double { (atTenThousand - atThousand) / 1024 }
        var description: String {
            String(format: "%.1f MiB at 1,000 events, %.1f MiB at %d events", atThousand / 1024, atTenThousand / 1024, events)
        }
    }

    /// Runs a kazoo writer against `path` until `count()` (or, without it, the writer's own count
    /// of operations) passes 10,000, reading the process's VmRSS (KiB) at 1,000 and at 10,000.
    func measure(_ kit: FaultKit, process: BackgroundProcess, churn: String, path: String, count: (() -> Int)?) throws -> RSSReading {
        let progress = kit.file("churn-\(UUID().uuidString.prefix(6))")
        let stopFile = progress + ".stop"
        let script = #"""
        import sys, os, time
        from kazoo.client import KazooClient
        servers, mode, path, progress, stop = sys.argv[1:6]
        zk = KazooClient(hosts=servers, timeout=10)
        zk.start(timeout=15)
        zk.ensure_path(path)
        deadline = time.time() + 150
        n = 0
        while n < 60000 and time.time() < deadline and not os.path.exists(stop):
            if mode == "set":
                key = "%s/k%d" % (path, n % 10)
                if zk.exists(key):
                    zk.set(key, b'{"n":%d}' % n)
                else:
                    zk.create(key, b'{"n":%d}' % n)
                n += 1
            else:
                created = zk.create(path + "/churn-", b"x", ephemeral=True, sequence=True)
                zk.delete(created)
                n += 2
            if n % 100 == 0:
                with open(progress + ".tmp", "w") as f:
                    f.write(str(n))
                os.replace(progress + ".tmp", progress)
                if mode == "set":
                    time.sleep(0.02)
        with open(progress + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(progress + ".tmp", progress)
        zk.stop()
        """#
        let writer = try BackgroundProcess("/usr/bin/python3", ["-c", script, kit.servers, churn, path, progress, stopFile],
                                     environment: faultEnvironment(), directory: kit.directory)
        defer {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            if writer.waitForExit(seconds: 20) == nil { writer.kill() }
        }
        func events() -> Int {
            count?() ?? Int((try? String(contentsOfFile: progress, encoding: .utf8)) ?? "") ?? 0
        }
        var atThousand: Double? = nil
        let deadline = Date().addingTimeInterval(170)
        while Date() < deadline {
            let n = events()
            if atThousand == nil, n >= 1_000 { atThousand = vmRSS(process.pid) }
            if n >= 10_000 { break }
            if writer.exitStatus != nil, events() < 10_000 {
                throw FaultKitError("the kazoo writer stopped after \(events()) events: \(writer.stderr)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let atTen = vmRSS(process.pid)
        guard let first = atThousand, let atTen else { throw FaultKitError("no RSS reading (\(events()) events)") }
        return RSSReading(atThousand: first, atTenThousand: atTen, events: events())
    }
}

/// VmRSS of `pid` in KiB, nil when it is gone.
func vmRSS(_ pid: Int32) -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ").dropFirst().first ?? "")
    }
    return nil
}

func lineCount(_ data: Data) -> Int {
    data.reduce(0) { $1 == 0x0a ? $0 + 1 : $0 }
}

// MARK: - Helpers for the fault, hostile-input and credential tests

/// One asserted diagnostic: exactly one line on stderr, starting `zkctl: `, and nothing on stdout.
func assertOneErrorLine(_ r: ProcessResult, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    let text = r.stderrText
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    XCTAssertTrue(text.hasPrefix("zkctl: ") && text.hasSuffix("\n") && lines.count == 2,
                  "\(what): stderr must be one line starting 'zkctl: ', got \(text.debugDescription)", file: file, line: line)
    XCTAssertEqual(r.stdout.count, 0, "\(what): nothing on stdout, got \(r.stdoutText.prefix(200).debugDescription)", file: file, line: line)
}

/// The environment for zkctl in these tests: no zkctl variables or config file of the user's.
func faultEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment.filter { key, _ in
        !key.hasPrefix("ZKCTL_") && !["ZOOKEEPER_HOSTS", "ASAB_ZOOKEEPER_SERVERS", "NO_COLOR"].contains(key)
    }
    env["HOME"] = "/nonexistent-zkctl-test-home"
    env["XDG_CONFIG_HOME"] = "/nonexistent-zkctl-test-home/.config"
    for (k, v) in extra { env[k] = v }
    return env
}

func processAlive(_ pid: Int32) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 else { return false }
    // A zombie has stopped running.
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
    return state != "Z" && state != "X"
}

/// A value as compact JSON text with sorted keys, for comparisons.
func compactJSON(_ value: Any) -> String {
    if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) {
        return String(decoding: data, as: UTF8.self)
    }
    return "\(value)"
}

/// The last value `config watch -o json` reported for each key (absent after `removed`).
func lastWatchValues(_ output: String) -> [String: String] {
    var last: [String: String] = [:]
    for line in output.split(separator: "\n") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let key = object["key"] as? String, let event = object["event"] as? String else { continue }
        if event == "removed" {
            last[key] = nil
        } else if let value = object["value"] {
            last[key] = compactJSON(value)
        }
    }
    return last
}

/// A port on 127.0.0.1 that nothing listens on (bound, then closed).
func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw FaultKitError("socket: errno \(errno)") }
    defer { Glibc.close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw FaultKitError("bind: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A TCP listener on 127.0.0.1 that completes handshakes (the kernel does, through the backlog)
/// and never reads or answers.
final class SilentListener: @unchecked Sendable {
    // Unchecked: fd is set once in init, closed once by close() from the test's thread.
    private var fd: Int32
    let port: Int

    init() throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FaultKitError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let descriptor = fd
        let ok = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 64) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard ok else { Glibc.close(fd); throw FaultKitError("listen: errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    deinit { close() }
}

struct FaultKitError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A set flag shared with worker threads.
final class StopFlag: @unchecked Sendable {
    // Unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}

/// What each command run under faults gave.
final class CommandLog: @unchecked Sendable {
    // Unchecked: `runs` is only touched under `lock`.
    struct Run: Sendable {
        var tag: String
        var args: [String]
        var result: ProcessResult?
        var error: String?
        var seconds: Double?
        var start = Date()
        var end = Date()
    }
    private let lock = NSLock()
    private var runs: [Run] = []

    func record(_ kit: FaultKit, _ args: [String], tag: String) {
        let start = Date()
        var run = Run(tag: tag, args: args)
        do {
            run.result = try kit.run(args, limit: 60)
            run.seconds = Date().timeIntervalSince(start)
        } catch {
            run.error = "\(error)"
        }
        run.start = start
        run.end = Date()
        lock.lock()
        runs.append(run)
        lock.unlock()
    }

    var all: [Run] { lock.lock(); defer { lock.unlock() }; return runs }
}

/// Everything one test needs: its servers, its own roots, scratch files, zkctl runs.
final class FaultKit: Sendable {
    let servers: String
    let root: String
    let timeout: String
    let directory: URL
    var configRoot: String { root + "/config" }
    var servicesRoot: String { root + "/services" }
    var locksRoot: String { root + "/locks" }
    var importSourceRoot: String { root + "/import-source" }

    init(servers: String, label: String, timeout: String = "4s") throws {
        self.servers = servers
        self.root = "/t-\(label)-\(UUID().uuidString.prefix(12).lowercased())"
        self.timeout = timeout
        self.directory = try ZKTestPaths.makeTemporaryDirectory(label: label)
    }

    func finish() {
        _ = try? run(["delete", "-r", "--force", root], limit: 60)
        try? FileManager.default.removeItem(at: directory)
    }

    var globalArgs: [String] {
        ["-s", servers, "--timeout", timeout, "--config-root", configRoot, "--services-root", servicesRoot, "--locks-root", locksRoot]
    }

    func file(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func run(_ args: [String], limit: TimeInterval = 60, env: [String: String] = [:], stdin: Data? = nil) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), globalArgs + args, environment: faultEnvironment(env), stdin: stdin, timeout: limit)
    }

    /// Runs and checks the exit code (and, for 0, that stderr is empty unless told otherwise).
    @discardableResult
    func expect(_ args: [String], _ status: Int32, stderrContains: String? = "", file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try run(args)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        if status == 0, let s = stderrContains {
            if s.isEmpty { XCTAssertEqual(r.stderrText, "", "\(args)", file: file, line: line) } else { XCTAssertTrue(r.stderrText.contains(s), r.stderrText, file: file, line: line) }
        }
        return r
    }

    func jsonObject(_ args: [String]) throws -> [String: Any] {
        let r = try run(args)
        guard r.status == 0, let o = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw FaultKitError("\(args): exit \(r.status): \(r.stderrText) \(r.stdoutText.prefix(300))")
        }
        return o
    }

    func background(_ args: [String], env: [String: String] = [:]) throws -> BackgroundProcess {
        try BackgroundProcess(zkctlBinaryPath(), globalArgs + args, environment: faultEnvironment(env), directory: directory)
    }

    /// Creates `nodeCount` nodes under importSourceRoot, exports them, returns the file.
    func writeExport(nodeCount: Int) throws -> String {
        var nodes: [String] = [#"{"path":"","type":"persistent","data":"top","acl":[{"scheme":"world","id":"anyone","perms":"cdrwa"}]}"#]
        for i in 0..<nodeCount {
            let path = i % 4 == 0 ? "n\(i)" : "n\(i - i % 4)/c\(i)"
            nodes.append("{\"path\":\"\(path)\",\"type\":\"persistent\",\"data\":\"value \(i)\",\"acl\":[{\"scheme\":\"world\",\"id\":\"anyone\",\"perms\":\"cdrwa\"}]}")
        }
        let text = "{\"format\":\"zkctl-export\",\"version\":1,\"root\":\"\(importSourceRoot)\",\"exported\":\"2026-01-01T00:00:00.000Z\",\"nodes\":[\n"
            + nodes.joined(separator: ",\n") + "\n],\"nodeCount\":\(nodes.count),\"skippedEphemeral\":0}\n"
        let name = file("import.json")
        try Data(text.utf8).write(to: URL(fileURLWithPath: name))
        let r = try run(["import", name])
        guard r.status == 0 else { throw FaultKitError("seeding the import source failed: \(r.stderrText)") }
        return name
    }

    /// The nodes of an export of `path` (paths relative, data and ACL), for comparisons.
    func exportedNodes(of path: String) throws -> [String] {
        let r = try run(["export", path])
        guard r.status == 0, let o = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any],
              let nodes = o["nodes"] as? [Any] else {
            throw FaultKitError("export \(path): exit \(r.status): \(r.stderrText)")
        }
        return nodes.map { compactJSON($0) }.sorted()
    }

    func lockContenders(_ name: String) throws -> [String] {
        let r = try run(["ls", locksRoot + "/" + name])
        if r.status == 1 { return [] }
        guard r.status == 0 else { throw FaultKitError("ls: \(r.stderrText)") }
        return r.stdoutText.split(separator: "\n").map(String.init)
    }

    func waitForFile(_ path: String, timeout: TimeInterval) -> Bool {
        waitUntil(timeout: timeout) {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").hasSuffix("\n")
        }
    }

    func waitUntil(timeout: TimeInterval, _ predicate: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return predicate()
    }
}

