import Glibc
import Dispatch
import Synchronization
import ZooKeeper

extension CommandTable {
    static let shellCommands: [CommandSpec] = [ShellCommand.command]
}

/// `zkctl shell`: one session, many commands, each parsed and run exactly as on the command line.
enum ShellCommand {
    enum Options {
        static let commands = Option<String?>(
            "command", short: "c", value: "COMMANDS",
            help: "run COMMANDS (separated by ';' or newlines) instead of reading them, then exit")
        static let errexit = Option<Bool>(flag: "errexit", short: "e", help: "stop at the first command that fails, with its exit code")
    }

    /// Global options that would change the session; the shell's one session is already open.
    static let sessionOptions: Set<String> = Set(
        [GlobalOptions.server.spec, GlobalOptions.sessionTimeout.spec, GlobalOptions.config.spec, GlobalOptions.authFile.spec,
         GlobalOptions.auth.spec].map(\.long) + GlobalOptions.tlsOptions.map(\.long))

    static let command = CommandSpec(
        "shell", summary: "run zkctl commands on one session, interactively or from a script",
        description: """
        Opens one session and runs zkctl commands on it: every command works as on the command
        line, with the same options, output and exit codes ('-o json' applies to its line alone),
        without the program name ('get /app' for 'zkctl get /app'). The global options given to
        'zkctl shell' apply to every line; a line may not change the session's options (--server,
        --auth, --auth-file, --session-timeout, --config, the TLS options: exit 64).
        A line is split as a shell splits it: quotes, backslashes, ';' between commands, '#'
        starting a comment; nothing is expanded.

        Besides the commands: 'cd PATH' (no PATH: '/'; '-': the previous one; the znode must exist),
        'pwd', and 'exit [N]'. Relative znode paths, with '.' and '..', are resolved against the
        current path before they are sent, wherever a command takes a znode path. Left out, the
        PATH of ls, tree, du and export is the current path.
        The session stays open until the shell ends: ephemeral nodes made inside
        ('create --ephemeral PATH [VALUE]', offered only here) and watches live until then. End of
        input (Ctrl-D) or 'exit' closes the session, which removes those ephemerals. When the
        server expires the session (or a command ends it), the shell says so on one line, naming
        what was lost, and opens a new session:
          zkctl: session 0x1a2b expired; lost ephemeral /app/a, /app/b; the shell opened a new session 0x1a2c
        The ephemerals named are the ones made in the shell on that session and not deleted
        since; a watch running then is named too ('lost watches on /app (the running command sets
        them again)'): it goes on, on the new session, and reports what changed meanwhile.

        On a terminal the prompt shows the server, the current path and the last exit code when
        it was not 0 ('zk1:2181:/app [1]> '); lines are edited with the usual Emacs keys (libedit),
        Up and Down walk the history and Ctrl-R searches it. Tab completes commands, options and
        choices from the command table, and through the shell's session znode paths (relative to
        the current path, or absolute) from the live tree, config keys, service names and lock
        names from under their roots (as the completion scripts do). The history is kept in
        $XDG_STATE_HOME/zkctl/history (~/.local/state/zkctl/history; mode 600), without the lines
        that hold credentials (--auth, digest). Ctrl-C stops the running command (a watch, say:
        exit 130 in the prompt) and not the shell; at the prompt it drops the line being typed
        and shows a fresh prompt; SIGTERM ends the shell and its session.

        Commands come from -c COMMANDS, or from stdin one per line when stdin is not a terminal,
        or else are read at the prompt. With --errexit the shell stops at the first command that
        fails, with its exit code; otherwise it runs them all. The shell exits with the last
        command's exit code (or exit's N).
        """,
        examples: ["zkctl shell", "zkctl shell -c 'cd /app; ls; get settings'", "zkctl -s zk1:2181 shell -e < commands.zk"],
        options: [Options.commands.spec, Options.errexit.spec],
        jsonOutput: "none of its own: each command prints its own JSON, as on the command line ('-o json' on 'zkctl shell' applies to every line)",
        handler: run)

    @Sendable static func run(_ inv: Invocation) async throws -> Int32 {
        // The runner closes this session when the shell ends (ephemerals go with it).
        let session = try await inv.connect()
        let shell = Shell(inv, session: session)
        let errexit = inv[Options.errexit]
        if let text = inv[Options.commands] {
            let commands: [[String]]
            do {
                commands = try ShellLine.split(text)
            } catch {
                inv.output.error(error.message)
                return ExitCode.usage
            }
            for words in commands {
                if let code = await shell.execute(words), errexit && code != ExitCode.success { return code }
                if let code = shell.exitRequested { return code }
            }
            return shell.lastCode
        }
        if isatty(0) == 1, let editor = LineEditor() {
            // Ctrl-C stops the running command, not the shell (SIGTERM still ends the shell).
            inv.interceptSignals { delivery in
                guard delivery.signo == SIGINT else { return false }
                shell.interrupt(delivery)
                return true
            }
            defer { inv.interceptSignals(nil) }
            editor.enableCompletion { shell.completions(for: $0) }
            while let line = await editor.readLine(prompt: shell.prompt) {
                if !Shell.holdsCredentials(line) { editor.remember(line) }
                let code = await shell.runLine(line)
                // After the terminal's '^C', the prompt starts on a line of its own.
                if code == 128 + SIGINT { writeToStandardError("\n") }
                if let code, errexit && code != ExitCode.success { return code }
                if let code = shell.exitRequested { return code }
            }
            // Ctrl-D: end the prompt's line.
            writeToStandardError("\n")
            return shell.lastCode
        }
        while let line = readLine(prompt: nil) {
            if let code = await shell.runLine(line), errexit && code != ExitCode.success { return code }
            if let code = shell.exitRequested { return code }
        }
        return shell.lastCode
    }

    /// The next line from stdin, after `prompt` on stderr; nil at end of input.
    static func readLine(prompt: String?) -> String? {
        if let prompt {
            writeToStandardError(prompt)
        }
        return Swift.readLine(strippingNewline: true)
    }
}

/// The shell's state between lines: its session, the current path, the last exit code.
final class Shell: @unchecked Sendable {
    // Sendable: used by one task at a time (the shell's loop).
    let invocation: Invocation
    /// The one session, renewed (saying what was lost) when it ends.
    let keeper: ShellSession
    var session: ZooKeeperClient { keeper.client }
    var directory = "/"
    var previousDirectory = "/"
    var lastCode: Int32 = ExitCode.success
    var exitRequested: Int32?
    let environment: [String: String]

    /// The command running now and its task, for Ctrl-C.
    private let running = Mutex<(Invocation, Task<Int32, any Error>)?>(nil)

    /// Ctrl-C: the running command's own interrupt cleanups, then its task cancelled. At the
    /// prompt the line typed is dropped and a fresh prompt shown.
    func interrupt(_ delivery: SignalDelivery) {
        guard let (inv, task) = running.withLock({ $0 }) else {
            LineEditor.interrupt()
            return
        }
        guard inv.recordSignal(delivery) else { return }
        inv.runInterruptCleanups()
        task.cancel()
    }

    /// Whether a history line could hold credentials (digest's user:password, --auth), so that it
    /// is not written to the history file.
    static func holdsCredentials(_ line: String) -> Bool {
        guard let commands = try? ShellLine.split(line) else { return true }
        for words in commands {
            if words.contains(where: { $0 == "--auth" || $0.hasPrefix("--auth=") }) { return true }
            if words.contains("digest") { return true }
            if let parsed = try? Parser.parse(words, root: CommandTable.root),
               parsed.values[GlobalOptions.auth.spec.long] != nil || parsed.path == ["digest"] { return true }
        }
        return false
    }

    /// What Tab offers after `before` (the line up to the cursor): subcommands and the shell's
    /// own commands, options, choices, and for an argument or option whose completion kind is
    /// live, what the session reads: for a znode path the children of the path typed so far, for
    /// a config key, service name or lock name the names under its root (`LiveCompletion`, as
    /// the completion scripts' `__complete`).
    func completions(for before: String) -> [Completion] {
        var words = before.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let typed = before.last.map { $0 == " " || $0 == "\t" } ?? true ? "" : (words.popLast() ?? "")
        let root = CommandTable.root
        var spec = root
        var positionals = 0
        var previous: OptionSpec?
        for word in words {
            if let option = previous, !option.isFlag { previous = nil; continue }
            previous = nil
            if word.hasPrefix("--") {
                let name = String(word.dropFirst(2).prefix { $0 != "=" })
                if !word.contains("=") { previous = spec.option(long: name) ?? root.option(long: name) }
            } else if word.hasPrefix("-"), word.count == 2, let c = word.last {
                previous = spec.option(short: c) ?? root.option(short: c)
            } else if positionals == 0, let sub = spec.subcommand(named: word) {
                spec = sub
            } else {
                positionals += 1
            }
        }
        if words.first == "cd" { return paths(typed) }
        if let option = previous, !option.isFlag {
            if case .choice(let choices) = option.type { return choices.map { Completion(word: $0, final: true) } }
            return values(option.type == .znodePath ? .znodePath : option.completion, typed)
        }
        if typed.hasPrefix("-") {
            let options = spec.options + (spec.name == root.name ? [] : root.options)
            return options.filter { !$0.hidden }.map { Completion(word: "--" + $0.long, final: $0.isFlag) }
        }
        if !spec.subcommands.isEmpty && positionals == 0 {
            var names = spec.subcommands.filter { !$0.hidden }.map(\.name)
            if words.isEmpty { names += ["cd", "pwd", "exit"] }
            return names.map { Completion(word: $0, final: true) }
        }
        guard !spec.arguments.isEmpty else { return [] }
        guard positionals < spec.arguments.count || spec.arguments.last?.variadic == true else { return [] }
        let argument = spec.arguments[min(positionals, spec.arguments.count - 1)]
        if case .choice(let choices) = argument.type { return choices.map { Completion(word: $0, final: true) } }
        return values(Completions.completion(argument), typed)
    }

    /// The live values of `kind` that continue `typed`.
    private func values(_ kind: CompletionKind, _ typed: String) -> [Completion] {
        switch kind {
        case .znodePath: return paths(typed)
        case .configKey, .serviceName, .lockName:
            let session = self.session, settings = invocation.settings
            return live { await LiveCompletion.names(kind, prefix: typed, settings: settings, session: session) }
                .map { Completion(word: $0, final: true) }
        default: return []
        }
    }

    /// The result of `lookup` on the session, waited for on this thread (libedit's, not one of
    /// the tasks'), at most the request timeout; nothing when it does not come.
    private func live(_ lookup: @escaping @Sendable () async -> [String]) -> [String] {
        let found = Mutex<[String]>([])
        let done = DispatchSemaphore(value: 0)
        Task {
            let values = await lookup()
            found.withLock { $0 = values }
            done.signal()
        }
        let limit = invocation.settings.timeout.value
        _ = done.wait(timeout: .now() + .milliseconds(Int(limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)))
        return found.withLock { $0 }
    }

    /// The children of the directory part of `typed` (relative to the current path, or absolute),
    /// as `typed` would continue to them.
    private func paths(_ typed: String) -> [Completion] {
        let slash = typed.lastIndex(of: "/")
        let head = slash.map { String(typed[...$0]) } ?? ""
        let parent = head.isEmpty ? directory : ShellLine.resolve(head == "/" ? "/" : String(head.dropLast()), from: directory)
        let session = self.session
        let children = live { (try? await session.children(parent).children) ?? [] }
        return children.sorted().map { Completion(word: head + $0, final: false) }
    }

    init(_ invocation: Invocation, session: ZooKeeperClient) {
        self.invocation = invocation
        keeper = ShellSession(session, output: invocation.output, open: { try await invocation.connect(invocation.settings.connectOptions) })
        self.environment = ZKCtl.settingsEnvironment()
    }

    var output: Output { invocation.output }

    /// `server:/path> `, with the last exit code when it was not 0.
    var prompt: String {
        let server = session.connectedServer ?? invocation.settings.servers.value
        let code = lastCode == ExitCode.success ? "" : " [\(lastCode)]"
        return "\(server):\(directory)\(code)> "
    }

    /// Runs every command on `line`; returns the last one's exit code (nil for an empty line).
    func runLine(_ line: String) async -> Int32? {
        let commands: [[String]]
        do {
            commands = try ShellLine.split(line)
        } catch {
            output.error(error.message)
            lastCode = ExitCode.usage
            return lastCode
        }
        var last: Int32?
        for words in commands {
            last = await execute(words)
            if exitRequested != nil { break }
        }
        return last
    }

    /// Runs one command; its exit code becomes the last one.
    @discardableResult
    func execute(_ words: [String]) async -> Int32? {
        guard let first = words.first else { return nil }
        let code: Int32
        switch first {
        case "cd": code = await changeDirectory(Array(words.dropFirst()))
        case "pwd":
            if words.count > 1 {
                output.error("pwd takes no arguments")
                code = ExitCode.usage
            } else {
                output.line(directory)
                code = ZKCtl.finished(output, ExitCode.success)
            }
        case "exit":
            code = exit(Array(words.dropFirst()))
        default:
            code = await command(words)
        }
        lastCode = code
        await keepSessionOpen()
        return code
    }

    private func exit(_ arguments: [String]) -> Int32 {
        guard arguments.count <= 1 else {
            output.error("exit takes at most one argument (the exit code)")
            return ExitCode.usage
        }
        guard let text = arguments.first else {
            exitRequested = lastCode
            return lastCode
        }
        guard let n = Int32(text), (0...255).contains(n) else {
            output.error("bad exit code '\(text)': must be from 0 to 255")
            return ExitCode.usage
        }
        exitRequested = n
        return n
    }

    private func changeDirectory(_ arguments: [String]) async -> Int32 {
        guard arguments.count <= 1 else {
            output.error("cd takes one znode path")
            return ExitCode.usage
        }
        var target = arguments.first ?? "/"
        if target == "-" { target = previousDirectory }
        target = ShellLine.resolve(Parser.withoutTrailingSlash(target), from: directory)
        if let problem = PathRules.problem(with: target) {
            output.error("cd: bad path '\(target)': \(problem)")
            return ExitCode.usage
        }
        do {
            guard try await keeper.current().exists(target) != nil else {
                output.error("cd: \(target): no such znode")
                return ExitCode.notFound
            }
        } catch {
            output.error("cd: " + ExitCode.message(for: error))
            return ExitCode.code(for: error)
        }
        previousDirectory = directory
        directory = target
        return ExitCode.success
    }

    /// A zkctl command, parsed and run as `ZKCtl.run` does, on the shell's session.
    private func command(_ words: [String]) async -> Int32 {
        let root = CommandTable.root
        let plainOutput = Output(format: .text)
        let directory = self.directory
        var parsed: ParsedCommand
        do {
            parsed = try Parser.parse(words, root: root, resolvePath: { ShellLine.resolve($0, from: directory) })
        } catch {
            plainOutput.error("\(error)")
            return ZKCtl.finished(plainOutput, ExitCode.usage)
        }
        if parsed.path.isEmpty && parsed[GlobalOptions.version] {
            plainOutput.line("zkctl \(ZKCtl.version) (ZooKeeper C client \(ZooKeeperClient.libraryVersion))")
            return ZKCtl.finished(plainOutput, ExitCode.success)
        }
        if parsed.helpRequested || (parsed.path.isEmpty && parsed.spec.handler == nil) {
            plainOutput.write(Help.text(for: parsed.path, root: root))
            return ZKCtl.finished(plainOutput, ExitCode.success)
        }
        if parsed.path == ["shell"] {
            plainOutput.error("already in the shell")
            return ZKCtl.finished(plainOutput, ExitCode.usage)
        }
        if let given = parsed.values.keys.sorted().first(where: { ShellCommand.sessionOptions.contains($0) }) {
            plainOutput.error("--\(given) cannot change inside the shell: its session is open already (give it to 'zkctl shell')")
            return ZKCtl.finished(plainOutput, ExitCode.usage)
        }
        // The shell's own global options, where the line does not give them.
        for option in root.options {
            if parsed.values[option.long] == nil, let value = invocation.parsed.values[option.long] {
                parsed.values[option.long] = value
            }
        }
        let settings: Settings
        do {
            settings = try Settings.resolve(parsed, environment: environment, isTerminal: Common.stdoutIsTerminal)
        } catch {
            plainOutput.error(ExitCode.message(for: error))
            return ZKCtl.finished(plainOutput, ExitCode.code(for: error))
        }
        let output = Output(format: settings.output.value, color: settings.color, quiet: settings.quiet)
        guard let handler = parsed.spec.handler else {
            output.error("'\(parsed.path.joined(separator: " "))' is not implemented")
            return ZKCtl.finished(output, ExitCode.internalError)
        }
        let inv = Invocation(parsed: parsed, settings: settings, output: output, shell: keeper)
        let task = Task { try await handler(inv) }
        running.withLock { $0 = (inv, task) }
        defer { running.withLock { $0 = nil } }
        let code: Int32
        do {
            code = try await task.value
        } catch {
            inv.endProgress()
            output.flush()
            if let signo = inv.interruptSignal {
                await inv.closeAll()
                return ZKCtl.finished(output, 128 + signo)
            }
            if output.stdoutFailure == nil { output.error(ExitCode.message(for: error)) }
            await inv.closeAll()
            return ZKCtl.finished(output, ExitCode.code(for: error))
        }
        inv.endProgress()
        await inv.closeAll()
        // An interrupted command exits 128 + the signal, however its handler ended (as ZKCtl.run).
        if let signo = inv.interruptSignal { return ZKCtl.finished(output, 128 + signo) }
        return ZKCtl.finished(output, code)
    }

    /// After a command that ended the session (or a session the server expired): say so, with
    /// what was lost, and open a new one, so that the next command has one.
    private func keepSessionOpen() async {
        if let code = await keeper.renewIfEnded() { exitRequested = code }
    }
}
