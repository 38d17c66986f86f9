import Foundation
import Synchronization
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `zkctl lock` against a real server, through the binary: mutual exclusion, interop with kazoo's
/// Lock in both directions, --wait, signals, exit codes and ZKCTL_LOCK_PATH.
final class LockTests: XCTestCase {
    var server: ZooKeeperServer!
    var kit: CoordinationKit!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        kit = try CoordinationKit(server: server, label: "lock")
    }

    override func tearDown() {
        kit?.finish()
    }

    // MARK: Exclusion

    func testTenConcurrentHoldersNeverOverlapAndAllRun() throws {
        let kit = self.kit!
        let log = kit.file("log")
        // Each child appends start and end markers with timestamps; the lock must keep the pairs
        // from interleaving.
        let script = #"echo "start $$ $(date +%s.%N)" >> "$LOG"; sleep 0.1; echo "end $$ $(date +%s.%N)" >> "$LOG""#
        let runs = (0..<10).map { _ in
            kit.background { try kit.zkctl(["lock", "mutex", "--", "sh", "-c", script], env: ["LOG": log]) }
        }
        for run in runs {
            let r = try run.wait()
            XCTAssertEqual(r.status, 0, r.stderrText)
            XCTAssertEqual(r.stderrText, "")
        }
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
        XCTAssertEqual(lines.count, 20, "every holder writes two lines")
        var ids = Set<Substring>()
        var lastEnd = -Double.infinity
        for pair in stride(from: 0, to: lines.count - 1, by: 2) {
            let start = lines[pair], end = lines[pair + 1]
            XCTAssertEqual(start.count, 3)
            XCTAssertEqual(end.count, 3)
            XCTAssertEqual(start.first, "start", "line \(pair + 1) should start a run: \(lines)")
            XCTAssertEqual(end.first, "end", "line \(pair + 2) should end a run: \(lines)")
            XCTAssertEqual(start[1], end[1], "a run was interleaved with another: \(lines)")
            ids.insert(start[1])
            let startTime = Double(start[2]) ?? .nan, endTime = Double(end[2]) ?? .nan
            XCTAssertGreaterThanOrEqual(startTime, lastEnd, "a run started before the previous one ended")
            XCTAssertGreaterThanOrEqual(endTime, startTime)
            lastEnd = endTime
        }
        XCTAssertEqual(ids.count, 10, "all ten ran")
        XCTAssertEqual(try kit.lockContenders("mutex"), [], "no contender node is left behind")
    }

    // MARK: kazoo interop

    func testKazooHolderBlocksZkctlUntilItReleases() throws {
        let kit = self.kit!
        let ready = kit.file("kazoo-ready"), release = kit.file("kazoo-release"), log = kit.file("log")
        let lockPath = kit.locksRoot + "/shared"
        let kazoo = kit.background { try kit.kazoo(["hold", lockPath, ready, release, log]) }
        defer { kit.touch(release) }
        try kit.waitForFile(ready)

        // Busy: with --wait, zkctl gives up without running CMD.
        let ran = kit.file("ran")
        let busy = try kit.zkctl(["lock", "--wait", "1s", "shared", "--", "touch", ran])
        XCTAssertEqual(busy.status, 75, busy.stderrText)
        XCTAssertEqual(busy.stderrText, "zkctl: lock 'shared' not acquired within 1s\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran), "CMD must not run without the lock")

        // Waiting for ever: it runs once kazoo lets go, and only then.
        let waiter = kit.background { 
            try kit.zkctl(["lock", "shared", "--", "sh", "-c", #"echo zkctl-start >> "$LOG""#], env: ["LOG": log])
        }
        try kit.waitUntil("zkctl queues behind kazoo") { try kit.lockContenders("shared").count == 2 }
        kit.touch(release)
        let k = try kazoo.wait()
        XCTAssertEqual(k.status, 0, k.stderrText)
        let w = try waiter.wait()
        XCTAssertEqual(w.status, 0, w.stderrText)
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "kazoo-release\nzkctl-start\n")
    }

    func testZkctlHolderBlocksKazooWithTheCuratorPattern() throws {
        let kit = self.kit!
        let ready = kit.file("ready"), release = kit.file("release"), log = kit.file("log")
        let holdScript = #"touch "$READY"; while [ ! -e "$RELEASE" ]; do sleep 0.05; done; echo zkctl-release >> "$LOG""#
        let holder = kit.background { 
            try kit.zkctl(["lock", "shared", "--", "sh", "-c", holdScript], env: ["READY": ready, "RELEASE": release, "LOG": log])
        }
        defer { kit.touch(release) }
        try kit.waitForFile(ready)
        let lockPath = kit.locksRoot + "/shared"

        let busy = try kit.kazoo(["try", lockPath, "1"])
        XCTAssertEqual(busy.status, 2, busy.stderrText)
        XCTAssertEqual(busy.stdoutText, "timeout\n")

        let waiter = kit.background { try kit.kazoo(["try", lockPath, "60", log]) }
        try kit.waitUntil("kazoo queues behind zkctl") { try kit.lockContenders("shared").count == 2 }
        kit.touch(release)
        let h = try holder.wait()
        XCTAssertEqual(h.status, 0, h.stderrText)
        let w = try waiter.wait()
        XCTAssertEqual(w.status, 0, w.stderrText)
        XCTAssertEqual(w.stdoutText, "acquired\n")
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "zkctl-release\nkazoo-acquired\n")
    }

    // MARK: --wait

    func testWaitTimeoutExits75WithoutRunningAndRemovesItsNode() throws {
        let kit = self.kit!
        let ready = kit.file("ready"), release = kit.file("release"), ran = kit.file("ran")
        let holder = kit.background { 
            try kit.zkctl(["lock", "busy", "--", "sh", "-c", #"touch "$READY"; while [ ! -e "$RELEASE" ]; do sleep 0.05; done"#],
                           env: ["READY": ready, "RELEASE": release])
        }
        defer { kit.touch(release) }
        try kit.waitForFile(ready)
        let held = try kit.lockContenders("busy")
        XCTAssertEqual(held.count, 1)

        let r = try kit.zkctl(["lock", "busy", "--wait", "500ms", "--", "touch", ran])
        XCTAssertEqual(r.status, 75)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText, "zkctl: lock 'busy' not acquired within 500ms\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran))
        XCTAssertEqual(try kit.lockContenders("busy"), held, "the timed-out contender's node is gone, the holder's stays")

        // --wait 0 only tries.
        let once = try kit.zkctl(["lock", "busy", "--wait", "0", "--", "touch", ran])
        XCTAssertEqual(once.status, 75, once.stderrText)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran))

        kit.touch(release)
        XCTAssertEqual(try holder.wait().status, 0)
        let free = try kit.zkctl(["lock", "busy", "--wait", "0", "--", "touch", ran])
        XCTAssertEqual(free.status, 0, free.stderrText)
        XCTAssertTrue(FileManager.default.fileExists(atPath: ran), "a free lock is taken even with --wait 0")
    }

    // MARK: Signals

    func testSIGTERMReachesTheChildAndReleasesTheLock() throws {
        try checkSignal(SIGTERM, name: "TERM", expectedStatus: 143)
    }

    func testSIGINTReachesTheChildAndReleasesTheLock() throws {
        try checkSignal(SIGINT, name: "INT", expectedStatus: 130)
    }

    /// zkctl runs a child that records the signal it gets; the test signals zkctl (the child's
    /// parent, whose pid the child writes down).
    private func checkSignal(_ signo: Int32, name: String, expectedStatus: Int32) throws {
        let kit = self.kit!
        let pidFile = kit.file("pid"), got = kit.file("got")
        let script = #"trap 'echo "got $SIG" > "$GOT"; exit 9' "$SIG"; echo $PPID > "$PIDFILE"; while :; do sleep 0.05; done"#
        let run = kit.background { 
            try kit.zkctl(["lock", "sig", "--", "sh", "-c", script], env: ["SIG": name, "GOT": got, "PIDFILE": pidFile])
        }
        try kit.waitForFile(pidFile, nonEmpty: true)
        XCTAssertEqual(try kit.lockContenders("sig").count, 1)
        let pidText = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let zkctlPID = try XCTUnwrap(pid_t(pidText))
        XCTAssertEqual(kill(zkctlPID, signo), 0)
        let r = try run.wait()
        XCTAssertEqual(r.status, expectedStatus, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(try String(contentsOfFile: got, encoding: .utf8), "got \(name)\n", "the child got the signal")
        XCTAssertEqual(try kit.lockContenders("sig"), [], "the lock node is gone")
        // And the lock is free for the next one at once.
        let next = try kit.zkctl(["lock", "sig", "--wait", "0", "--", "true"])
        XCTAssertEqual(next.status, 0, next.stderrText)
    }

    func testSIGTERMWhileWaitingGivesUpItsPlace() throws {
        let kit = self.kit!
        let ready = kit.file("ready"), release = kit.file("release"), pidFile = kit.file("waiter-pid"), ran = kit.file("ran")
        let holder = kit.background { 
            try kit.zkctl(["lock", "queue", "--", "sh", "-c", #"touch "$READY"; while [ ! -e "$RELEASE" ]; do sleep 0.05; done"#],
                           env: ["READY": ready, "RELEASE": release])
        }
        defer { kit.touch(release) }
        try kit.waitForFile(ready)
        // The waiter's pid comes from a wrapper shell that execs zkctl.
        let waiter = kit.background { 
            try runProcess("/bin/sh", ["-c", #"echo $$ > "$PIDFILE"; exec "$ZKCTL" "$@""#, "sh",
                                       "-s", kit.server.connectString, "--locks-root", kit.locksRoot,
                                       "lock", "queue", "--", "touch", ran],
                           environment: kit.environment(["PIDFILE": pidFile, "ZKCTL": zkctlBinaryPath()]), timeout: 120)
        }
        try kit.waitUntil("the waiter queues") { try kit.lockContenders("queue").count == 2 }
        let pid = try XCTUnwrap(pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, SIGTERM), 0)
        let w = try waiter.wait()
        XCTAssertEqual(w.status, 143, w.stderrText)
        XCTAssertEqual(try kit.lockContenders("queue").count, 1, "only the holder is left")
        kit.touch(release)
        XCTAssertEqual(try holder.wait().status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran), "the interrupted waiter never ran CMD")
    }

    // MARK: Exit codes, environment, usage

    func testExitCodePassesThrough() throws {
        let kit = self.kit!
        let r = try kit.zkctl(["lock", "codes", "--", "sh", "-c", "exit 3"])
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.stderrText, "")
        let killed = try kit.zkctl(["lock", "codes", "--", "sh", "-c", "kill -USR1 $$"])
        XCTAssertEqual(killed.status, 128 + SIGUSR1, "a child killed by signal N gives 128+N")
        let missing = try kit.zkctl(["lock", "codes", "--", "no-such-command-zkctl-test"])
        XCTAssertEqual(missing.status, 127)
        XCTAssertEqual(missing.stderrText, "zkctl: no-such-command-zkctl-test: command not found\n")
        XCTAssertEqual(try kit.lockContenders("codes"), [], "every run released the lock")
    }

    func testChildSeesItsLockNodeAndInheritsStdio() throws {
        let kit = self.kit!
        let r = try kit.zkctl(["lock", "env/nested", "--", "sh", "-c", #"echo "$ZKCTL_LOCK_PATH"; cat; echo oops >&2"#],
                              stdin: Data("from stdin\n".utf8))
        XCTAssertEqual(r.status, 0, r.stderrText)
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, r.stdoutText)
        let path = lines.first ?? ""
        let prefix = kit.locksRoot + "/env/nested/_c_"
        XCTAssertTrue(path.hasPrefix(prefix), path)
        XCTAssertTrue(path.range(of: #"^.*/_c_[0-9a-f-]{36}-lock-[0-9]{10}$"#, options: .regularExpression) != nil,
                      "Curator's protected naming: \(path)")
        XCTAssertEqual(lines.last, "from stdin")
        XCTAssertEqual(r.stderrText, "oops\n")
    }

    func testMissingCommandIsAUsageError() throws {
        let kit = self.kit!
        let r = try kit.zkctl(["lock", "nothing"])
        XCTAssertEqual(r.status, 64)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: missing '-- CMD [ARGS...]'"), r.stderrText)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1)
        let empty = try kit.zkctl(["lock", "nothing", "--"])
        XCTAssertEqual(empty.status, 64)
        let absolute = try kit.zkctl(["lock", "/abs", "--", "true"])
        XCTAssertEqual(absolute.status, 64)
    }
}

/// What the lock and run-once tests share: a private root on the shared server, a scratch
/// directory, zkctl and kazoo runs, and background runs.
final class CoordinationKit: Sendable {
    let server: ZooKeeperServer
    let root: String
    let directory: URL
    /// The Python that runs kazoo_peer.py, looked for once per test process.
    static let python = Result { try pythonWithKazoo() }

    var locksRoot: String { root + "/locks" }
    var tasksRoot: String { root + "/tasks" }

    init(server: ZooKeeperServer, label: String) throws {
        self.server = server
        root = uniqueZnodePath(label)
        directory = try ZKTestPaths.makeTemporaryDirectory(label: label)
    }

    /// Removes the scratch directory (the znodes stay on the throwaway server).
    func finish() {
        try? FileManager.default.removeItem(at: directory)
    }

    func file(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    func touch(_ path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data())
    }

    /// A clean environment (no settings from the machine) plus `extra`.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                   "HOME": directory.path]
        env.merge(extra) { $1 }
        return env
    }

    /// zkctl against the shared server, with this test's roots.
    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 120) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(),
                       ["-s", server.connectString, "--locks-root", locksRoot, "--tasks-root", tasksRoot] + args,
                       environment: environment(env), stdin: stdin, timeout: timeout)
    }

    /// Tests/EndToEndTests/kazoo_peer.py with its arguments after the connect string.
    func kazoo(_ args: [String], timeout: TimeInterval = 120) throws -> ProcessResult {
        let script = ZKTestPaths.packageRoot.appendingPathComponent("Tests/EndToEndTests/kazoo_peer.py").path
        return try runProcess(try Self.python.get(), [script, server.connectString] + args, environment: environment(), timeout: timeout)
    }

    /// The children of `<locks-root>/NAME` that are lock contenders, in no particular order
    /// (listed through kazoo, independently of zkctl). Empty when the lock node is gone.
    func lockContenders(_ name: String) throws -> [String] {
        let r = try kazoo(["children", locksRoot + "/" + name])
        if r.status == 1 { return [] }
        guard r.status == 0 else { throw CoordinationKitError("listing the lock failed: \(r.stderrText)") }
        return r.stdoutText.split(separator: "\n").map(String.init).filter { $0.contains("lock") }.sorted()
    }

    /// Runs `body` on a thread of its own.
    func background(_ body: @escaping @Sendable () throws -> ProcessResult) -> CoordinationBackgroundRun {
        CoordinationBackgroundRun(body)
    }

    /// Waits (up to a minute) until the file exists (and, if asked, holds something).
    func waitForFile(_ path: String, nonEmpty: Bool = false) throws {
        try waitUntil("\(path) appears") {
            guard let data = FileManager.default.contents(atPath: path) else { return false }
            return !nonEmpty || !data.isEmpty
        }
    }

    /// Polls `condition` until it holds; fails after a minute (a hang, not a slow machine).
    func waitUntil(_ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw CoordinationKitError("gave up waiting until \(what)")
    }

    /// A Python 3 that can import kazoo: $ZKCTL_TEST_PYTHON, the system python3 (where Debian's
    /// python3-kazoo installs), or python3 on PATH. Failing here means `make deps` was not run.
    static func pythonWithKazoo() throws -> String {
        var candidates: [String] = []
        if let custom = ProcessInfo.processInfo.environment["ZKCTL_TEST_PYTHON"], !custom.isEmpty { candidates.append(custom) }
        candidates += ["/usr/bin/python3", "python3"]
        for candidate in candidates {
            if let r = try? runProcess(candidate, ["-c", "import kazoo.recipe.lock"], timeout: 60), r.status == 0 {
                return candidate
            }
        }
        throw CoordinationKitError("no python3 with kazoo (tried \(candidates.joined(separator: ", "))); install python3-kazoo")
    }
}

struct CoordinationKitError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A `runProcess` call on a thread of its own; `wait()` gives its result.
final class CoordinationBackgroundRun: Sendable {
    private let outcome = Mutex<Result<ProcessResult, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> ProcessResult) {
        Thread.detachNewThread { [self] in
            let result = Result { try body() }
            outcome.withLock { $0 = result }
            done.signal()
        }
    }

    /// Waits for the run (whose own timeout bounds it) and returns or rethrows its outcome.
    func wait() throws -> ProcessResult {
        done.wait()
        done.signal()
        guard let result = outcome.withLock({ $0 }) else { throw CoordinationKitError("no result") }
        return try result.get()
    }
}
