import Foundation
import XCTest
import ZKTestSupport

/// Completions, the man page and `make install`: generated from the command table, committed,
/// and checked against what the binary generates now.
final class DocsTests: XCTestCase {
    let root = ZKTestPaths.packageRoot

    func generated(_ what: String) throws -> String {
        let r = try runProcess(zkctlBinaryPath(), ["__generate", what])
        XCTAssertEqual(r.status, 0, r.stderrText)
        return r.stdoutText
    }

    func committed(_ relative: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
    }

    func testCommittedFilesMatchTheBinary() throws {
        for (what, file) in [("bash", "completions/zkctl.bash"), ("zsh", "completions/_zkctl"),
                             ("fish", "completions/zkctl.fish"), ("man", "man/zkctl.1")] {
            XCTAssertEqual(try committed(file), try generated(what),
                           "\(file) is stale: run 'make generate' and commit it")
        }
    }

    // MARK: bash

    /// Sources the bash script, completes `line` (the cursor at its end) and returns COMPREPLY.
    func bashComplete(_ words: [String], env: [String: String] = [:]) throws -> [String] {
        let quoted = words.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let script = """
        source '\(root.appendingPathComponent("completions/zkctl.bash").path)'
        COMP_WORDS=(\(quoted)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _zkctl
        printf '%s\\n' "${COMPREPLY[@]}"
        """
        let bin = URL(fileURLWithPath: zkctlBinaryPath()).deletingLastPathComponent().path
        var environment = ["PATH": "\(bin):/usr/bin:/bin", "HOME": NSTemporaryDirectory()]
        environment.merge(env) { $1 }
        let r = try runProcess("/bin/bash", ["-c", script], environment: environment, timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        return r.stdoutText.split(separator: "\n").map(String.init)
    }

    func testBashCompletesCommandsOptionsAndChoices() throws {
        XCTAssertEqual(try bashComplete(["zkctl", "statu"]), ["status"])
        XCTAssertEqual(try bashComplete(["zkctl", "sta"]).sorted(), ["stat", "status"])
        XCTAssertTrue(try bashComplete(["zkctl", ""]).contains("tree"))
        XCTAssertEqual(try bashComplete(["zkctl", "tree", "--de"]), ["--depth"])
        XCTAssertEqual(try bashComplete(["zkctl", "-o", ""]), ["text", "json", "ndjson", "prometheus"])
        XCTAssertEqual(try bashComplete(["zkctl", "tree", "--output", "j"]), ["json"])
        XCTAssertTrue(try bashComplete(["zkctl", "tree", "-"]).contains("--server"), "global options after the command")
    }

    func testBashCompletesLiveZnodePathsAndIsSilentWhenUnreachable() throws {
        let server = try SharedServers.standalone()
        let base = "/comp-\(UUID().uuidString.prefix(6))"
        let made = try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "create", "--parents", "\(base)/alpha/x"])
        XCTAssertEqual(made.status, 0, made.stderrText)
        _ = try runProcess(zkctlBinaryPath(), ["-s", server.connectString, "create", "\(base)/beta"])
        XCTAssertEqual(try bashComplete(["zkctl", "-s", server.connectString, "tree", "\(base)/"]),
                       ["\(base)/alpha", "\(base)/beta"])
        XCTAssertEqual(try bashComplete(["zkctl", "-s", server.connectString, "tree", "\(base)/al"]), ["\(base)/alpha/"])

        let started = Date()
        XCTAssertEqual(try bashComplete(["zkctl", "-s", "127.0.0.1:1", "tree", "/"]), [])
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    // MARK: fish and zsh

    func testFishCompletes() throws {
        let script = "source '\(root.appendingPathComponent("completions/zkctl.fish").path)'; complete -C 'zkctl sta'; complete -C 'zkctl tree --dep'; complete -C 'zkctl -o '"
        let r = try runProcess("/usr/bin/fish", ["--no-config", "-c", script], environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderrText)
        let lines = r.stdoutText.split(separator: "\n").map { String($0.split(separator: "\t").first ?? "") }
        XCTAssertTrue(lines.contains("status"), r.stdoutText)
        XCTAssertTrue(lines.contains("--depth"), r.stdoutText)
        XCTAssertTrue(lines.contains("json"), r.stdoutText)
    }

    func testZshScriptParsesAndCompletes() throws {
        let file = root.appendingPathComponent("completions/_zkctl").path
        let syntax = try runProcess("/usr/bin/zsh", ["-n", file])
        XCTAssertEqual(syntax.status, 0, syntax.stderrText)
        // compadd and compdef stubbed to print what completion would offer.
        let script = """
        compdef() { : }
        compadd() {
            while [[ $# -gt 0 && $1 != -- ]]; do [[ $1 == -S ]] && shift; shift; done
            shift
            print -rl -- "$@"
        }
        _files() { : }
        _command_names() { : }
        source '\(file)'
        words=(zkctl tree --de); CURRENT=3; _zkctl
        print -- '==='
        words=(zkctl con); CURRENT=2; _zkctl
        """
        let r = try runProcess("/usr/bin/zsh", ["-f", "-c", script], environment: ["PATH": "/usr/bin:/bin", "HOME": NSTemporaryDirectory()], timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderrText)
        let parts = r.stdoutText.components(separatedBy: "===\n")
        XCTAssertEqual(parts.count, 2, r.stdoutText)
        let options = parts[0].split(separator: "\n").map(String.init)
        let commands = parts.last!.split(separator: "\n").map(String.init)
        XCTAssertTrue(options.contains("--depth"), r.stdoutText)
        XCTAssertTrue(options.contains("--server"), "global options after the command")
        XCTAssertTrue(commands.contains("config"), r.stdoutText)
        XCTAssertFalse(commands.contains("--server"), "options only after a dash")
    }

    // MARK: man page

    func testManPageLintsClean() throws {
        let r = try runProcess("/usr/bin/mandoc", ["-T", "lint", "-W", "warning", root.appendingPathComponent("man/zkctl.1").path])
        XCTAssertEqual(r.stdoutText + r.stderrText, "", "mandoc reports problems above style level")
        XCTAssertEqual(r.status, 0)
        let page = try committed("man/zkctl.1")
        for section in ["NAME", "SYNOPSIS", "COMMANDS", "GLOBAL OPTIONS", "SETTINGS", "ENVIRONMENT", "FILES", "OUTPUT", "EXIT STATUS", "EXAMPLES"] {
            XCTAssertTrue(page.contains(".SH \(section)") || page.contains(".SH \"\(section)\""), "man page has \(section)")
        }
    }

    /// The page as `man` shows it: no roff escape left over as literal text (as when text was
    /// escaped twice), lists as lists, option text ending with a stop before what follows.
    func testRenderedManPageReadsCleanly() throws {
        let r = try runProcess("/usr/bin/man", ["-l", root.appendingPathComponent("man/zkctl.1").path],
                               environment: ["PATH": "/usr/bin:/bin", "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat",
                                             "LANG": "C.UTF-8", "HOME": NSTemporaryDirectory()], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderrText)
        let page = r.stdoutText
        XCTAssertGreaterThan(page.count, 10_000)
        // A backslash may only be text the page means: the escapes zkctl shows in data (\n, \t,
        // \x1b) and a doubled backslash.
        let leftovers = page.ranges(of: #/\\[^ntx\\]/#).map { String(page[$0]) }
        XCTAssertEqual(leftovers, [], "literal roff escapes in the rendered page")
        // Justified text: one space between words to compare with.
        let words = page.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        XCTAssertTrue(words.contains("zkctl -v status shows"), "SETTINGS renders -v")
        XCTAssertTrue(words.contains("OUTPUT -o text (the default)"), "OUTPUT renders -o")
        XCTAssertTrue(words.contains("when it is UTF-8 text, else"), "OUTPUT renders UTF-8")
        // diff's kinds of line are a list: one line each.
        for (sign, text) in [("+", "only in TARGET"), ("-", "only in SOURCE"), ("~", "in both, but the data, acl or type differs")] {
            let found = page.split(separator: "\n").contains { line in
                let words = line.split(separator: " ", omittingEmptySubsequences: true)
                return words.first == Substring(sign) && line.hasSuffix(text)
            }
            XCTAssertTrue(found, "diff's '\(sign)' line stands on its own line")
        }
        // Every "Default:" follows a full stop (possibly across a line break).
        let runOn = page.ranges(of: #/[^.\s]\s+Default:/#).map { String(page[$0]) }
        XCTAssertEqual(runOn, [], "option text runs into 'Default:'")
    }

    /// Every command documents its JSON, and the shared rules are stated once; the exit codes are
    /// listed in order with 70 among them, in the page and in README.md.
    func testManPageDocumentsEveryJSONShapeAndTheExitCodesInOrder() throws {
        let page = try committed("man/zkctl.1")
        let commands = page.components(separatedBy: "\n.SH COMMANDS\n")[1].components(separatedBy: "\n.SH ")[0]
            .components(separatedBy: ".SS ").dropFirst()
        XCTAssertGreaterThan(commands.count, 20)
        for section in commands where !section.hasPrefix("\"zkctl help") {
            XCTAssertTrue(section.contains("\nJSON output: "), "no JSON output for \(section.prefix { $0 != "\n" })")
        }
        XCTAssertTrue(commands.first { $0.hasPrefix("\"zkctl status") }?.contains("\"healthy\"") ?? false, "status's JSON")
        XCTAssertTrue(commands.first { $0.hasPrefix("\"zkctl tree") }?.contains("\"truncated\"") ?? false, "tree's JSON")
        let output = page.components(separatedBy: "\n.SH OUTPUT\n")[1].components(separatedBy: "\n.SH ")[0]
        for rule in ["\"stat\"", "czxid", "cZxid", "milliseconds since the epoch", "truncated"] {
            XCTAssertTrue(output.contains(rule), "OUTPUT states the rule about \(rule)")
        }

        let exit = page.components(separatedBy: "\n.SH EXIT STATUS\n")[1].components(separatedBy: "\n.SH ")[0]
        let codes = exit.split(separator: "\n").filter { $0.hasPrefix(".B ") }.compactMap { Int($0.dropFirst(3)) }
        XCTAssertEqual(codes, [0, 1, 64, 65, 66, 69, 70, 73, 75, 77, 130])

        let readme = try committed("README.md").replacingOccurrences(of: "\n", with: " ")
        let listed = try XCTUnwrap(readme.components(separatedBy: "Exit codes: ").dropFirst().first?.components(separatedBy: ".").first)
        XCTAssertEqual(listed.components(separatedBy: ", ").compactMap { Int($0.prefix { $0.isNumber }) }, codes)
        XCTAssertTrue(listed.contains("70 internal error"), listed)
        XCTAssertFalse(readme.contains("never from the command line"), "README must not deny --auth")
        for source in ["--auth user:password", "--auth-file FILE", "ZKCTL_AUTH"] {
            XCTAssertTrue(readme.contains(source), "README names \(source) as a source of credentials")
        }
    }

    func testManPageExamplesRunAgainstARealServer() throws {
        let server = try ZooKeeperServer.standalone()
        defer { server.shutdown() }
        let page = try committed("man/zkctl.1")
        // The examples are the lines under EXAMPLES that start with "$ ".
        guard let start = page.range(of: ".SH EXAMPLES") else { return XCTFail("no EXAMPLES section") }
        let section = page[start.upperBound...].prefix { _ in true }
        let end = section.range(of: "\n.SH ")?.lowerBound ?? section.endIndex
        let commands = section[..<end].split(separator: "\n").filter { $0.hasPrefix("$ ") }.map { line in
            String(line.dropFirst(2)).replacingOccurrences(of: "\\-", with: "-").replacingOccurrences(of: "\\e", with: "\\")
        }
        XCTAssertGreaterThan(commands.count, 10)
        let bin = URL(fileURLWithPath: zkctlBinaryPath()).deletingLastPathComponent().path
        let scratch = try ZKTestPaths.makeTemporaryDirectory(label: "man-examples")
        defer { try? FileManager.default.removeItem(at: scratch) }
        for command in commands {
            let r = try runProcess("/bin/sh", ["-c", command.replacingOccurrences(of: "/tmp/", with: scratch.path + "/")],
                                   environment: ["PATH": "\(bin):/usr/bin:/bin", "HOME": scratch.path, "ZKCTL_SERVERS": server.connectString],
                                   timeout: 60)
            XCTAssertEqual(r.status, 0, "man page example failed: \(command)\n\(r.stderrText)")
        }
    }

    // MARK: make install

    func testMakeInstallIntoDestdirAndUninstall() throws {
        let dest = try ZKTestPaths.makeTemporaryDirectory(label: "destdir")
        defer { try? FileManager.default.removeItem(at: dest) }
        let install = try runProcess("/usr/bin/make", ["-C", root.path, "install", "DESTDIR=\(dest.path)", "PREFIX=/usr",
                                                              "INSTALL_BIN=\(zkctlBinaryPath())"], timeout: 300)
        XCTAssertEqual(install.status, 0, install.stderrText)
        let expected = ["usr/bin/zkctl", "usr/share/man/man1/zkctl.1", "usr/share/bash-completion/completions/zkctl",
                        "usr/share/zsh/site-functions/_zkctl", "usr/share/fish/vendor_completions.d/zkctl.fish"]
        for file in expected {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dest.appendingPathComponent(file).path), "installed \(file)")
        }
        let version = try runProcess(dest.appendingPathComponent("usr/bin/zkctl").path, ["--version"])
        XCTAssertEqual(version.status, 0)
        let uninstall = try runProcess("/usr/bin/make", ["-C", root.path, "uninstall", "DESTDIR=\(dest.path)", "PREFIX=/usr"])
        XCTAssertEqual(uninstall.status, 0, uninstall.stderrText)
        for file in expected {
            XCTAssertFalse(FileManager.default.fileExists(atPath: dest.appendingPathComponent(file).path), "removed \(file)")
        }
    }
}
