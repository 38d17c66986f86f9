@preconcurrency import Dispatch
import Foundation
import Synchronization
import ZooKeeper

/// The tool: argv in, exit code out. `Sources/zkctl/main.swift` only calls `run`.
public enum ZKCtl {
    public static let version = "0.1.0"

    /// Runs one command line (without the program name) and returns the exit code.
    public static func run(_ arguments: [String], environment: [String: String] = settingsEnvironment()) async -> Int32 {
        let root = CommandTable.root
        let errorOutput = Output(format: .text)
        let parsed: ParsedCommand
        do {
            parsed = try Parser.parse(arguments, root: root)
        } catch {
            errorOutput.error("\(error)")
            return ExitCode.usage
        }
        if parsed.path.isEmpty && parsed.has("version") {
            errorOutput.line("zkctl \(version) (ZooKeeper C client \(ZooKeeperClient.libraryVersion))")
            return finished(errorOutput, ExitCode.success)
        }
        if parsed.helpRequested || (parsed.path.isEmpty && parsed.spec.handler == nil) {
            errorOutput.write(Help.text(for: parsed.path, root: root))
            return finished(errorOutput, ExitCode.success)
        }
        let settings: Settings
        do {
            settings = try Settings.resolve(parsed, environment: environment, isTerminal: isatty(1) == 1)
        } catch {
            errorOutput.error(ExitCode.message(for: error))
            return ExitCode.code(for: error)
        }
        let output = Output(format: settings.output.value, color: settings.color, quiet: settings.quiet)
        for w in settings.warnings { output.warn(w) }
        if settings.verbose > 0 {
            ZooKeeperLog.setHandler(level: settings.verbose > 1 ? .info : .warning) { line in
                output.error("zookeeper: " + line)
            }
        }
        guard let handler = parsed.spec.handler else {
            output.error("'\(parsed.path.joined(separator: " "))' is not implemented")
            return ExitCode.internalError
        }
        let invocation = Invocation(parsed: parsed, settings: settings, output: output)
        let signals = SignalGuard(invocation: invocation)
        defer { signals.cancel() }
        let code: Int32
        do {
            code = try await handler(invocation)
        } catch {
            output.flush()
            if let signo = invocation.interruptSignal { return await interrupted(invocation, signo) }
            // Lost output explains the failure best (a command may have stopped because of it).
            if output.stdoutFailure == nil { output.error(ExitCode.message(for: error)) }
            await invocation.closeAll()
            return finished(output, ExitCode.code(for: error))
        }
        output.flush()
        // An interrupted command exits 128 + the signal, however its handler ended, so the
        // signal path and this one agree on the code.
        if let signo = invocation.interruptSignal { return await interrupted(invocation, signo) }
        await invocation.closeAll()
        return finished(output, code)
    }

    /// The exit code once everything has been flushed: `code`, unless writing failed. Lost data on
    /// stdout is exit 73 with one line saying why (also when that line cannot be written either);
    /// a broken pipe is a quiet 141, as if SIGPIPE had ended the process; a diagnostic that could
    /// not be written turns success into 73.
    static func finished(_ output: Output, _ code: Int32) -> Int32 {
        output.flush()
        if let failure = output.stdoutFailure {
            if !failure.isBrokenPipe { output.error(failure.description) }
            return failure.exitCode
        }
        if output.stderrFailed && code == ExitCode.success { return ExitCode.cannotCreate }
        return code
    }

    /// Waits for the signal path to finish its cleanups and exit; returns its code meanwhile.
    static func interrupted(_ invocation: Invocation, _ signo: Int32) async -> Int32 {
        await invocation.waitForInterruptCleanups()
        await invocation.closeAll()
        return 128 + signo
    }
}

extension ZKCtl {
    /// The environment variables settings read, through getenv: building the whole environment
    /// as a dictionary costs a quarter of a one-shot command's start-up.
    public static func settingsEnvironment() -> [String: String] {
        let names = Settings.serverVariables + [
            "ZKCTL_AUTH", "ZKCTL_CONFIG", "ZKCTL_TIMEOUT", "ZKCTL_OUTPUT", "ZKCTL_CONFIG_ROOT",
            "ZKCTL_SERVICES_ROOT", "ZKCTL_LOCKS_ROOT", "ZKCTL_TASKS_ROOT", "ZKCTL_MAX_INFLIGHT",
            "HOME", "XDG_CONFIG_HOME", "NO_COLOR",
        ]
        var environment: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return environment
    }
}

/// Turns SIGINT and SIGTERM into an orderly exit: the command's own cleanups (such as stopping
/// a child), then every session closed so that no ephemeral node or lock is left behind.
final class SignalGuard: @unchecked Sendable {
    // Sendable: `sources` is set once in init; cancel() is the only later use.
    private let sources: [any DispatchSourceSignal]

    init(invocation: Invocation) {
        var sources: [any DispatchSourceSignal] = []
        for signo in [SIGINT, SIGTERM] {
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler {
                // A second signal while the first is handled changes nothing.
                guard invocation.recordSignal(signo) else { return }
                invocation.runInterruptCleanups()
                invocation.output.flush()
                Task {
                    await invocation.closeAll()
                    exit(128 + signo)
                }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        for s in sources { s.cancel() }
    }
}
