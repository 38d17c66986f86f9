import Foundation
import XCTest
import ZKTestSupport

/// `zkctl shell` through the binary on a real server: script mode (-c and stdin), one session for
/// the whole shell, cd/pwd and relative paths, exit codes.
final class ShellTests: ToolkitTestCase {
    override var label: String { "shell" }

    func shell(_ args: [String], stdin: String? = nil) throws -> ProcessResult {
        try connected(["shell"] + args, stdin: stdin.map { Data($0.utf8) }, timeout: 30)
    }

    func testCommandsRunInsideWithRelativePaths() throws {
        try ok(["create", "\(base)/app"])
        try ok(["create", "\(base)/app/settings", "debug=false"])
        try ok(["create", "\(base)/app/sub"])
        let r = try shell(["-c", """
        cd \(base)/app; pwd; get settings; echo-not-a-command
        cd sub; pwd; get ../settings; ls ..; cd ..; -o json get ./settings
        cd -; pwd; cd ../../..; pwd
        """])
        XCTAssertEqual(r.stdoutText, """
        \(base)/app
        debug=false\(base)/app/sub
        debug=falsesettings
        sub
        {"path":"\(base)/app/settings","data":"debug=false"}
        \(base)/app/sub
        /

        """)
        XCTAssertEqual(r.stderrText, "zkctl: unknown command 'echo-not-a-command'; see 'zkctl --help'\n")
        XCTAssertEqual(r.status, 0, "the last command's exit code")
    }

    func testAPathLeftOutIsTheCurrentPath() throws {
        try ok(["create", "\(base)/here"])
        try ok(["create", "\(base)/here/x", "1"])
        try ok(["create", "\(base)/here/y", "2"])
        let r = try shell(["-c", "cd \(base)/here; ls; tree --ascii; tree --path x --ascii"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(2)), ["x", "y"], r.stdoutText)
        XCTAssertEqual(lines.dropFirst(2).first, "\(base)/here", "tree's root is the current path: \(r.stdoutText)")
        XCTAssertEqual(lines.last, "\(base)/here/x", "--path still names the root: \(r.stdoutText)")
        // On the command line, ls still needs its PATH.
        let bare = try connected(["ls"])
        XCTAssertEqual(bare.status, 64, bare.stderrText)
    }

    func testStdinLinesCommentsQuotesAndExitCodes() throws {
        let r = try shell([], stdin: """
        # a comment line
        create \(base)/"a b" 'one two'   # a trailing comment
        get "\(base)/a b"; exists \(base)/missing

        """)
        XCTAssertEqual(r.stdoutText, "\(base)/a b\none two")
        XCTAssertEqual(r.stderrText, "")
        XCTAssertEqual(r.status, 1, "the last command (exists, not found) gives the shell's exit code")

        // exit N ends the shell with N; what follows is not run.
        let e = try shell([], stdin: "exists \(base)/missing\nexit 3\ncreate \(base)/after\n")
        XCTAssertEqual(e.status, 3)
        XCTAssertEqual(try connected(["exists", "\(base)/after"]).status, 1)
        // A bare exit keeps the last exit code.
        XCTAssertEqual(try shell(["-c", "exists \(base)/missing; exit"]).status, 1)
    }

    func testErrexitStopsAtTheFirstFailure() throws {
        let script = "create \(base)/one\nget \(base)/missing\ncreate \(base)/two\n"
        let stopped = try shell(["-e"], stdin: script)
        XCTAssertEqual(stopped.status, 1)
        XCTAssertEqual(stopped.stdoutText, "\(base)/one\n")
        XCTAssertEqual(stopped.stderrText, "zkctl: \(base)/missing: no such znode\n")
        XCTAssertEqual(try connected(["exists", "\(base)/two"]).status, 1)

        // Without -e every command runs; the shell exits with the last one's code.
        let all = try shell(["-c", "get \(base)/missing; create \(base)/two"])
        XCTAssertEqual(all.status, 0)
        XCTAssertEqual(all.stdoutText, "\(base)/two\n")
    }

    func testBadLinesAreUsageErrors() throws {
        let quote = try shell(["-c", "get '\(base)"])
        XCTAssertEqual(quote.status, 64)
        XCTAssertEqual(quote.stderrText, "zkctl: unterminated single quote\n")

        let server = try shell(["-e", "-c", "get -s 127.0.0.1:1 \(base); create \(base)/not"])
        XCTAssertEqual(server.status, 64)
        XCTAssertEqual(server.stderrText, "zkctl: --server cannot change inside the shell: its session is open already (give it to 'zkctl shell')\n")

        let cd = try shell(["-c", "cd \(base)/missing; pwd"])
        XCTAssertEqual(cd.stdoutText, "/\n")
        XCTAssertEqual(cd.stderrText, "zkctl: cd: \(base)/missing: no such znode\n")
        XCTAssertEqual(try shell(["-e", "-c", "cd \(base)/missing; pwd"]).status, 1)
    }

    func testEphemeralNodesLiveUntilTheShellEnds() throws {
        // Made by one line, still there for the next ones (one session), gone once the shell ends.
        let r = try shell(["-c", """
        cd \(base); create --ephemeral e alive; create --ephemeral --sequential q-
        exists q-0000000001; -o json stat e; get e
        """])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        let lines = r.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 4 else { return XCTFail("four lines expected: \(r.stdoutText)") }
        XCTAssertEqual(Array(lines.prefix(2)), ["\(base)/e", "\(base)/q-0000000001"])
        XCTAssertEqual(lines.last, "alive")
        let stat = try XCTUnwrap(try json(String(lines[2])) as? [String: Any])
        let owner = try XCTUnwrap((stat["stat"] as? [String: Any])?["ephemeralOwner"] as? String)
        XCTAssertNotEqual(owner, "0x0", "an ephemeral node, owned by the shell's session")
        XCTAssertEqual(try connected(["exists", "\(base)/e"]).status, 1, "the shell's session closed: its ephemeral is gone")
        XCTAssertEqual(try connected(["exists", "\(base)/q-0000000001"]).status, 1)

        // On the command line it stays refused, with the reason; with --container or --ttl too.
        XCTAssertEqual(try fails(["create", "--ephemeral", "\(base)/x"], 64),
                       "zkctl: --ephemeral is offered only inside 'zkctl shell': the node would vanish as soon as this command's session ended; see 'zkctl create --help'\n")
        let mixed = try shell(["-c", "create --ephemeral --container \(base)/x"])
        XCTAssertEqual(mixed.status, 64)
        XCTAssertEqual(mixed.stderrText, "zkctl: --container and --ephemeral cannot be combined; see 'zkctl create --help'\n")
        XCTAssertEqual(try connected(["exists", "\(base)/x"]).status, 1)
    }

    // MARK: Session loss

    /// zkctl stopped (SIGSTOP) past its 4 s session timeout: the server expires the shell's
    /// session. Once it runs again the shell says so at once, on one line naming the ephemerals
    /// made inside (not the one deleted since) and the running watch, and opens a new session:
    /// the watch goes on there and the next commands run on it.
    func testSessionExpiryNamesWhatWasLostAndOpensANewSession() throws {
        try ok(["create", "\(base)/config"])
        try ok(["create", "\(base)/config/flag", "off"])
        let environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        let shell = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "--timeout", "4s",
                                                              "--config-root", "\(base)/config", "shell"],
                                          environment: environment, input: true)
        defer { shell.kill() }
        try shell.send("""
        cd \(base); create --ephemeral a; create --ephemeral --sequential q-; create --ephemeral gone; delete gone
        config watch flag --once

        """)
        XCTAssertTrue(shell.waitForLines(4), "the creates and the watch's first line: \(shell.stdout) \(shell.stderr)")
        let sequential = try XCTUnwrap(shell.stdout.split(separator: "\n").first { $0.hasPrefix("\(base)/q-") })
        XCTAssertEqual(shell.stdout, "\(base)/a\n\(sequential)\n\(base)/gone\ninitial flag = \"off\"\n")

        shell.signal(SIGSTOP)
        let expired = try eventually(60) { try connected(["exists", "\(base)/a"]).status == 1 }
        shell.signal(SIGCONT)
        XCTAssertTrue(expired, "the stopped shell's session never expired")
        XCTAssertTrue(shell.waitForStderr(seconds: 30) { $0.contains("the shell opened a new session") }, shell.stderr)
        let hex = "0x[0-9a-f]+"
        let lost = "zkctl: session \(hex) expired; lost ephemeral \(base)/a, \(sequential); "
            + "lost watches on \(base)/config/flag \\(the running command sets them again\\); the shell opened a new session \(hex)"
        let lines = shell.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.range(of: "^\(lost)$", options: .regularExpression) != nil }.count, 1, shell.stderr)

        // The watch, on the new session, sees the next change and ends (--once); the lines after
        // it run on the new session too.
        try ok(["config", "set", "--config-root", "\(base)/config", "flag", "on"])
        try shell.send("create --ephemeral b again; get b\n")
        try shell.closeInput()
        XCTAssertEqual(shell.waitForExit(seconds: 30), 0, shell.stderr)
        XCTAssertEqual(shell.stdout, "\(base)/a\n\(sequential)\n\(base)/gone\ninitial flag = \"off\"\nchanged flag = \"on\"\n\(base)/b\nagain")
        XCTAssertEqual(try connected(["exists", "\(base)/b"]).status, 1, "the new session closed with the shell")
    }

    /// 'watch --exec --exit-on-error' whose CMD fails ends the watch, not the shell's session:
    /// the ephemeral made before it is still there for the next line.
    func testAFailingWatchExecKeepsTheShellsSession() throws {
        try ok(["create", "\(base)/w", "0"])
        let environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        let shell = try BackgroundProcess(zkctlBinaryPath(), ["-s", server.connectString, "shell"], environment: environment, input: true)
        defer { shell.kill() }
        try shell.send("cd \(base); create --ephemeral e kept; watch w --exec --exit-on-error -- false\n")
        XCTAssertTrue(shell.waitForLines(1), shell.stderr)
        // A change once the watch is armed runs CMD (changes before that are its initial state).
        var n = 0
        while !shell.stderr.contains("failed"), n < 100 {
            n += 1
            try ok(["set", "\(base)/w", "\(n)"])
            _ = shell.waitForStderr(seconds: 0.3) { $0.contains("failed") }
        }
        XCTAssertEqual(shell.stderr, "zkctl: false failed (exit code 1) for changed \(base)/w\n")
        try shell.send("get e\n")
        try shell.closeInput()
        XCTAssertEqual(shell.waitForExit(seconds: 30), 0, shell.stderr)
        XCTAssertEqual(shell.stdout, "\(base)/e\nkept")
        XCTAssertEqual(shell.stderr, "zkctl: false failed (exit code 1) for changed \(base)/w\n", "no session was lost")
    }

    func eventually(_ seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return try condition()
    }

    // MARK: On a terminal (tmux)

    /// A terminal through tmux, on a socket of its own; its server is killed at teardown.
    struct Terminal {
        let socket: String

        func tmux(_ args: [String]) throws -> ProcessResult {
            try runProcess("tmux", ["-L", socket] + args, timeout: 10)
        }

        func send(_ keys: String...) throws { _ = try tmux(["send-keys", "-t", "t", "--"] + keys) }

        func screen() throws -> String { try tmux(["capture-pane", "-p", "-t", "t"]).stdoutText }

        /// Waits (at most 15 s) until the screen satisfies `predicate`; returns the screen.
        @discardableResult
        func wait(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                  _ predicate: (String) -> Bool) throws -> String {
            let deadline = Date().addingTimeInterval(15)
            var text = try screen()
            while !predicate(text), Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
                text = try screen()
            }
            XCTAssertTrue(predicate(text), "waiting for \(what); the screen:\n\(text)", file: file, line: line)
            return text
        }
    }

    /// `zkctl shell` in a tmux terminal, its history under a home of its own; `options` are
    /// global options given to the shell.
    func startTerminal(_ options: [String] = []) throws -> (Terminal, String) {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-shell-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let terminal = Terminal(socket: "zkctl-shell-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        addTeardownBlock {
            _ = try? terminal.tmux(["kill-server"])
            try? FileManager.default.removeItem(atPath: home)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let command = "env -i PATH='\(path)' HOME='\(home)' XDG_STATE_HOME='\(home)/state' TERM=screen "
            + "'\(zkctlBinaryPath())' -s \(server.connectString) \(options.map { "'\($0)'" }.joined(separator: " ")) shell; echo EXIT=$?; sleep 60"
        let started = try terminal.tmux(["new-session", "-d", "-s", "t", "-x", "160", "-y", "40", command])
        XCTAssertEqual(started.status, 0, started.stderrText)
        return (terminal, home)
    }

    func testTerminalPromptHistoryCtrlCAndCtrlD() throws {
        let (terminal, home) = try startTerminal()
        let server = self.server.connectString.split(separator: ",")[0]
        try terminal.wait("the first prompt") { $0.contains("\(server):/>") }

        // cd, then a relative path; a failing command's code in the prompt.
        try terminal.send("cd \(base)", "Enter")
        try terminal.wait("the prompt in the new path") { $0.contains("\(server):\(base)>") }
        try terminal.send("exists missing", "Enter")
        try terminal.wait("exit code 1 in the prompt") { $0.contains("\(server):\(base) [1]>") }
        try terminal.send("create --ephemeral e alive", "Enter")
        try terminal.wait("the ephemeral created") { $0.contains("\n\(base)/e\n") }
        try terminal.send("digest bob:secret", "Enter")
        try terminal.wait("digest's answer") { $0.contains("bob:fyVmFCwVbTJYrznoSu1koqYEYF0=") }

        // Ctrl-C ends a watch, not the shell.
        try terminal.send("watch e", "Enter")
        try terminal.wait("the watch's first event") { $0.contains("initial \(base)/e = alive") }
        try terminal.send("C-c")
        try terminal.wait("the prompt after Ctrl-C, with 130") { $0.contains("\(server):\(base) [130]>") }
        XCTAssertEqual(try connected(["get", "\(base)/e"]).stdoutText, "alive", "the shell's session is still open")

        // Up twice: the create again (digest's line was not kept), refused as the node exists.
        try terminal.send("Up", "Up")
        try terminal.wait("the create recalled") { $0.contains("[130]> create --ephemeral e alive") }
        try terminal.send("Enter")
        try terminal.wait("the create refused, 75") { $0.contains("zkctl: \(base)/e: already exists") && $0.contains("\(server):\(base) [75]>") }

        // Ctrl-D ends the shell and its session: the ephemeral is gone.
        try terminal.send("C-d")
        try terminal.wait("the shell's exit code") { $0.contains("EXIT=75") }
        XCTAssertEqual(try connected(["exists", "\(base)/e"]).status, 1)

        // The history: owner-only, without the line holding credentials.
        let historyFile = home + "/state/zkctl/history"
        let mode = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: historyFile)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o600)
        let history = try String(contentsOfFile: historyFile, encoding: .utf8)
        XCTAssertTrue(history.contains("create\\040--ephemeral\\040e\\040alive"), history)
        XCTAssertFalse(history.contains("secret"), history)
        XCTAssertFalse(history.contains("digest"), history)
    }

    func testTabCompletesCommandsOptionsAndLivePaths() throws {
        try ok(["create", "\(base)/app"])
        try ok(["create", "\(base)/app/settings", "debug=false"])
        try ok(["create", "\(base)/app/sub"])
        let (terminal, _) = try startTerminal()
        let server = self.server.connectString.split(separator: ",")[0]
        try terminal.wait("the first prompt") { $0.contains("\(server):/>") }

        // A command and an option from the command table.
        try terminal.send("cre", "Tab", "--par", "Tab")
        try terminal.wait("create --parents completed") { $0.contains("\(server):/> create --parents ") || $0.contains("/> create --parents") }
        try terminal.send("C-u")
        // A live path, absolute for cd, then relative to the current path for get.
        try terminal.send("cd \(base)/a", "Tab")
        try terminal.wait("the path completed") { $0.contains("/> cd \(base)/app") }
        try terminal.send("Enter")
        try terminal.wait("the prompt in the new path") { $0.contains("\(server):\(base)/app>") }
        try terminal.send("get se", "Tab")
        try terminal.wait("the child completed") { $0.contains("\(base)/app> get settings") }
        try terminal.send("Enter")
        try terminal.wait("its data") { $0.contains("debug=false") }
        // Several candidates: their common part inserted, then (nothing more to add) listed.
        try terminal.send("C-u", "ls ", "Tab")
        try terminal.wait("the common part") { $0.contains("\(base)/app> ls s") }
        try terminal.send("Tab")
        try terminal.wait("both children listed") { $0.contains("\nsettings  sub\n") }
        try terminal.send("C-u", "C-d")
        try terminal.wait("the shell's exit code") { $0.contains("EXIT=0") }
    }

    /// Tab after a command whose argument is a config key, a service name or a lock name offers
    /// the live names under the shell's roots (the kinds the completion scripts get from
    /// '__complete'); an option's choices come from the command table.
    func testTabCompletesLiveConfigKeysServiceNamesAndLockNames() throws {
        let roots = ["--config-root", "\(base)/config", "--services-root", "\(base)/services", "--locks-root", "\(base)/locks"]
        try ok(roots + ["config", "set", "feature_flags", "{}"])
        try ok(roots + ["config", "set", "other", "1"])
        try ok(roots + ["service", "register", "backend", "127.0.0.1", "8000"])
        try ok(["create", "--parents", "\(base)/locks/deploy"])
        // The completion scripts' live values are the same ones.
        for (kind, prefix, name) in [("config-key", "fe", "feature_flags"), ("service", "b", "backend"), ("lock", "d", "deploy")] {
            XCTAssertEqual(try ok(roots + ["__complete", kind, prefix]), name + "\n", kind)
        }
        let (terminal, _) = try startTerminal(roots)
        let server = self.server.connectString.split(separator: ",")[0]
        try terminal.wait("the first prompt") { $0.contains("\(server):/>") }

        // The screen's lines (capture-pane drops their trailing blanks): the prompt's line is the
        // word completed and nothing else; then a blank follows it (the next key lands after one).
        func prompted(_ text: String) -> (String) -> Bool {
            { $0.split(separator: "\n").contains { $0 == "\(server):/> \(text)" } }
        }
        try terminal.send("config get fe", "Tab", "#")
        try terminal.wait("the config key completed", prompted("config get feature_flags #"))
        try terminal.send("Enter")
        try terminal.wait("its value and the next prompt") { $0.contains("\n{}\n\(server):/>") }
        try terminal.send("service discover b", "Tab", "#")
        try terminal.wait("the service name completed", prompted("service discover backend #"))
        try terminal.send("Enter")
        try terminal.wait("its instance and the next prompt") { $0.contains("STATIC") && $0.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("\(server):/>") }
        try terminal.send("lock --status d", "Tab", "#")
        try terminal.wait("the lock name completed", prompted("lock --status deploy #"))
        try terminal.send("C-u", "-o j", "Tab", "#")
        try terminal.wait("a choice completed", prompted("-o json #"))
        try terminal.send("C-u", "C-d")
        try terminal.wait("the shell's exit code") { $0.contains("EXIT=0") }
    }

    /// Ctrl-C at the prompt drops the line being typed (the rest after the cursor shown, then
    /// '^C') and shows a fresh prompt; the shell goes on, with the same last exit code.
    func testCtrlCAtThePromptDropsTheLine() throws {
        let (terminal, _) = try startTerminal()
        let server = self.server.connectString.split(separator: ",")[0]
        let prompt = "\(server):/>"
        func lines(_ screen: String) -> [String] { screen.split(separator: "\n").map(String.init) }
        try terminal.wait("the first prompt") { $0.contains(prompt) }

        try terminal.send("exists \(base)/half-typed")
        try terminal.wait("the half-typed line") { $0.contains("\(prompt) exists \(base)/half-typed") }
        try terminal.send("Left", "Left", "Left", "Left", "Left")
        try terminal.send("C-c")
        try terminal.wait("the line dropped, a fresh prompt") { lines($0).prefix(2) == ["\(prompt) exists \(base)/half-typed^C", prompt] }
        // At an empty prompt too; the shell is still there and runs the next line.
        try terminal.send("C-c")
        try terminal.wait("another fresh prompt") { lines($0).prefix(3) == ["\(prompt) exists \(base)/half-typed^C", "\(prompt) ^C", prompt] }
        try terminal.send("exists \(base)", "Enter")
        try terminal.wait("the next line run (exit 0: no code in the prompt)") {
            lines($0).count >= 4 && lines($0)[2] == "\(prompt) exists \(base)" && lines($0)[3] == prompt
        }
        try terminal.send("C-d")
        try terminal.wait("the shell's exit code") { $0.contains("EXIT=0") }
    }
}
