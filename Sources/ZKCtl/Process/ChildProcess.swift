@preconcurrency import Dispatch
import ZooKeeper
import FoundationEssentials
import Dispatch
import Glibc
import Synchronization

// Running a user's command as a child of zkctl (`lock`, `run-once`, `service register
// --ephemeral -- CMD`: anything that holds something in ZooKeeper while a program runs). Two
// pieces:
//
// - `ChildProcess`: posix_spawn, exact exit status, signals that never reach a recycled pid.
// - `ChildSupervisor`: ties one child to an `Invocation`: on SIGINT/SIGTERM the signal is passed
//   on to the child (unless the terminal sent it to the child already), which gets a grace
//   period before SIGKILL, before the runner closes the sessions and exits.

/// How a SIGINT or SIGTERM reached zkctl, from its `siginfo_t`.
struct SignalDelivery: Sendable, Hashable {
    var signo: Int32
    /// `si_code`: `SI_KERNEL` for a signal the kernel generated, such as a terminal's Ctrl-C,
    /// which goes to every process of the terminal's foreground process group at once;
    /// `SI_USER` or `SI_QUEUE` for one a process sent to zkctl (`kill -INT PID`, systemd's
    /// SIGTERM to the main pid).
    var code: Int32
    /// Who sent it (0 for the kernel).
    var senderPID: pid_t

    static let kernelCode: Int32 = 0x80   // SI_KERNEL
    static let userCode: Int32 = 0        // SI_USER

    /// A process's signal, for callers that have no siginfo.
    init(signo: Int32, code: Int32 = SignalDelivery.userCode, senderPID: pid_t = 0) {
        self.signo = signo
        self.code = code
        self.senderPID = senderPID
    }

    /// The kernel sent it to zkctl's whole process group (a terminal's Ctrl-C), so every other
    /// process still in that group has it already.
    var reachedProcessGroup: Bool { code == Self.kernelCode }
}

/// How a child process ended.
enum ChildTermination: Sendable, Hashable, CustomStringConvertible {
    /// It exited with this code.
    case exited(Int32)
    /// A signal killed it.
    case signaled(Int32)

    /// The code zkctl exits with: the child's own, or 128+N for a child killed by signal N, as
    /// shells report it.
    var exitCode: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signo): return 128 + signo
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signo): return "killed by \(signalName(signo))"
        }
    }

    /// Decodes a `waitpid` status.
    init(waitStatus status: Int32) {
        let low = status & 0x7f
        if low == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(low)
        }
    }
}

/// `SIGTERM` for 15, and so on.
func signalName(_ signo: Int32) -> String {
    switch signo {
    case SIGHUP: return "SIGHUP"
    case SIGINT: return "SIGINT"
    case SIGQUIT: return "SIGQUIT"
    case SIGILL: return "SIGILL"
    case SIGABRT: return "SIGABRT"
    case SIGBUS: return "SIGBUS"
    case SIGFPE: return "SIGFPE"
    case SIGKILL: return "SIGKILL"
    case SIGUSR1: return "SIGUSR1"
    case SIGSEGV: return "SIGSEGV"
    case SIGUSR2: return "SIGUSR2"
    case SIGPIPE: return "SIGPIPE"
    case SIGALRM: return "SIGALRM"
    case SIGTERM: return "SIGTERM"
    default: return "signal \(signo)"
    }
}

/// The child could not be started.
struct SpawnError: Error, Sendable, CustomStringConvertible {
    var program: String
    var errorNumber: Int32

    /// What a shell exits with: 127 when the program is not found, 126 when it cannot be run.
    var exitCode: Int32 { errorNumber == ENOENT || errorNumber == ENOTDIR ? 127 : 126 }

    var description: String {
        if errorNumber == ENOENT { return "\(program): command not found" }
        return "\(program): cannot run: \(String(cString: strerror(errorNumber)))"
    }

    var commandError: CommandError { CommandError(exitCode, description) }
}

/// A child process started with `posix_spawn`, sharing zkctl's stdin, stdout, stderr and
/// process group (so Ctrl-C at a terminal reaches it too, and it may read the terminal: in a
/// background process group of its own it would be stopped by SIGTTIN).
///
/// The child starts with every signal at its default action and none blocked, whatever zkctl
/// itself (or whoever started zkctl) does with them. No other descriptor of zkctl (such as a
/// ZooKeeper socket) is passed on.
///
/// Thread safety: one thread, started with the child, waits for it to end without reaping it
/// (`waitid` with `WNOWAIT`), then reaps it under `state`'s lock; `signal` sends only under the
/// same lock and only while the child is not yet reaped, so a signal can never reach another
/// process that was given the same pid later.
final class ChildProcess: Sendable {
    let pid: pid_t
    /// The program as given (argv[0]).
    let program: String
    private let state = Mutex<ChildTermination?>(nil)
    private let ended = DispatchGroup()

    private init(pid: pid_t, program: String) {
        self.pid = pid
        self.program = program
    }

    /// Starts `arguments[0]` (searched in `PATH` when it has no slash) with `arguments` as its
    /// argv and exactly `environment` as its environment; `stdin`, when given, is the
    /// descriptor the child reads as its standard input (zkctl's own otherwise).
    static func spawn(_ arguments: [String], environment: [String: String], stdin: Int32? = nil) throws(SpawnError) -> ChildProcess {
        guard let program = arguments.first, !program.isEmpty else {
            throw SpawnError(program: arguments.first ?? "", errorNumber: ENOENT)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // zkctl ignores SIGINT and SIGTERM (it handles them through dispatch sources) and every
        // thread blocks them; an ignored signal stays ignored across exec, so all are reset.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signo in 1..<Int32(32) where signo != SIGKILL && signo != SIGSTOP { sigaddset(&defaults, signo) }
        // glibc's posix_spawn sets its own internal signals (32 and 33) to SIG_IGN in the
        // child, which exec keeps; sigaddset refuses them, so their bits are set directly.
        withUnsafeMutableBytes(of: &defaults) { raw in
            let words = raw.bindMemory(to: UInt.self)
            if words.count > 0 && UInt.bitWidth == 64 { words[0] |= (1 << 31) | (1 << 32) }
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin { posix_spawn_file_actions_adddup2(&actions, stdin, 0) }
        closeInheritedDescriptors(&actions)

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in
                posix_spawnp(&pid, program, &actions, &attributes, a.baseAddress!, e.baseAddress!)
            }
        }
        guard rc == 0 else { throw SpawnError(program: program, errorNumber: rc) }
        let child = ChildProcess(pid: pid, program: program)
        child.ended.enter()
        startThread { child.awaitEnd() }
        return child
    }

    /// Adds actions that close every descriptor above stderr in the child: glibc's
    /// `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; not visible to Swift, whose
    /// Glibc module is built without _GNU_SOURCE, hence dlsym), else one close per descriptor
    /// open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }

    /// The reaper thread's body.
    private func awaitEnd() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        state.withLock { termination in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            termination = ChildTermination(waitStatus: status)
        }
        ended.leave()
    }

    /// How it ended, or nil while it runs.
    var termination: ChildTermination? { state.withLock { $0 } }

    /// Sends `signo` unless the child has already ended; says whether it was sent.
    @discardableResult
    func signal(_ signo: Int32) -> Bool {
        state.withLock { termination in
            guard termination == nil else { return false }
            return kill(pid, signo) == 0
        }
    }

    /// Whether the child (not yet reaped) is still in zkctl's process group: false once it has
    /// ended or moved to a group of its own (`setsid`, `setpgid`).
    var sharesProcessGroup: Bool {
        state.withLock { termination in
            termination == nil && getpgid(pid) == getpgrp()
        }
    }

    /// Waits until the child ends.
    func wait() async -> ChildTermination {
        await withCheckedContinuation { continuation in
            ended.notify(queue: .global()) { [self] in
                continuation.resume(returning: termination ?? .exited(0))
            }
        }
    }

    /// Blocks the calling thread until the child ends or `timeout` passes.
    func wait(timeout: Duration) -> ChildTermination? {
        let ms = max(0, timeout.milliseconds)
        _ = ended.wait(timeout: .now() + .milliseconds(Int(clamping: ms)))
        return termination
    }

    /// Sends `signo` (unless `send` is false: the child has it already), waits up to `grace` for
    /// the child to end, then kills it. Blocks.
    @discardableResult
    func stop(_ signo: Int32 = SIGTERM, grace: Duration, send: Bool = true) -> ChildTermination {
        if let done = termination { return done }
        if send { signal(signo) }
        if let done = wait(timeout: grace) { return done }
        signal(SIGKILL)
        return wait(timeout: .seconds(3600)) ?? .signaled(SIGKILL)
    }

    /// `stop` on a thread of its own, off the cooperative pool.
    func stop(_ signo: Int32 = SIGTERM, grace: Duration) async -> ChildTermination {
        await withCheckedContinuation { continuation in
            startThread { continuation.resume(returning: self.stop(signo, grace: grace)) }
        }
    }
}

/// One child process tied to a command's interrupt handling.
///
/// When zkctl gets SIGINT or SIGTERM, the runner records the signal, calls the command's
/// interrupt cleanups and then closes every session and exits 128+signal. The supervisor's
/// cleanup passes the signal on to the child, waits up to `grace` for it to end (then SIGKILL),
/// and runs the `afterInterrupt` hooks, so that whatever the child held (a lock, a registration)
/// is let go only once it has stopped. A child is never started once an interrupt has begun.
///
/// The signal is passed on only when the child did not get it already: a terminal's Ctrl-C
/// reaches every process of the foreground process group, so a child still in zkctl's group
/// has it and is not sent it again (it would see two SIGINTs for one Ctrl-C). A signal a process
/// sent to zkctl alone is passed on once.
final class ChildSupervisor: Sendable {
    let grace: Duration
    private let inv: Invocation
    private struct State {
        var child: ChildProcess?
        var interrupted = false
        var abandoned = false
        var hooks: [@Sendable (ChildTermination?) -> Void] = []
    }
    private let state = Mutex(State())
    /// Fired once the interrupt cleanup has stopped the child and run the hooks.
    private let handled = OneShot<Bool>()

    init(_ inv: Invocation, grace: Duration) {
        self.grace = grace
        self.inv = inv
        inv.onInterrupt { [self] in interrupted() }
    }

    /// Work to do after an interrupt has stopped the child (it gets the child's end, or nil when
    /// no child had started), still before the sessions are closed. Runs on a dispatch thread
    /// and may block briefly.
    func afterInterrupt(_ body: @escaping @Sendable (ChildTermination?) -> Void) {
        state.withLock { $0.hooks.append(body) }
    }

    /// Starts the child with zkctl's environment plus `extraEnvironment`, unless zkctl is being
    /// interrupted (then it throws `CommandError` with 128+signal, which the runner does not
    /// report). A program that cannot be started is the `CommandError` `failure` makes of it
    /// (by default 127 or 126, as in a shell).
    func spawn(_ arguments: [String], extraEnvironment: [String: String] = [:], stdin: Int32? = nil,
               failure: (SpawnError) -> CommandError = \.commandError) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in extraEnvironment { environment[k] = v }
        return try state.withLock { s throws -> ChildProcess in
            // Under the lock: an interrupt recorded after this check finds the child to stop.
            if let signo = inv.interruptSignal {
                throw CommandError(128 + signo, "interrupted by \(signalName(signo))")
            }
            if s.abandoned {
                throw CommandError(ExitCode.conflict, "\(arguments.first ?? "the command") was not started")
            }
            do throws(SpawnError) {
                let child = try ChildProcess.spawn(arguments, environment: environment, stdin: stdin)
                s.child = child
                return child
            } catch {
                throw failure(error)
            }
        }
    }

    /// Stops the child (SIGTERM, then SIGKILL after the grace period, or after `grace` when
    /// given) without waiting for it, and keeps one from being started afterwards: for a command
    /// that lost what its child needs.
    func abandon(grace override: Duration? = nil) {
        let child = state.withLock { s -> ChildProcess? in
            s.abandoned = true
            return s.child
        }
        if let child {
            let grace = override ?? grace
            startThread { child.stop(SIGTERM, grace: grace) }
        }
    }

    /// When this supervisor's interrupt cleanup has begun, waits until it has stopped the child
    /// and run the `afterInterrupt` hooks, so that the command does not do their work twice or
    /// end (and let the runner close the sessions) under them. Returns at once otherwise.
    func interruptHandled() async {
        guard state.withLock({ $0.interrupted }) else { return }
        _ = await handled.wait()
    }

    private func interrupted() {
        // The runner records the signal before it runs the cleanups.
        let delivery = inv.interruptDelivery ?? SignalDelivery(signo: SIGTERM)
        let signo = delivery.signo
        let (child, hooks) = state.withLock { s -> (ChildProcess?, [@Sendable (ChildTermination?) -> Void]) in
            s.interrupted = true
            defer { s.hooks = [] }
            return (s.child, s.hooks)
        }
        let end = child.map { child in
            child.stop(signo, grace: grace, send: !(delivery.reachedProcessGroup && child.sharesProcessGroup))
        }
        for hook in hooks { hook(end) }
        handled.resume(true)
    }
}
