import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `zkctl run-once` against a real server, through the binary. Shares `CoordinationKit` with
/// LockTests.
final class RunOnceTests: XCTestCase {
    var server: ZooKeeperServer!
    var kit: CoordinationKit!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        kit = try CoordinationKit(server: server, label: "runonce")
    }

    override func tearDown() {
        kit?.finish()
    }

    /// The records `--status -o json` shows.
    private func records(_ kit: CoordinationKit, _ name: String) throws -> [[String: Any]] {
        let r = try kit.zkctl(["-o", "json", "run-once", name, "--status"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]], r.stdoutText)
    }

    func testTenConcurrentInvocationsRunItExactlyOnce() throws {
        let kit = self.kit!
        let log = kit.file("log")
        // A period of 10000 days: no boundary falls inside the test (the next is in 2052).
        let runs = (0..<10).map { _ in
            kit.background {
                try kit.zkctl(["run-once", "nightly", "--every", "10000d", "--", "sh", "-c", #"echo "ran $$" >> "$LOG""#],
                              env: ["LOG": log])
            }
        }
        var skipped = 0, ran = 0
        for run in runs {
            let r = try run.wait()
            XCTAssertEqual(r.status, 0, r.stderrText)
            XCTAssertEqual(r.stdoutText, "")
            if r.stderrText.isEmpty {
                ran += 1
            } else {
                skipped += 1
                XCTAssertTrue(r.stderrText.hasPrefix("zkctl: 'nightly' already ran for every-864000000s-"), r.stderrText)
                XCTAssertTrue(r.stderrText.hasSuffix("; not running it again\n"), r.stderrText)
                XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "one line")
            }
        }
        XCTAssertEqual(ran, 1)
        XCTAssertEqual(skipped, 9)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "exactly one ran CMD: \(lines)")

        let all = try records(kit, "nightly")
        XCTAssertEqual(all.count, 1)
        let record = try XCTUnwrap(all.first)
        let key = try XCTUnwrap(record["key"] as? String)
        XCTAssertTrue(key.hasPrefix("every-864000000s-"), key)
        let index = try XCTUnwrap(Int(key.dropFirst("every-864000000s-".count)))
        XCTAssertEqual(index, Int(Date().timeIntervalSince1970) / 864_000_000, "period key = floor(now / period)")
        XCTAssertEqual(record["task"] as? String, "nightly")
        XCTAssertEqual(record["period"] as? String, "864000000s")
        XCTAssertEqual(record["exitCode"] as? Int, 0)
        XCTAssertEqual(record["command"] as? String, "sh")
        XCTAssertNotNil(record["start"] as? Int)
        XCTAssertNotNil(record["end"] as? Int)
        XCTAssertNotNil(record["host"] as? String)
        XCTAssertEqual(record["path"] as? String, kit.tasksRoot + "/nightly/" + key)
    }

    func testStatusTableAndJSON() throws {
        let kit = self.kit!
        XCTAssertEqual(try kit.zkctl(["run-once", "report", "--key", "2024-01-01", "--", "true"]).status, 0)
        let failed = try kit.zkctl(["run-once", "report", "--key", "2024-01-02", "--record-failure", "--", "sh", "-c", "exit 3"])
        XCTAssertEqual(failed.status, 3, "the runner exits with CMD's code")

        let table = try kit.zkctl(["run-once", "report", "--status"])
        XCTAssertEqual(table.status, 0, table.stderrText)
        XCTAssertEqual(table.stderrText, "")
        let lines = table.stdoutText.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        XCTAssertEqual(lines.count, 3, table.stdoutText)
        XCTAssertEqual(lines.first, ["KEY", "HOST", "PID", "START", "END", "EXIT"])
        XCTAssertEqual(lines.dropFirst().map { $0.first }, ["2024-01-01", "2024-01-02"])
        XCTAssertEqual(lines.dropFirst().map { $0.last }, ["0", "3"])

        let all = try records(kit, "report")
        XCTAssertEqual(all.map { $0["key"] as? String }, ["2024-01-01", "2024-01-02"])
        XCTAssertEqual(all.map { $0["exitCode"] as? Int }, [0, 3])

        let one = try kit.zkctl(["-o", "json", "run-once", "report", "--status", "--key", "2024-01-02"])
        let filtered = try XCTUnwrap(JSONSerialization.jsonObject(with: one.stdout) as? [[String: Any]])
        XCTAssertEqual(filtered.map { $0["key"] as? String }, ["2024-01-02"])

        let unknown = try kit.zkctl(["run-once", "never-ran", "--status"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.stdoutText, "")
        XCTAssertTrue(unknown.stderrText.hasPrefix("zkctl: no run-once records for 'never-ran'"), unknown.stderrText)
    }

    /// The record stores its times as ISO 8601 text (other readers of the node expect that);
    /// `--status -o json` gives them as ms since the epoch, like every JSON output, and the
    /// table shows the stored text.
    func testStatusJSONGivesTimesInMillisecondsWhileTheRecordKeepsISOText() throws {
        let kit = self.kit!
        let before = Int(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(try kit.zkctl(["run-once", "timed", "--every", "10000d", "--", "true"]).status, 0)
        let after = Int(Date().timeIntervalSince1970 * 1000)

        let record = try XCTUnwrap(try records(kit, "timed").first)
        let key = try XCTUnwrap(record["key"] as? String)
        let start = try XCTUnwrap(record["start"] as? Int, "start is a number: \(record)")
        let end = try XCTUnwrap(record["end"] as? Int, "end is a number: \(record)")
        let periodStart = try XCTUnwrap(record["periodStart"] as? Int, "periodStart is a number: \(record)")
        // The stored text has ms precision.
        XCTAssertTrue((before...after).contains(start), "\(before) <= \(start) <= \(after)")
        XCTAssertTrue((start...after).contains(end), "\(start) <= \(end) <= \(after)")
        let period = 10_000 * 86_400_000
        XCTAssertEqual(periodStart, before / period * period)

        let stored = try kit.zkctl(["-o", "json", "get", kit.tasksRoot + "/timed/" + key])
        XCTAssertEqual(stored.status, 0, stored.stderrText)
        let node = try XCTUnwrap(JSONSerialization.jsonObject(with: stored.stdout) as? [String: Any])
        let data = try XCTUnwrap((node["data"] as? String)?.data(using: .utf8))
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let storedStart = try XCTUnwrap(doc["start"] as? String, "the record keeps ISO text: \(doc)")
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        XCTAssertEqual(iso.date(from: storedStart).map { Int(($0.timeIntervalSince1970 * 1000).rounded()) }, start)
        XCTAssertTrue(doc["end"] is String && doc["periodStart"] is String, "\(doc)")

        let table = try kit.zkctl(["run-once", "timed", "--status"])
        XCTAssertEqual(table.status, 0, table.stderrText)
        XCTAssertTrue(table.stdoutText.contains(storedStart), table.stdoutText)
    }

    func testASecondRunForTheSameKeyIsSkippedAndQuietSilencesIt() throws {
        let kit = self.kit!
        let log = kit.file("log")
        let first = try kit.zkctl(["run-once", "migrate", "--key", "v42", "--", "sh", "-c", #"echo first >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(first.status, 0, first.stderrText)
        let second = try kit.zkctl(["run-once", "migrate", "--key", "v42", "--", "sh", "-c", #"echo second >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(second.status, 0)
        XCTAssertTrue(second.stderrText.hasPrefix("zkctl: 'migrate' already ran for v42 on "), second.stderrText)
        XCTAssertTrue(second.stderrText.contains("(exit 0)"), second.stderrText)
        let quiet = try kit.zkctl(["-q", "run-once", "migrate", "--key", "v42", "--", "sh", "-c", #"echo third >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(quiet.status, 0)
        XCTAssertEqual(quiet.stderrText, "")
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "first\n")
        // Another key runs.
        let other = try kit.zkctl(["run-once", "migrate", "--key", "v43", "--", "sh", "-c", #"echo other >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(other.status, 0)
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "first\nother\n")
    }

    func testChildSeesItsRecordAndKey() throws {
        let kit = self.kit!
        let r = try kit.zkctl(["run-once", "envtask", "--key", "k1", "--", "sh", "-c", #"echo "$ZKCTL_TASK_KEY $ZKCTL_TASK_PATH"; exit 5"#])
        XCTAssertEqual(r.status, 5)
        XCTAssertEqual(r.stdoutText, "k1 \(kit.tasksRoot)/envtask/k1\n")
        XCTAssertEqual(r.stderrText, "")
    }

    func testAClaimerThatDiesLeavesAnUnfinishedRecordThatIsNotRunAgain() throws {
        let kit = self.kit!
        let pids = kit.file("pids")
        // The child writes zkctl's pid and its own; the test kills zkctl with SIGKILL (no cleanup).
        let run = kit.background {
            try kit.zkctl(["run-once", "fragile", "--key", "k", "--", "sh", "-c", #"echo "$PPID $$" > "$PIDS"; while :; do sleep 0.05; done"#],
                          env: ["PIDS": pids])
        }
        try kit.waitForFile(pids, nonEmpty: true)
        let numbers = try String(contentsOfFile: pids, encoding: .utf8).split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
        XCTAssertEqual(numbers.count, 2)
        defer { for pid in numbers { kill(pid, SIGKILL) } }
        XCTAssertEqual(kill(numbers[0], SIGKILL), 0)
        // The orphaned child keeps zkctl's output pipes open: it goes too before the wait.
        usleep(100_000)
        kill(numbers[1], SIGKILL)
        XCTAssertEqual(try run.wait().status, 128 + SIGKILL)

        let all = try records(kit, "fragile")
        XCTAssertEqual(all.count, 1)
        XCTAssertTrue(all.first?["end"] is NSNull, "no end: \(all)")
        XCTAssertTrue(all.first?["exitCode"] is NSNull)
        let table = try kit.zkctl(["run-once", "fragile", "--status"])
        XCTAssertTrue(table.stdoutText.contains("unfinished"), table.stdoutText)

        let ran = kit.file("ran")
        let again = try kit.zkctl(["run-once", "fragile", "--key", "k", "--", "touch", ran])
        XCTAssertEqual(again.status, 0)
        XCTAssertTrue(again.stderrText.contains("not finished"), again.stderrText)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran), "not re-run for the same key")

        // Its runner ran here and is gone: --reset forgets the record, and the next run runs.
        let reset = try kit.zkctl(["run-once", "fragile", "--key", "k", "--reset"])
        XCTAssertEqual(reset.status, 0, reset.stderrText)
        let rerun = try kit.zkctl(["run-once", "fragile", "--key", "k", "--", "touch", ran])
        XCTAssertEqual(rerun.status, 0, rerun.stderrText)
        XCTAssertTrue(FileManager.default.fileExists(atPath: ran), "run again after --reset")
    }

    func testSIGTERMIsPassedOnAndTheRunIsNotRecorded() throws {
        let kit = self.kit!
        let pidFile = kit.file("pid"), got = kit.file("got")
        let script = #"trap 'echo got TERM > "$GOT"; exit 9' TERM; echo $PPID > "$PIDFILE"; while :; do sleep 0.05; done"#
        let run = kit.background {
            try kit.zkctl(["run-once", "stoppable", "--key", "k", "--", "sh", "-c", script], env: ["GOT": got, "PIDFILE": pidFile])
        }
        try kit.waitForFile(pidFile, nonEmpty: true)
        let pid = try XCTUnwrap(pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, SIGTERM), 0)
        let r = try run.wait()
        XCTAssertEqual(r.status, 143, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        XCTAssertEqual(try String(contentsOfFile: got, encoding: .utf8), "got TERM\n")
        XCTAssertEqual(try records(kit, "stoppable").count, 0, "an interrupted run is not done")
    }

    func testRecordFailureRecordsTheRealCodeOfAnInterruptedRun() throws {
        let kit = self.kit!
        let pidFile = kit.file("pid"), got = kit.file("got")
        // CMD exits 0 on SIGTERM: the run still ended because zkctl was interrupted.
        let script = #"trap 'echo got TERM > "$GOT"; exit 0' TERM; echo $PPID > "$PIDFILE"; while :; do sleep 0.05; done"#
        let run = kit.background {
            try kit.zkctl(["run-once", "stoppable", "--key", "k", "--record-failure", "--", "sh", "-c", script],
                          env: ["GOT": got, "PIDFILE": pidFile])
        }
        try kit.waitForFile(pidFile, nonEmpty: true)
        let pid = try XCTUnwrap(pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, SIGTERM), 0)
        let r = try run.wait()
        XCTAssertEqual(r.status, 143, r.stderrText)
        XCTAssertEqual(try String(contentsOfFile: got, encoding: .utf8), "got TERM\n")
        let record = try XCTUnwrap(try records(kit, "stoppable").first)
        XCTAssertEqual(record["exitCode"] as? Int, 143, "the code zkctl exited with, not CMD's 0")
        XCTAssertEqual(record["commandExitCode"] as? Int, 0, "CMD's own code")
        XCTAssertEqual(record["interrupted"] as? String, "SIGTERM")
        XCTAssertNotNil(record["end"] as? Int)
        let table = try kit.zkctl(["run-once", "stoppable", "--status"])
        XCTAssertTrue(table.stdoutText.hasSuffix(" 143 (SIGTERM)\n"), table.stdoutText)

        // Recorded as done: the next run skips it, naming the code.
        let ran = kit.file("ran")
        let next = try kit.zkctl(["run-once", "stoppable", "--key", "k", "--", "touch", ran])
        XCTAssertEqual(next.status, 0, next.stderrText)
        XCTAssertTrue(next.stderrText.contains("(exit 143)"), next.stderrText)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran))
    }

    // MARK: Failures do not count as done

    func testAFailedRunIsNotDoneAndTheNextRunRunsAgain() throws {
        let kit = self.kit!
        let log = kit.file("log")
        let failed = try kit.zkctl(["run-once", "ci", "--key", "build-7", "--", "sh", "-c", #"echo try >> "$LOG"; exit 4"#], env: ["LOG": log])
        XCTAssertEqual(failed.status, 4, "CMD's code")
        XCTAssertEqual(failed.stderrText, "")
        XCTAssertEqual(try records(kit, "ci").count, 0, "a failed run leaves no record")

        let killed = try kit.zkctl(["run-once", "ci", "--key", "build-7", "--", "sh", "-c", #"echo try >> "$LOG"; kill -USR1 $$"#], env: ["LOG": log])
        XCTAssertEqual(killed.status, 128 + SIGUSR1, "a CMD killed by a signal")
        XCTAssertEqual(try records(kit, "ci").count, 0, "a killed run leaves no record")

        let missing = try kit.zkctl(["run-once", "ci", "--key", "build-7", "--", "no-such-command-zkctl-test"])
        XCTAssertEqual(missing.status, 127)
        XCTAssertEqual(missing.stderrText, "zkctl: no-such-command-zkctl-test: command not found\n")
        XCTAssertEqual(try records(kit, "ci").count, 0, "a CMD that never started leaves no record")

        let retry = try kit.zkctl(["run-once", "ci", "--key", "build-7", "--", "sh", "-c", #"echo ok >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(retry.status, 0, retry.stderrText)
        XCTAssertEqual(retry.stderrText, "", "the retry runs CMD")
        let after = try kit.zkctl(["run-once", "ci", "--key", "build-7", "--", "sh", "-c", #"echo again >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(after.status, 0)
        XCTAssertTrue(after.stderrText.contains("already ran for build-7") && after.stderrText.contains("(exit 0)"), after.stderrText)
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "try\ntry\nok\n", "a success is done; failures were retried")
        XCTAssertEqual(try records(kit, "ci").map { $0["exitCode"] as? Int }, [0])

        // The same for a period.
        let period = try kit.zkctl(["run-once", "hourly", "--every", "10000d", "--", "sh", "-c", "exit 5"])
        XCTAssertEqual(period.status, 5)
        let periodRetry = try kit.zkctl(["run-once", "hourly", "--every", "10000d", "--", "sh", "-c", #"echo period >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(periodRetry.status, 0)
        XCTAssertEqual(periodRetry.stderrText, "")
        XCTAssertTrue(try String(contentsOfFile: log, encoding: .utf8).hasSuffix("period\n"))
    }

    func testRecordFailureRecordsAFailedRunAsDone() throws {
        let kit = self.kit!
        let failed = try kit.zkctl(["run-once", "strict", "--key", "k", "--record-failure", "--", "sh", "-c", "exit 4"])
        XCTAssertEqual(failed.status, 4)
        let record = try XCTUnwrap(try records(kit, "strict").first)
        XCTAssertEqual(record["exitCode"] as? Int, 4)
        XCTAssertNil(record["interrupted"])
        let killed = try kit.zkctl(["run-once", "strict", "--key", "s", "--record-failure", "--", "sh", "-c", "kill -USR1 $$"])
        XCTAssertEqual(killed.status, 128 + SIGUSR1)
        let signalled = try XCTUnwrap(try records(kit, "strict").first { $0["key"] as? String == "s" })
        XCTAssertEqual(signalled["exitCode"] as? Int, 128 + Int(SIGUSR1))
        XCTAssertEqual(signalled["signal"] as? String, "SIGUSR1")

        let ran = kit.file("ran")
        let next = try kit.zkctl(["run-once", "strict", "--key", "k", "--", "touch", ran])
        XCTAssertEqual(next.status, 0)
        XCTAssertTrue(next.stderrText.hasPrefix("zkctl: 'strict' already ran for k on "), next.stderrText)
        XCTAssertTrue(next.stderrText.contains("(exit 4)"), next.stderrText)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ran), "a recorded failure is done")
    }

    func testCtrlCdRunGivesCMDOneSIGINTAndIsNotRecorded() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let r = try kit.zkctlTypingCtrlC(["run-once", "tty", "--key", "k", "--", try kit.signalCounter(), count], count: count)
        XCTAssertEqual(r.status, 130, r.stdoutText)
        XCTAssertEqual(try kit.signalCount(count), 1, "one Ctrl-C, one SIGINT for CMD")
        XCTAssertFalse(r.stdoutText.contains("zkctl:"), "no diagnostic: \(r.stdoutText)")
        XCTAssertEqual(try records(kit, "tty").count, 0, "an interrupted run is not done")
        let ran = kit.file("ran")
        let next = try kit.zkctl(["run-once", "tty", "--key", "k", "--", "touch", ran])
        XCTAssertEqual(next.status, 0, next.stderrText)
        XCTAssertTrue(FileManager.default.fileExists(atPath: ran), "the next run runs CMD")
    }

    func testCtrlCdRunWithRecordFailureIsRecordedAsInterrupted() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let r = try kit.zkctlTypingCtrlC(["run-once", "tty", "--key", "k", "--record-failure", "--", try kit.signalCounter(), count],
                                         count: count)
        XCTAssertEqual(r.status, 130, r.stdoutText)
        XCTAssertEqual(try kit.signalCount(count), 1, "one Ctrl-C, one SIGINT for CMD")
        let record = try XCTUnwrap(try records(kit, "tty").first)
        XCTAssertEqual(record["exitCode"] as? Int, 130)
        XCTAssertEqual(record["interrupted"] as? String, "SIGINT")
        XCTAssertEqual(record["commandExitCode"] as? Int, 3, "the counter's own code")
    }

    func testKillINTdRunGivesCMDOneSIGINTAndIsNotRecorded() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let counter = try kit.signalCounter()
        let run = kit.background { try kit.zkctl(["run-once", "killed", "--key", "k", "--", counter, count]) }
        try kit.kill(SIGINT, zkctlOf: count)
        let r = try run.wait()
        XCTAssertEqual(r.status, 130, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        XCTAssertEqual(try kit.signalCount(count), 1, "kill -INT zkctl: passed on to CMD once")
        XCTAssertEqual(try records(kit, "killed").count, 0, "an interrupted run is not done")
    }

    // MARK: --reset

    func testResetForgetsAKeyAndTheNextRunRuns() throws {
        let kit = self.kit!
        let log = kit.file("log")
        let first = try kit.zkctl(["run-once", "deploy", "--key", "v1", "--", "sh", "-c", #"echo one >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(first.status, 0, first.stderrText)
        let reset = try kit.zkctl(["run-once", "deploy", "--key", "v1", "--reset"])
        XCTAssertEqual(reset.status, 0, reset.stderrText)
        XCTAssertEqual(reset.stdoutText, "")
        XCTAssertTrue(reset.stderrText.hasPrefix("zkctl: forgot 'deploy' for v1 on "), reset.stderrText)
        XCTAssertEqual(reset.stderrText.filter { $0 == "\n" }.count, 1)
        XCTAssertEqual(try records(kit, "deploy").count, 0)

        let nothing = try kit.zkctl(["run-once", "deploy", "--key", "v1", "--reset"])
        XCTAssertEqual(nothing.status, 1, "nothing to forget")
        XCTAssertEqual(nothing.stdoutText, "")
        XCTAssertEqual(nothing.stderrText, "zkctl: 'deploy' has no record for v1; nothing to forget\n")

        let second = try kit.zkctl(["run-once", "deploy", "--key", "v1", "--", "sh", "-c", #"echo two >> "$LOG""#], env: ["LOG": log])
        XCTAssertEqual(second.status, 0, second.stderrText)
        XCTAssertEqual(second.stderrText, "")
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "one\ntwo\n", "run again after --reset")

        // --every: the current period; -q silences the note.
        XCTAssertEqual(try kit.zkctl(["run-once", "daily", "--every", "10000d", "--", "true"]).status, 0)
        let quiet = try kit.zkctl(["-q", "run-once", "daily", "--every", "10000d", "--reset"])
        XCTAssertEqual(quiet.status, 0, quiet.stderrText)
        XCTAssertEqual(quiet.stderrText, "")
        XCTAssertEqual(try records(kit, "daily").count, 0)
    }

    func testResetRefusesARunThatIsStillGoing() throws {
        let kit = self.kit!
        let ready = kit.file("ready"), release = kit.file("release")
        let holder = kit.background {
            try kit.zkctl(["run-once", "long", "--key", "k", "--", "sh", "-c", #"touch "$READY"; while [ ! -e "$RELEASE" ]; do sleep 0.05; done"#],
                          env: ["READY": ready, "RELEASE": release])
        }
        defer { kit.touch(release) }
        try kit.waitForFile(ready)
        let reset = try kit.zkctl(["run-once", "long", "--key", "k", "--reset"])
        XCTAssertEqual(reset.status, 75, reset.stderrText)
        XCTAssertTrue(reset.stderrText.hasPrefix("zkctl: 'long' is still running for k on "), reset.stderrText)
        XCTAssertEqual(reset.stderrText.filter { $0 == "\n" }.count, 1)
        kit.touch(release)
        XCTAssertEqual(try holder.wait().status, 0)
        XCTAssertEqual(try records(kit, "long").map { $0["exitCode"] as? Int }, [0], "the run ended and was recorded")
    }

    func testUsageErrors() throws {
        let kit = self.kit!
        for args in [["run-once", "t", "--key", "k"],
                     ["run-once", "t", "--key", "k", "--"],
                     ["run-once", "t", "--", "true"],
                     ["run-once", "t", "--key", "k", "--every", "1h", "--", "true"],
                     ["run-once", "t", "--key", "a/b", "--", "true"],
                     ["run-once", "t", "--every", "0", "--", "true"],
                     ["run-once", "t", "--status", "--", "true"],
                     ["run-once", "t", "--reset"],
                     ["run-once", "t", "--key", "k", "--reset", "--", "true"],
                     ["run-once", "t", "--key", "k", "--reset", "--status"],
                     ["run-once", "t", "--status", "--record-failure"],
                     ["run-once", "t", "--key", "k", "--reset", "--record-failure"]] {
            let r = try kit.zkctl(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderrText)")
            XCTAssertEqual(r.stdoutText, "")
            XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), r.stderrText)
            XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, r.stderrText)
        }
    }
}
