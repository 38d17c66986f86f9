import FoundationEssentials
import Glibc
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// `watch ... --exec -- CMD` and `config watch ... --exec -- CMD`: CMD once per change, never two
/// at once, changes during a run coalesced into one more run.
extension CommandTable {
    enum WatchExecOptions {
        static let exec = Option<Bool>(flag: "exec", help: "run the command given after -- once per change instead of printing the changes")
        static let debounce = Option<Duration?>(duration: "debounce", help: "with --exec: run only once changes have paused for this long")
        static let exitOnError = Option<Bool>(flag: "exit-on-error", help: "with --exec: stop when CMD fails, with CMD's exit code")
        static var specs: [OptionSpec] { [exec.spec, debounce.spec, exitOnError.spec] }
    }

    /// The description paragraph both watch commands carry.
    static let watchExecDescription = """
        With --exec -- CMD [ARGS...], nothing is printed: CMD runs once for each change (not for
        the initial state), never two at once, with ZKCTL_EVENT (created, changed, deleted or
        children), ZKCTL_PATH (the znode) and ZKCTL_VERSION (its data version; empty for deleted
        and children) in its environment and the new value on its stdin (empty for deleted and
        children). Changes that come while CMD runs are coalesced into one more run, for the
        latest of them. --debounce D waits until no change has come for D before running. CMD's
        failure is reported on stderr ('zkctl: CMD failed (exit code N) for EVENT PATH') and the
        watch goes on, unless --exit-on-error is given: then zkctl stops with CMD's exit code
        (128+N for a signal). Ctrl-C passes the signal on to a running CMD and waits for it
        (SIGKILL after 10s).
        """

    /// Checks the --exec options against the command after `--`; true when --exec is on.
    static func watchExecRequested(_ inv: Invocation) throws -> Bool {
        let exec = inv[WatchExecOptions.exec]
        if exec && inv.command.isEmpty { throw UsageError("--exec needs the command to run: --exec -- CMD [ARGS...]", command: inv.parsed.path) }
        if !exec && !inv.command.isEmpty { throw UsageError("a command after -- runs only with --exec", command: inv.parsed.path) }
        if !exec && (inv[WatchExecOptions.debounce] != nil || inv[WatchExecOptions.exitOnError]) {
            throw UsageError("--debounce and --exit-on-error apply with --exec", command: inv.parsed.path)
        }
        return exec
    }

    /// ZKCTL_EVENT for a change (nil for the initial state, which runs nothing).
    static func execEvent(_ change: NodeChange, children: Bool) -> String? {
        switch change.kind {
        case .initial: return nil
        case _ where children && change.parent != nil: return "children"
        case .created: return "created"
        case .changed: return "changed"
        case .removed: return "deleted"
        }
    }

    /// Runs `watcher` with CMD for each change `describe` turns into one; returns the exit code.
    static func runWatchExec(_ inv: Invocation, spec: WatchSpec, onReady: @escaping @Sendable () -> Void,
                             seen: @escaping @Sendable (NodeChange) -> Void = { _ in },
                             describe: @escaping @Sendable (NodeChange) -> ChangeRunner.Change?) async throws -> Int32 {
        let out = inv.output
        let runner = ChangeRunner(inv, debounce: inv[WatchExecOptions.debounce], exitOnError: inv[WatchExecOptions.exitOnError])
        let clients = Shared<[ZooKeeperClient]>([])
        let failed = Shared<Int32?>(nil)
        let watcher = NodeWatcher(spec: spec, maxInFlight: min(inv.maxInFlight, 256),
                                  connect: {
                                      let zk = try await inv.connect()
                                      clients.withLock { $0.append(zk) }
                                      return zk
                                  },
                                  onSession: { event in out.note("watch: \(event)") })
        let end = try await withThrowingTaskGroup(of: Void.self) { group -> WatchEnd in
            // The watch, as a task of its own, so that a failing CMD can cancel it.
            let watching = Task {
                try await inv.following(spec) {
                    try await watcher.run { change in
                        seen(change)
                        if let c = describe(change) { runner.offer(c) }
                        return failed.withLock { $0 } == nil ? .proceed : .stop
                    } onReady: { onReady() }
                }
            }
            group.addTask {
                if let code = await runner.run() {
                    failed.withLock { $0 = code }
                    // Ends the watch. Inside the shell its session is the shell's, which holds
                    // the ephemerals made there: the watch is cancelled and the session kept.
                    if inv.inShell {
                        watching.cancel()
                    } else {
                        for zk in clients.withLock({ $0 }) { await zk.close() }
                    }
                }
            }
            let end: WatchEnd
            do {
                end = try await withTaskCancellationHandler { try await watching.value } onCancel: { watching.cancel() }
            } catch {
                runner.finish()
                group.cancelAll()
                if failed.withLock({ $0 }) != nil { return .stopped }
                throw error
            }
            runner.finish()
            if end == .closed { group.cancelAll() }
            try await group.waitForAll()
            return end
        }
        await runner.interruptHandled()
        if let code = failed.withLock({ $0 }) { return code }
        return end == .stopped ? ExitCode.success : ExitCode.interrupted
    }
}

/// A value behind a lock that escaping closures can share.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ initial: Value) { value = Mutex(initial) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// Runs CMD for the changes offered, one run at a time: a change offered while CMD runs waits,
/// and only the latest waiting change runs next.
final class ChangeRunner: Sendable {
    struct Change: Sendable {
        var event: String
        var path: String
        var version: String
        var value: Data
        /// More variables for CMD (config watch adds ZKCTL_KEY).
        var extra: [String: String] = [:]
    }

    private struct State {
        var pending: Change?
        var last = ContinuousClock.now
    }

    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let command: [String]
    private let debounce: Duration?
    private let exitOnError: Bool
    private let supervisor: ChildSupervisor
    private let output: Output
    private let inv: Invocation

    init(_ inv: Invocation, debounce: Duration?, exitOnError: Bool) {
        self.inv = inv
        command = inv.command
        self.debounce = debounce
        self.exitOnError = exitOnError
        supervisor = ChildSupervisor(inv, grace: CommandTable.defaultGrace)
        output = inv.output
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A change to run CMD for (replacing one still waiting).
    func offer(_ change: Change) {
        state.withLock { s in
            s.pending = change
            s.last = .now
        }
        wake.yield()
    }

    /// No more changes: `run` returns once the waiting one (if any) has run.
    func finish() { wake.finish() }

    func interruptHandled() async { await supervisor.interruptHandled() }

    /// Runs CMD for the changes until `finish`; returns CMD's exit code when it failed under
    /// --exit-on-error.
    func run() async -> Int32? {
        for await _ in wakeups {
            if let debounce {
                // Until no change has come for `debounce`: each pass sleeps to the end of the
                // quiet period after the latest change.
                while !Task.isCancelled {
                    let wait = state.withLock { $0.last } + debounce - .now
                    if wait <= .zero { break }
                    try? await Task.sleep(for: wait)
                }
            }
            if Task.isCancelled { return nil }
            let next = state.withLock { s -> Change? in
                defer { s.pending = nil }
                return s.pending
            }
            guard let change = next else { continue }
            if let code = await runOnce(change) { return code }
        }
        return nil
    }

    private func runOnce(_ c: Change) async -> Int32? {
        var environment = ["ZKCTL_EVENT": c.event, "ZKCTL_PATH": c.path, "ZKCTL_VERSION": c.version]
        environment.merge(c.extra) { $1 }
        let name = command.first ?? "CMD"
        let input: Int32
        do {
            input = try Self.privateInput(c.value)
        } catch {
            output.error("cannot hand the value of \(c.path) to \(name): \(error)")
            return exitOnError ? ExitCode.cannotCreate : nil
        }
        let child: ChildProcess
        do {
            defer { close(input) }
            child = try supervisor.spawn(command, extraEnvironment: environment, stdin: input)
        } catch let e as CommandError {
            // Interrupted: the watch is ending; nothing more runs.
            if e.exitCode > 128 { return nil }
            output.error(e.message)
            return exitOnError ? e.exitCode : nil
        } catch {
            output.error("\(name): \(error)")
            return exitOnError ? ExitCode.internalError : nil
        }
        let end = await child.wait()
        // Stopped by the interrupt that ends the watch: not CMD's failure.
        if end == .exited(0) || inv.interruptSignal != nil { return nil }
        output.error("\(name) failed (\(end)) for \(c.event) \(c.path)\(exitOnError ? "" : "; watching on")")
        return exitOnError ? end.exitCode : nil
    }

    /// A descriptor reading `data` from its start: a private (0600) temporary file, removed at
    /// once, so a value of any size reaches CMD without zkctl writing into a pipe CMD may not read.
    static func privateInput(_ data: Data) throws -> Int32 {
        var template = Array((temporaryDirectory() + "/zkctl-value-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw CommandError(ExitCode.cannotCreate, "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let bytes = [UInt8](data)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = String(cString: strerror(errno))
                close(fd)
                throw CommandError(ExitCode.cannotCreate, "cannot write a temporary file: \(why)")
            }
            offset += n
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }
}
