import Foundation
import XCTest
import ZKTestSupport

/// The progress line of long work: on a terminal after about a second, redrawn in place at most
/// ten times a second, cleared at the end so that the summary stands alone; never without a
/// terminal, never with -q or --no-progress; forced with --progress or ZKCTL_PROGRESS.
///
/// Most runs pass the hidden `--progress-after 0`, so that a tree small enough to make quickly
/// shows progress at once; one run checks the default second.
final class ProgressTests: XCTestCase {
    static let nodeCount = 10_000
    static let now = ["--progress-after", "0"]

    var environment: [String: String] {
        ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "LANG": "C.UTF-8", "TERM": "xterm"]
    }

    /// An export file of `nodeCount` nodes under `root` (200 parents with their children).
    func exportFile(root: String) throws -> URL {
        let acl = #""acl":[{"scheme":"world","id":"anyone","perms":"cdrwa"}]"#
        var lines = [#"{"path":"","type":"persistent","data":"",\#(acl)}"#]
        let perParent = Self.nodeCount / 200
        for i in 0..<200 {
            lines.append(#"{"path":"d\#(i)","type":"persistent","data":"",\#(acl)}"#)
            for j in 0..<(perParent - 1) {
                lines.append(#"{"path":"d\#(i)/n\#(j)","type":"persistent","data":"value \#(j)",\#(acl)}"#)
            }
        }
        let text = #"{"format":"zkctl-export","version":1,"root":"\#(root)","exported":"2026-12-01T00:00:00.000Z","nodes":["#
            + "\n" + lines.joined(separator: ",\n") + "\n" + #"],"nodeCount":\#(lines.count),"skippedEphemeral":0}"#
        let file = try ZKTestPaths.makeTemporaryDirectory(label: "progress").appendingPathComponent("tree.json")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The progress draws in what a terminal received: each "\r" + text + ESC[K.
    func draws(_ screen: String, label: String) -> [String] {
        screen.components(separatedBy: "\r").dropFirst().compactMap { part in
            guard part.hasPrefix("zkctl: \(label): "), let end = part.range(of: "\u{1b}[K") else { return nil }
            return String(part[..<end.lowerBound])
        }
    }

    /// What stays on the screen: "\r" goes back to the line's start and ESC[K erases to its end.
    func visibleLines(_ screen: String) -> [String] {
        var lines: [String] = []
        for raw in screen.components(separatedBy: "\n") {
            var line: [Character] = []
            var column = 0
            var rest = Substring(raw)
            while let c = rest.first {
                if c == "\r" { column = 0; rest = rest.dropFirst(); continue }
                if rest.hasPrefix("\u{1b}[K") { line.removeSubrange(min(column, line.count)...); rest = rest.dropFirst(3); continue }
                if column < line.count { line[column] = c } else { line.append(c) }
                column += 1
                rest = rest.dropFirst()
            }
            lines.append(String(line))
        }
        return lines.filter { !$0.isEmpty }
    }

    func testOnATerminalLongWorkShowsProgressThenOnlyTheSummary() throws {
        let server = try SharedServers.standalone()
        let root = "/t-\(UUID().uuidString)"
        let file = try exportFile(root: root)
        let zkctl = zkctlBinaryPath()

        let started = Date()
        let imported = try runOnTerminal(zkctl, Self.now + ["-s", server.connectString, "import", file.path], environment: environment, timeout: 300)
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(imported.status, 0, imported.stdoutText)
        let screen = imported.stdoutText
        let importDraws = draws(screen, label: "import")
        XCTAssertFalse(importDraws.isEmpty, "a progress line on the terminal: \(screen.debugDescription.prefix(2000))")
        let total = Self.nodeCount + 1
        let counted = importDraws.filter { $0.contains(" of \(total.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))) writes (") }
        XCTAssertFalse(counted.isEmpty, "the total is known to an import: \(importDraws)")
        // At most ten redraws a second.
        XCTAssertLessThanOrEqual(importDraws.count, Int(seconds * 10) + 2, "\(importDraws.count) redraws in \(seconds) s")
        // Cleared at the end: the summary stands alone on the screen.
        XCTAssertEqual(visibleLines(screen), ["zkctl: imported \(file.path) into \(root): \(total) created, 0 updated, 0 skipped, 0 removed"],
                       screen.debugDescription.suffix(600).description)

        let copy = file.deletingLastPathComponent().appendingPathComponent("copy.json").path
        let exported = try runOnTerminal(zkctl, Self.now + ["-s", server.connectString, "export", root, "-f", copy], environment: environment, timeout: 300)
        XCTAssertEqual(exported.status, 0, exported.stdoutText)
        XCTAssertFalse(draws(exported.stdoutText, label: "export").isEmpty, exported.stdoutText.debugDescription.prefix(2000).description)
        XCTAssertTrue(draws(exported.stdoutText, label: "export").contains { $0.contains(" nodes read, ") }, exported.stdoutText)
        XCTAssertEqual(visibleLines(exported.stdoutText), ["zkctl: exported \(total) nodes from \(root)"])

        // -q and --no-progress: nothing of it, on the same terminal and the same work.
        for flags in [["-q"], ["--no-progress"]] {
            let r = try runOnTerminal(zkctl, Self.now + flags + ["-s", server.connectString, "export", root, "-f", copy], environment: environment, timeout: 300)
            XCTAssertEqual(r.status, 0, r.stdoutText)
            XCTAssertFalse(r.stdoutText.contains("\r"), "\(flags): \(r.stdoutText.debugDescription.prefix(400))")
            XCTAssertFalse(r.stdoutText.contains("zkctl: export:"), "\(flags)")
        }
        let quietEnv = try runOnTerminal(zkctl, Self.now + ["-s", server.connectString, "export", root, "-f", copy],
                                         environment: environment.merging(["ZKCTL_PROGRESS": "no"]) { $1 }, timeout: 300)
        XCTAssertFalse(quietEnv.stdoutText.contains("zkctl: export:"), "ZKCTL_PROGRESS=no")

        // The default: nothing in the first second, then at most ten redraws a second.
        let began = Date()
        let plain = try runOnTerminal(zkctl, ["-s", server.connectString, "tree", root, "--data"], environment: environment, timeout: 300)
        let took = Date().timeIntervalSince(began)
        XCTAssertEqual(plain.status, 0)
        let treeDraws = draws(plain.stdoutText, label: "tree")
        if took < 1 { XCTAssertEqual(treeDraws, [], "no progress within the first second (\(took) s)") }
        XCTAssertLessThanOrEqual(treeDraws.count, max(0, Int((took - 1) * 10) + 2), "\(treeDraws.count) redraws in \(took) s")
        XCTAssertFalse(visibleLines(plain.stdoutText).contains { $0.hasPrefix("zkctl: tree:") }, "cleared before the tree is drawn")

        let deleted = try runOnTerminal(zkctl, Self.now + ["-s", server.connectString, "delete", "-r", "--force", root], environment: environment, timeout: 300)
        XCTAssertEqual(deleted.status, 0, deleted.stdoutText)
        let deleteDraws = draws(deleted.stdoutText, label: "delete")
        XCTAssertTrue(deleteDraws.contains { $0.contains(" of \(total.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))) nodes deleted (") },
                      deleted.stdoutText.debugDescription.prefix(2000).description)
        // Deletes are counted a transaction at a time: a rate shows (the estimate's format is in ProgressLineTests).
        XCTAssertTrue((importDraws + deleteDraws).contains { $0.contains("/s, ") }, "a rate: \(importDraws + deleteDraws)")
        XCTAssertEqual(visibleLines(deleted.stdoutText), [])
    }

    func testWithoutATerminalOnlyWhenForced() throws {
        let server = try SharedServers.standalone()
        let root = "/t-\(UUID().uuidString)"
        let file = try exportFile(root: root)
        let zkctl = zkctlBinaryPath()
        let total = Self.nodeCount + 1

        let imported = try runProcess(zkctl, Self.now + ["-s", server.connectString, "import", file.path], environment: environment, timeout: 300)
        XCTAssertEqual(imported.status, 0, imported.stderrText)
        XCTAssertEqual(imported.stderrText, "zkctl: imported \(file.path) into \(root): \(total) created, 0 updated, 0 skipped, 0 removed\n")

        let copy = file.deletingLastPathComponent().appendingPathComponent("copy.json").path
        for (flags, env) in [(["--progress"], [String: String]()), ([], ["ZKCTL_PROGRESS": "yes"])] {
            let r = try runProcess(zkctl, Self.now + flags + ["-s", server.connectString, "export", root, "-f", copy],
                                   environment: environment.merging(env) { $1 }, timeout: 300)
            XCTAssertEqual(r.status, 0, r.stderrText)
            XCTAssertFalse(draws(r.stderrText, label: "export").isEmpty, "forced by \(flags) \(env): \(r.stderrText.debugDescription.prefix(400))")
            XCTAssertTrue(r.stderrText.hasSuffix("\r\u{1b}[Kzkctl: exported \(total) nodes from \(root)\n"), r.stderrText.debugDescription.suffix(300).description)
        }
        // find and du read the whole tree too: forced progress, then only their output on stdout.
        for command in [["find", root, "--name", "*"], ["du", root]] {
            let r = try runProcess(zkctl, Self.now + ["--progress", "-s", server.connectString] + command, environment: environment, timeout: 300)
            XCTAssertEqual(r.status, 0, r.stderrText)
            XCTAssertFalse(draws(r.stderrText, label: command[0]).isEmpty, "\(command[0]): \(r.stderrText.debugDescription.prefix(400))")
            XCTAssertFalse(r.stdoutText.contains("nodes read"), "\(command[0]): progress on stdout")
        }
        // -q wins over --progress.
        let quiet = try runProcess(zkctl, Self.now + ["-q", "--progress", "-s", server.connectString, "export", root, "-f", copy], environment: environment, timeout: 300)
        XCTAssertEqual(quiet.status, 0, quiet.stderrText)
        XCTAssertEqual(quiet.stderrText, "")

        let deleted = try runProcess(zkctl, Self.now + ["-s", server.connectString, "delete", "-r", "--force", root], environment: environment, timeout: 300)
        XCTAssertEqual(deleted.status, 0, deleted.stderrText)
        XCTAssertEqual(deleted.stderrText, "")
    }

    func testConflictingOrBadProgressSettingsAreUsageErrors() throws {
        let both = try runProcess(zkctlBinaryPath(), ["--progress", "--no-progress", "-s", "127.0.0.1:1", "ls", "/"], environment: environment)
        XCTAssertEqual(both.status, 64)
        XCTAssertTrue(both.stderrText.hasPrefix("zkctl: --progress and --no-progress cannot be used together"), both.stderrText)
        XCTAssertEqual(both.stderrText.split(separator: "\n").count, 1, both.stderrText)
        let bad = try runProcess(zkctlBinaryPath(), ["-s", "127.0.0.1:1", "ls", "/"], environment: environment.merging(["ZKCTL_PROGRESS": "maybe"]) { $1 })
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderrText.hasPrefix("zkctl: bad progress 'maybe' from environment ZKCTL_PROGRESS: must be yes or no"), bad.stderrText)
        XCTAssertEqual(bad.stdoutText, "")
    }
}
