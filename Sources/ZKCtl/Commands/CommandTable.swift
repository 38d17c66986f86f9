import Foundation
import ZooKeeper

/// The whole command line, declared once. Parsing, help, usage errors, completions and the man
/// page are all generated from it. Each command family declares its commands in its own file.
public enum CommandTable {
    public static let root = CommandSpec(
        "zkctl",
        summary: "a command-line admin tool for Apache ZooKeeper",
        options: globalOptions,
        subcommands: [statusCommand, treeCommand] + configCommands + serviceCommands + znodeCommands
            + coordinationCommands + backupCommands + toolCommands + [helpCommand] + hiddenCommands)

    /// Options every command accepts, before or after the command name. No command may reuse
    /// these names (a test checks).
    public static let globalOptions: [OptionSpec] = [
        OptionSpec("server", short: "s", value: "HOSTS", help: "servers: host:port,...[/chroot] or a zookeeper:// URL",
                   default: Settings.defaultServers, env: Settings.serverVariables.joined(separator: ", then ")),
        OptionSpec("timeout", value: "DURATION", type: .duration, help: "connect and request timeout", default: "10s", env: "ZKCTL_TIMEOUT"),
        OptionSpec("config", value: "FILE", type: .file, help: "config file (INI)", env: "ZKCTL_CONFIG"),
        OptionSpec("auth-file", value: "FILE", type: .file, help: "file holding user:password for digest auth"),
        OptionSpec("auth", value: "USER:PASSWORD", help: "digest credentials on the command line (others can see them; prefer ZKCTL_AUTH)",
                   env: "ZKCTL_AUTH", repeatable: true),
        OptionSpec("output", short: "o", value: "FORMAT", type: .choice(OutputFormat.allCases.map(\.rawValue)),
                   help: "output format", default: "text", env: "ZKCTL_OUTPUT"),
        OptionSpec("json", help: "shorthand for --output json"),
        OptionSpec("quiet", short: "q", help: "only errors on stderr"),
        OptionSpec("verbose", short: "v", help: "more on stderr, including the C client's log (-vv for all of it)", repeatable: true),
        OptionSpec("config-root", value: "PATH", type: .znodePath, help: "where config keys live", default: "/config", env: "ZKCTL_CONFIG_ROOT"),
        OptionSpec("services-root", value: "PATH", type: .znodePath, help: "where service instances live", default: "/services", env: "ZKCTL_SERVICES_ROOT"),
        OptionSpec("locks-root", value: "PATH", type: .znodePath, help: "where locks live", default: "/locks", env: "ZKCTL_LOCKS_ROOT"),
        OptionSpec("tasks-root", value: "PATH", type: .znodePath, help: "where run-once records live", default: "/tasks", env: "ZKCTL_TASKS_ROOT"),
        OptionSpec("max-inflight", value: "N", type: .int(1...100_000), help: "bound on pipelined requests in flight",
                   default: String(ZooKeeperClient.defaultMaxInFlight), env: "ZKCTL_MAX_INFLIGHT"),
        OptionSpec("version", help: "print the version and the C client's version"),
    ]

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
