import Foundation
import XCTest
import ZKTestSupport

/// `watch --exec -- CMD` and `config watch --exec -- CMD` through the binary: CMD once per
/// change with ZKCTL_EVENT/PATH/VERSION and the value on stdin, never two at once, coalescing,
/// --debounce, failures reported, --exit-on-error.
final class WatchExecTests: ToolkitTestCase {
    override var label: String { "wexec" }

    var environment: [String: String] {
        ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": FileManager.default.temporaryDirectory.path]
    }

    /// zkctl ARGS in the background; stopped with SIGTERM at the end of the test.
    func background(_ args: [String]) throws -> BackgroundProcess {
        let p = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString] + args, environment: environment)
        addTeardownBlock {
            p.signal(SIGTERM)
            if p.waitForExit(seconds: 15) == nil { p.kill() }
        }
        return p
    }

    /// Sets `path` to `probe-N` until CMD has run once (the watch is armed); returns the lines.
    func waitUntilArmed(_ p: BackgroundProcess, _ path: String, pause: TimeInterval = 0.3, file: StaticString = #filePath, line: UInt = #line) throws {
        for i in 0..<Int(30 / pause) {
            try ok(["set", path, "probe-\(i)"])
            if p.waitUntil(timeout: pause, { out, _ in out.contains("probe-") }) { return }
        }
        XCTFail("CMD never ran: \(p.stderr)", file: file, line: line)
    }

    func testEachChangeRunsCMDWithItsEnvironmentAndValue() throws {
        let path = "\(base)/w"
        try ok(["create", path, "initial"])
        let p = try background(["watch", path, "--exec", "--", "sh", "-c",
                                #"printf '%s|%s|%s|%s\n' "$ZKCTL_EVENT" "$ZKCTL_PATH" "$ZKCTL_VERSION" "$(cat)""#])
        try waitUntilArmed(p, path)
        let before = p.stdout.split(separator: "\n").count
        try ok(["set", path, "new value"])
        XCTAssertTrue(p.waitForLines(before + 1), p.stdout + p.stderr)
        try ok(["delete", path])
        XCTAssertTrue(p.waitForLines(before + 2), p.stdout + p.stderr)
        try ok(["create", path, "back"])
        XCTAssertTrue(p.waitForLines(before + 3), p.stdout + p.stderr)
        let lines = p.stdout.split(separator: "\n").map(String.init)
        let version = try XCTUnwrap(Int(lines[before - 1].split(separator: "|")[2]))
        XCTAssertEqual(Array(lines.suffix(3)), ["changed|\(path)|\(version + 1)|new value", "deleted|\(path)||", "created|\(path)|0|back"])
        // The initial state ran nothing; nothing but CMD's output on stdout.
        XCTAssertFalse(p.stdout.contains("initial"), p.stdout)
        XCTAssertEqual(p.stderr, "")
        XCTAssertNil(p.exitStatus)
    }

    func testNeverTwoAtOnceAndChangesDuringARunCoalesce() throws {
        let path = "\(base)/w"
        try ok(["create", path, "0"])
        let p = try background(["watch", path, "--exec", "--", "sh", "-c", #"echo "start $(cat)"; sleep 1; echo end"#])
        try waitUntilArmed(p, path)
        XCTAssertTrue(p.waitUntil(timeout: 15) { out, _ in out.hasSuffix("end\n") }, p.stdout)
        let mark = p.stdout.count
        try ok(["set", path, "first"])
        XCTAssertTrue(p.waitUntil(timeout: 15) { out, _ in out.dropFirst(mark).contains("start first") }, p.stdout)
        // While that run sleeps: five changes, which make one more run, for the last value.
        for i in 1...5 { try ok(["set", path, "v\(i)"]) }
        XCTAssertTrue(p.waitUntil(timeout: 15) { out, _ in out.dropFirst(mark).contains("start v5\nend\n") }, p.stdout)
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(String(p.stdout.dropFirst(mark)), "start first\nend\nstart v5\nend\n")
    }

    func testDebounceRunsOnceAfterAQuietPeriod() throws {
        let path = "\(base)/w"
        try ok(["create", path, "0"])
        let p = try background(["watch", path, "--debounce", "1s", "--exec", "--", "sh", "-c", #"echo "run $(cat)""#])
        try waitUntilArmed(p, path, pause: 2.5)
        let mark = p.stdout.count
        // Four changes less than the debounce apart: one run, for the last.
        for i in 1...4 { try ok(["set", path, "d\(i)"]); Thread.sleep(forTimeInterval: 0.3) }
        XCTAssertTrue(p.waitUntil(timeout: 15) { out, _ in out.dropFirst(mark).contains("run d4\n") }, p.stdout)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(String(p.stdout.dropFirst(mark)), "run d4\n")
    }

    func testFailureIsReportedAndExitOnErrorStops() throws {
        let path = "\(base)/w"
        try ok(["create", path, "0"])
        let goesOn = try background(["watch", path, "--exec", "--", "sh", "-c", #"echo "ran $(cat)"; exit 3"#])
        try waitUntilArmed(goesOn, path)
        XCTAssertTrue(goesOn.waitForStderr { $0.contains("zkctl: sh failed (exit code 3) for changed \(path); watching on\n") }, goesOn.stderr)
        XCTAssertNil(goesOn.exitStatus)

        let stops = try background(["watch", path, "--exit-on-error", "--exec", "--", "sh", "-c", "exit 4"])
        var status: Int32? = nil
        for i in 0..<100 where status == nil {
            try ok(["set", path, "again-\(i)"])
            status = stops.waitForExit(seconds: 0.3)
        }
        XCTAssertEqual(status, 4, stops.stderr)
        XCTAssertEqual(stops.stderr, "zkctl: sh failed (exit code 4) for changed \(path)\n")
    }

    func testConfigWatchExecAndUsage() throws {
        let root = "\(base)/config"
        try ok(["--config-root", root, "config", "set", "flags", #"{"a":1}"#])
        let p = try background(["--config-root", root, "config", "watch", "flags", "--exec", "--", "sh", "-c",
                                #"printf '%s %s %s\n' "$ZKCTL_EVENT" "$ZKCTL_KEY" "$(cat)""#])
        var seen = false
        for i in 0..<100 where !seen {
            try ok(["--config-root", root, "config", "set", "flags", "{\"a\":\(i + 2)}"])
            seen = p.waitUntil(timeout: 0.3) { out, _ in out.contains("changed flags {\"a\":") }
        }
        XCTAssertTrue(seen, p.stdout + p.stderr)

        XCTAssertEqual(try fails(["watch", base, "--exec"], 64),
                       "zkctl: --exec needs the command to run: --exec -- CMD [ARGS...]; see 'zkctl watch --help'\n")
        XCTAssertEqual(try fails(["watch", base, "--", "true"], 64),
                       "zkctl: a command after -- runs only with --exec; see 'zkctl watch --help'\n")
        XCTAssertEqual(try fails(["watch", base, "--debounce", "1s"], 64),
                       "zkctl: --debounce and --exit-on-error apply with --exec; see 'zkctl watch --help'\n")
        XCTAssertEqual(try fails(["config", "watch", "k", "--once", "--exec", "--", "true"], 64),
                       "zkctl: --once and --exec cannot be combined; see 'zkctl config watch --help'\n")
        XCTAssertEqual(try fails(["watch", base, "--debounce", "-1s", "--exec", "--", "true"], 64).hasPrefix("zkctl: bad value '-1s' for '--debounce'"), true)
    }
}
