import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// One run of one command: what was typed, the resolved settings, the output, and the sessions
/// the command opened (closed by the runner when it ends, also on Ctrl-C).
public final class Invocation: Sendable {
    public let parsed: ParsedCommand
    public let settings: Settings
    public let output: Output
    private let clients = Mutex<[ZooKeeperClient]>([])
    private let cleanups = Mutex<[@Sendable () -> Void]>([])
    private let signal = Mutex<SignalDelivery?>(nil)
    private let cleanupsDone = Mutex(false)
    private let signalInterceptor = Mutex<(@Sendable (SignalDelivery) -> Bool)?>(nil)
    /// Inside `zkctl shell`: the shell's one session, which `connect()` hands out (and the
    /// command's `closeAll` leaves open), renewed by the shell when it has ended.
    let shell: ShellSession?
    /// Whether the command runs inside `zkctl shell` (where `create --ephemeral` is offered).
    public var inShell: Bool { shell != nil }
    private let progressLines = Mutex<[ProgressLine]>([])

    public init(parsed: ParsedCommand, settings: Settings, output: Output) {
        self.parsed = parsed
        self.settings = settings
        self.output = output
        self.shell = nil
    }

    /// A command run inside the shell, on the shell's session.
    init(parsed: ParsedCommand, settings: Settings, output: Output, shell: ShellSession) {
        self.parsed = parsed
        self.settings = settings
        self.output = output
        self.shell = shell
    }

    // MARK: Sessions

    /// Opens a session with the resolved settings. The runner closes it when the command ends.
    /// Inside the shell, the shell's session (left open).
    public func connect() async throws -> ZooKeeperClient {
        if let shell { return try await shell.current() }
        return try await connect(settings.connectOptions)
    }

    /// Inside the shell: `path`, an ephemeral node just made on `client`, is named if the session
    /// is lost while it exists.
    func madeEphemeral(_ path: String, on client: ZooKeeperClient) {
        shell?.madeEphemeral(path, on: client)
    }

    /// Runs `body`, a watch of `spec`; inside the shell its nodes are named if the session is
    /// lost meanwhile.
    func following<T>(_ spec: WatchSpec, _ body: () async throws -> T) async rethrows -> T {
        guard let shell else { return try await body() }
        return try await shell.following(spec, body)
    }

    /// Like `connect()`, but a missing chroot is created first (its missing components, as empty
    /// persistent nodes with an open ACL, through a short session without the chroot): what
    /// `create --parents` means under a chroot.
    public func connectCreatingChroot() async throws -> ZooKeeperClient {
        do {
            return try await connect()
        } catch let error as ZooKeeperError where error.missingChroot != nil {
            var bare = settings.connectOptions
            let connectString = try ConnectString(parsing: bare.connectString)
            bare.connectString = ConnectString(servers: connectString.servers).description
            let root = try await connect(bare)
            try await root.createParentChain(error.missingChroot!)
            await root.close()
            return try await connect()
        }
    }

    public func connect(_ options: ConnectOptions) async throws -> ZooKeeperClient {
        let client = try await ZooKeeperClient.connect(options)
        clients.withLock { $0.append(client) }
        return client
    }

    /// Closes every session this command opened (deleting their ephemeral nodes). Returns only
    /// when each is closed, also when another caller (the signal path) is closing them already.
    public func closeAll() async {
        let all = clients.withLock { $0 }
        for c in all { await c.close() }
    }

    /// Work to do if the command is interrupted (for example, stop a child process). Runs before
    /// the sessions are closed.
    public func onInterrupt(_ body: @escaping @Sendable () -> Void) {
        cleanups.withLock { $0.append(body) }
    }

    /// The signal (SIGINT or SIGTERM) that interrupted the command, once one has. The runner then
    /// exits 128 + that signal, whatever the handler returns.
    public var interruptSignal: Int32? { signal.withLock { $0?.signo } }

    /// How that signal arrived (from a terminal to the whole process group, or from a process).
    var interruptDelivery: SignalDelivery? { signal.withLock { $0 } }

    /// Takes signals before the runner's signal path (which ends the process): the shell on a
    /// terminal stops its running command on Ctrl-C instead. The body returns true for a signal
    /// it took.
    func interceptSignals(_ body: (@Sendable (SignalDelivery) -> Bool)?) {
        signalInterceptor.withLock { $0 = body }
    }

    func interceptsSignal(_ delivery: SignalDelivery) -> Bool {
        signalInterceptor.withLock { $0 }?(delivery) ?? false
    }

    /// Records the signal; true for the first one.
    func recordSignal(_ delivery: SignalDelivery) -> Bool {
        signal.withLock { s in
            guard s == nil else { return false }
            s = delivery
            return true
        }
    }

    func runInterruptCleanups() {
        endProgress()
        let all = cleanups.withLock { c -> [@Sendable () -> Void] in defer { c = [] }; return c }
        for body in all { body() }
        cleanupsDone.withLock { $0 = true }
    }

    /// Waits (at most `limit`) until the interrupt cleanups have run, so that the sessions they
    /// still use are not closed under them.
    func waitForInterruptCleanups(limit: Duration = .seconds(60)) async {
        let deadline = ContinuousClock.now + limit
        while !cleanupsDone.withLock({ $0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: Progress

    /// Shows `counter` as a one-line progress display on stderr, from about a second on, until
    /// the command ends (the runner clears it, so that the final summary stands alone). Nothing
    /// when progress is off (`Settings.progress`).
    public func showProgress(_ label: String, _ counter: ProgressCounter) {
        guard settings.progress else { return }
        let line = ProgressLine(label: label, counter: counter, status: output.statusLine, delay: settings.progressDelay)
        progressLines.withLock { $0.append(line) }
    }

    /// Clears every progress line this command shows. A command calls it once its counted work
    /// is done, before it prints its result or summary, so that no redraw lands after them; the
    /// runner calls it again (harmlessly) whatever the command did.
    public func endProgress() {
        let all = progressLines.withLock { l -> [ProgressLine] in defer { l = [] }; return l }
        for line in all { line.end() }
    }

    // MARK: Values

    /// The typed value of one of the command's options (or a global option). Reading an option
    /// the command does not declare is a programming error, caught in debug builds.
    public subscript<Value>(_ option: Option<Value>) -> Value {
        assert(parsed.spec.option(long: option.spec.long) != nil || CommandTable.root.option(long: option.spec.long) != nil,
               "'--\(option.spec.long)' is not declared for '\(parsed.path.joined(separator: " "))'")
        return option.value(in: parsed)
    }

    /// The text typed for an option, for messages that quote it.
    public func text<Value>(of option: Option<Value>) -> String? { option.text(in: parsed) }

    public var arguments: [String] { parsed.positionals }
    public func argument(_ index: Int) -> String? {
        index < parsed.positionals.count ? parsed.positionals[index] : nil
    }
    /// The command after `--`.
    public var command: [String] { parsed.command }
    public var maxInFlight: Int { settings.maxInFlight.value }
}
