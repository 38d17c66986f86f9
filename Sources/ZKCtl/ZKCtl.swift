import Glibc
import Synchronization
import ZooKeeper

/// The tool: argv in, exit code out. `Sources/zkctl/main.swift` only calls `run`.
public enum ZKCtl {
    public static let version = "0.1.0"

    /// Runs one command line (without the program name) and returns the exit code.
    /// `environment`: the variables settings read; nil reads them from the process (only once
    /// they are needed, so that `--version` and help do not pay for it).
    public static func run(_ arguments: [String], environment: [String: String]? = nil) async -> Int32 {
        let root = CommandTable.root
        // Before the settings are known: plain text, help and --version on stdout, errors on stderr.
        let plainOutput = Output(format: .text)
        let parsed: ParsedCommand
        do {
            parsed = try Parser.parse(arguments, root: root)
        } catch {
            plainOutput.error("\(error)")
            return ExitCode.usage
        }
        if parsed.path.isEmpty && parsed[GlobalOptions.version] {
            plainOutput.line("zkctl \(version) (ZooKeeper C client \(ZooKeeperClient.libraryVersion))")
            return finished(plainOutput, ExitCode.success)
        }
        if parsed.helpRequested || (parsed.path.isEmpty && parsed.spec.handler == nil) {
            plainOutput.write(Help.text(for: parsed.path, root: root))
            return finished(plainOutput, ExitCode.success)
        }
        let settings: Settings
        do {
            settings = try Settings.resolve(parsed, environment: environment ?? settingsEnvironment(), isTerminal: Common.stdoutIsTerminal)
        } catch {
            plainOutput.error(ExitCode.message(for: error))
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
            invocation.endProgress()
            output.flush()
            if let signo = invocation.interruptSignal { return await interrupted(invocation, signo) }
            // Lost output explains the failure best (a command may have stopped because of it).
            if output.stdoutFailure == nil { output.error(ExitCode.message(for: error)) }
            await invocation.closeAll()
            return finished(output, ExitCode.code(for: error))
        }
        invocation.endProgress()
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
    /// The executor the command's task prefers: the main thread, once it calls `serveMainThread`.
    public static var mainThread: any TaskExecutor { MainThreadExecutor.shared }

    /// Hands the calling thread (main's) to the jobs of the tasks that prefer `mainThread` and to
    /// the client's blocking calls, such as closing the session, for the rest of the process.
    public static func serveMainThread() -> Never {
        BlockingWork.serve()
    }

    /// The environment variables settings read, through getenv: building the whole environment
    /// as a dictionary costs a quarter of a one-shot command's start-up.
    public static func settingsEnvironment() -> [String: String] {
        // The global options' variables (from their declarations), then the ones settings read
        // for the config file's place, TLS sessions and colour.
        let names = GlobalOptions.all.flatMap(\.environmentVariables) + ["HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "NO_COLOR", "TERM"]
        var environment: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return environment
    }
}

/// Turns SIGINT and SIGTERM into an orderly exit: the command's own cleanups (such as stopping
/// a child), then every session closed so that no ephemeral node or lock is left behind.
///
/// The handlers are installed with `sigaction(SA_SIGINFO)` so that zkctl learns how each signal
/// came (see `SignalDelivery`): a child that shares zkctl's process group already got a
/// terminal's Ctrl-C, and must not get it a second time from zkctl. The handler itself only
/// writes the signal's number, code and sender to a pipe; the event thread (`EventThread`)
/// reads it there, and the first signal's cleanups run on a thread of their own, since stopping
/// a child may take its grace period and the event thread keeps every deadline.
final class SignalGuard: Sendable {
    private let watch: UInt64?

    init(invocation: Invocation) {
        let pipe = SignalPipe.shared
        guard pipe.readEnd >= 0 else {
            watch = nil
            return
        }
        pipe.drain()
        watch = EventThread.shared.watch(pipe.readEnd) {
            while let delivery = pipe.next() {
                if invocation.interceptsSignal(delivery) { continue }
                // A second signal while the first is handled changes nothing.
                guard invocation.recordSignal(delivery) else { continue }
                let started = startThread(name: "zkctl.signal") { Self.stop(invocation, delivery) }
                if !started { Self.stop(invocation, delivery) }
            }
        }
        pipe.install()
    }

    /// The signal path: the command's cleanups, its output flushed, every session closed, exit.
    private static func stop(_ invocation: Invocation, _ delivery: SignalDelivery) {
        invocation.runInterruptCleanups()
        invocation.output.flush()
        Task {
            await invocation.closeAll()
            exit(128 + delivery.signo)
        }
    }

    func cancel() {
        // Once the command is over, a late SIGINT or SIGTERM is ignored, as while it ends.
        SignalPipe.shared.ignore()
        if let watch { EventThread.shared.unwatch(watch) }
    }
}

/// The descriptor the signal handler writes to: a global with a constant value, set once before
/// any handler is installed, so that the handler reads it without taking a lock.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// The handler for SIGINT and SIGTERM. Only async-signal-safe work: one `write` of 12 bytes
/// (atomic on a pipe), errno kept.
private func signalPipeHandler(_ signo: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
    let saved = errno
    var record: (Int32, Int32, Int32) = (signo, info?.pointee.si_code ?? 0,
                                         info?.pointee._sifields._kill.si_pid ?? 0)
    _ = withUnsafeBytes(of: &record) { write(signalPipeWriteEnd, $0.baseAddress, $0.count) }
    errno = saved
}

/// The self-pipe between the signal handler and the rest of zkctl, one per process.
final class SignalPipe: Sendable {
    static let shared = SignalPipe()
    static let signals = [SIGINT, SIGTERM]
    let readEnd: Int32
    private let writeEnd: Int32

    private init() {
        var fds: [Int32] = [-1, -1]
        // Without a pipe (no descriptor left at start-up) the signals keep their default
        // action: zkctl ends at once and the server drops its session after the timeout.
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readEnd = fds[0]
        writeEnd = fds[1]
        signalPipeWriteEnd = writeEnd
    }

    /// Installs the handler for SIGINT and SIGTERM.
    func install() {
        guard writeEnd >= 0 else { return }
        for signo in Self.signals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = signalPipeHandler
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            for other in Self.signals { sigaddset(&action.sa_mask, other) }
            sigaction(signo, &action, nil)
        }
    }

    /// Ignores SIGINT and SIGTERM from now on.
    func ignore() {
        for signo in Self.signals { signal(signo, SIG_IGN) }
    }

    /// Forgets signals a previous run left unread.
    func drain() {
        while next() != nil {}
    }

    /// Whether a SIGINT or SIGTERM sent to zkctl may not have been taken in yet: pending (this
    /// thread blocks it and no other has taken it), or written by the handler and not yet read.
    func signalArriving() -> Bool {
        var pending = sigset_t()
        if sigpending(&pending) == 0, Self.signals.contains(where: { sigismember(&pending, $0) == 1 }) { return true }
        guard readEnd >= 0 else { return false }
        var ready = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        return poll(&ready, 1, 0) == 1 && ready.revents & Int16(POLLIN) != 0
    }

    /// The next signal the handler wrote, or nil when none is waiting.
    func next() -> SignalDelivery? {
        guard readEnd >= 0 else { return nil }
        var record: (Int32, Int32, Int32) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &record) { read(readEnd, $0.baseAddress, $0.count) }
        guard n == MemoryLayout.size(ofValue: record) else { return nil }
        return SignalDelivery(signo: record.0, code: record.1, senderPID: record.2)
    }
}
