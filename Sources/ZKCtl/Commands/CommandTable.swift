import FoundationEssentials
import ZooKeeper

/// The whole command line, declared once. Parsing, help, usage errors, completions and the man
/// page are all generated from it. Each command family declares its commands in its own file.
public enum CommandTable {
    /// The commands, in the order help lists them. Each entry repeats its command's name (and
    /// aliases) so that the parser builds only the command it runs (`CommandEntry`).
    public static let root: CommandSpec = CommandSpec(
        "zkctl",
        summary: "a command-line admin tool for Apache ZooKeeper",
        options: globalOptions,
        entries: [
            CommandEntry("status") { statusCommand },
            CommandEntry("tree") { treeCommand },
            CommandEntry("config") { configCommand },
            CommandEntry("service") { serviceCommand },
            CommandEntry("get") { getCommand },
            CommandEntry("stat") { statCommand },
            CommandEntry("exists") { existsCommand },
            CommandEntry("ls") { lsCommand },
            CommandEntry("set") { setCommand },
            CommandEntry("create") { createCommand },
            CommandEntry("delete", aliases: ["rm"]) { deleteCommand },
            CommandEntry("acl") { aclCommand },
            CommandEntry("watch") { watchCommand },
            CommandEntry("lock") { lockCommand },
            CommandEntry("run-once") { runOnceCommand },
            CommandEntry("elect") { electCommand },
            CommandEntry("export") { exportCommand },
            CommandEntry("import") { importCommand },
            CommandEntry("diff") { diffCommand },
            CommandEntry("digest") { digestCommand },
            CommandEntry("completion") { completionCommand },
            CommandEntry("ensemble") { ensembleCommand },
            CommandEntry("metrics") { metricsCommand },
            CommandEntry("sessions") { sessionsCommand },
            CommandEntry("txn") { txnCommand },
            CommandEntry("find") { findCommand },
            CommandEntry("du") { duCommand },
            CommandEntry("quota") { quotaCommand },
            CommandEntry("edit") { editCommand },
            CommandEntry("help") { helpCommand },
            CommandEntry("__generate", hidden: true) { generateCommand },
            CommandEntry("__complete", hidden: true) { completeCommand },
            CommandEntry("shell") { ShellCommand.command },
        ])

    /// The command families as each file declares them, in the order of `root`'s entries (a
    /// test checks that the entries name exactly these commands).
    static let families: [CommandSpec] = [statusCommand, treeCommand] + configCommands + serviceCommands + znodeCommands
        + coordinationCommands + backupCommands + toolCommands + ensembleCommands + toolkitCommands + [helpCommand] + hiddenCommands
        + shellCommands

    /// Options every command accepts, before or after the command name. No command may reuse
    /// these names (a test checks).
    public static let globalOptions: [OptionSpec] = GlobalOptions.all

    static let helpCommand = CommandSpec(
        "help", summary: "show help for a command",
        arguments: [ArgumentSpec("COMMAND", help: "the command (and subcommand)", optional: true, variadic: true, completion: .command)],
        handler: runHelp)

    @Sendable static func runHelp(_ inv: Invocation) async throws -> Int32 {
            // The command's path by its names (an alias such as 'rm' names 'delete').
            var spec = root
            var path: [String] = []
            for word in inv.arguments {
                guard let sub = spec.subcommand(named: word) else {
                    var message = "unknown command '\(word)'"
                    if let guess = Parser.suggestion(for: word, among: spec.subcommands.map(\.name)) { message += " (did you mean '\(guess)'?)" }
                    throw UsageError(message)
                }
                spec = sub
                path.append(sub.name)
            }
            inv.output.write(Help.text(for: path, root: root))
            return ExitCode.success
    }
}

/// The global options, each declared once with its default, range, environment variables and
/// config-file key: help, the man page, completions and `Settings.resolve` (with `-v`'s report
/// of where a value came from) all read these declarations.
public enum GlobalOptions {
    public static let server = Option<String>(
        "server", short: "s", value: "HOSTS", help: "servers: host:port,...[/chroot] or a zookeeper:// URL",
        default: Settings.defaultServers, env: Settings.serverVariables, file: ConfigFileKey("zookeeper", "servers"))
    public static let timeout = Option<Duration?>(
        duration: "timeout", help: "connect and request timeout", default: "10s", env: ["ZKCTL_TIMEOUT"],
        file: ConfigFileKey("zkctl", "timeout"))
    public static let sessionTimeout = Option<Duration?>(
        duration: "session-timeout",
        help: "session timeout to ask the server for (default: --timeout, at least 4s; the server keeps it within its own bounds)",
        env: ["ZKCTL_SESSION_TIMEOUT"], file: ConfigFileKey("zkctl", "session-timeout"))
    public static let config = Option<String?>("config", value: "FILE", type: .file, help: "config file (INI)", env: ["ZKCTL_CONFIG"])
    public static let authFile = Option<String?>(
        "auth-file", value: "FILE", type: .file, help: "file holding user:password for digest auth",
        file: ConfigFileKey("zkctl", "auth-file"))
    public static let auth = Option<[String]>(
        list: "auth", value: "USER:PASSWORD", help: "digest credentials on the command line (others can see them; prefer ZKCTL_AUTH)",
        env: ["ZKCTL_AUTH"])
    public static let output = Option<String>(
        "output", short: "o", value: "FORMAT", type: .choice(OutputFormat.allCases.map(\.rawValue)), help: "output format",
        default: OutputFormat.text.rawValue, env: ["ZKCTL_OUTPUT"], file: ConfigFileKey("zkctl", "output"))
    public static let json = Option<Bool>(flag: "json", help: "shorthand for --output json")
    public static let quiet = Option<Bool>(flag: "quiet", short: "q", help: "only errors on stderr")
    public static let verbose = Option<Int>(count: "verbose", short: "v", help: "more on stderr, including the C client's log (-vv for all of it)")
    public static let configRoot = root("config-root", help: "where config keys live", default: "/config", env: "ZKCTL_CONFIG_ROOT")
    public static let servicesRoot = root("services-root", help: "where service instances live", default: "/services", env: "ZKCTL_SERVICES_ROOT")
    public static let locksRoot = root("locks-root", help: "where locks live", default: "/locks", env: "ZKCTL_LOCKS_ROOT")
    public static let tasksRoot = root("tasks-root", help: "where run-once records live", default: "/tasks", env: "ZKCTL_TASKS_ROOT")
    public static let electionsRoot = root("elections-root", help: "where leader elections live", default: "/elections", env: "ZKCTL_ELECTIONS_ROOT")
    public static let maxInFlight = Option<Int>(
        "max-inflight", range: 1...100_000, help: "bound on pipelined requests in flight",
        default: ZooKeeperClient.defaultMaxInFlight, env: ["ZKCTL_MAX_INFLIGHT"], file: ConfigFileKey("zkctl", "max-inflight"))
    public static let sync = Option<Bool>(OptionSpec(
        "sync", help: "reads see every write acknowledged before the command began, even through a lagging follower (a sync first)",
        env: ["ZKCTL_SYNC"], file: ConfigFileKey("zkctl", "sync"))) { given, _ in given != nil }
    public static let version = Option<Bool>(flag: "version", help: "print the version and the C client's version")
    // TLS to the servers' secureClientPort (through zkctl's own relay: the C client has no TLS).
    public static let tls = Option<Bool>(
        flag: "tls", help: "talk TLS to the servers (their secureClientPort)", env: ["ZKCTL_TLS"], file: ConfigFileKey("zkctl", "tls"))
    public static let tlsCA = Option<String?>(
        "tls-ca", value: "FILE", type: .file, help: "PEM CA certificates the servers' certificates must chain to (default: the system's); implies --tls",
        env: ["ZKCTL_TLS_CA"], file: ConfigFileKey("zkctl", "tls-ca"))
    public static let tlsCert = Option<String?>(
        "tls-cert", value: "FILE", type: .file, help: "PEM client certificate, for servers that require one; implies --tls",
        env: ["ZKCTL_TLS_CERT"], file: ConfigFileKey("zkctl", "tls-cert"))
    public static let tlsKey = Option<String?>(
        "tls-key", value: "FILE", type: .file, help: "PEM key of --tls-cert (keep it mode 600); implies --tls",
        env: ["ZKCTL_TLS_KEY"], file: ConfigFileKey("zkctl", "tls-key"))
    public static let tlsServerName = Option<String?>(
        "tls-server-name", value: "NAME", help: "the name the servers' certificates must carry, instead of the host; implies --tls")
    public static let tlsInsecure = Option<Bool>(
        flag: "tls-insecure", help: "TLS without verifying the servers' certificates (warned every time); implies --tls")
    public static let tlsSessionCache = Option<String?>(
        "tls-session-cache", value: "DIR", type: .file,
        help: "where TLS sessions are kept for 10 minutes, so that the next command resumes one instead of a full handshake: a directory only you can enter (default: $XDG_RUNTIME_DIR/zkctl; off: keep none)",
        env: ["ZKCTL_TLS_SESSION_CACHE"], file: ConfigFileKey("zkctl", "tls-session-cache"))
    /// The TLS options, in the order help lists them.
    static let tlsOptions: [OptionSpec] = [tls.spec, tlsCA.spec, tlsCert.spec, tlsKey.spec, tlsServerName.spec, tlsInsecure.spec, tlsSessionCache.spec]
    public static let progress = Option<Bool>(OptionSpec(
        "progress", help: "show progress of long work on stderr even when it is not a terminal (by default only on a terminal, after about a second; never with -q)",
        env: ["ZKCTL_PROGRESS"])) { given, _ in given != nil }
    public static let noProgress = Option<Bool>(flag: "no-progress", help: "never show progress")
    /// How long work runs before its progress line appears (1s): hidden, so that tests can show
    /// it on small trees.
    public static let progressAfter = Option<Duration?>(duration: "progress-after", help: "show progress after DURATION of work", hidden: true)

    /// In the order help and the man page list them.
    public static let all: [OptionSpec] = [
        server.spec, timeout.spec, sessionTimeout.spec, config.spec, authFile.spec, auth.spec, output.spec, json.spec, quiet.spec, verbose.spec,
        configRoot.spec, servicesRoot.spec, locksRoot.spec, tasksRoot.spec, maxInFlight.spec, sync.spec, version.spec,
        progress.spec, noProgress.spec, progressAfter.spec,
        electionsRoot.spec,
    ] + tlsOptions

    /// A root under which a family keeps its nodes: a znode path, also read from the environment
    /// and the config file (the key is the option's name).
    private static func root(_ long: String, help: String, default value: String, env: String) -> Option<String> {
        Option<String>(long, value: "PATH", type: .znodePath, help: help, default: value, env: [env],
                       file: ConfigFileKey("zkctl", long))
    }
}
