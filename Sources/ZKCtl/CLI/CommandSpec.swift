
/// What a value must look like. Checked while parsing, so a bad value is a usage error that
/// quotes what was typed.
public enum ValueType: Sendable, Hashable {
    case string
    /// A whole number within the range.
    case int(ClosedRange<Int>)
    /// `500ms`, `10s`, `5m`, `24h`, `7d`, or a bare number of seconds.
    case duration
    /// JSON text; commands parse it themselves (bad JSON is exit 65, not 64).
    case json
    /// A znode path.
    case znodePath
    /// A local file (`-` for stdin where the command says so).
    case file
    case choice([String])

    var name: String {
        switch self {
        case .string: return "string"
        case .int: return "integer"
        case .duration: return "duration"
        case .json: return "JSON"
        case .znodePath: return "znode path"
        case .file: return "file"
        case .choice(let c): return c.joined(separator: "|")
        }
    }
}

/// What a shell completion offers for a value.
public enum CompletionKind: String, Sendable, Hashable {
    case none, znodePath, configKey, serviceName, lockName, file, choice, duration, command
}

/// Where a setting sits in the config file (`[section] key = value`).
public struct ConfigFileKey: Sendable, Hashable {
    public var section: String
    public var key: String
    public init(_ section: String, _ key: String) {
        self.section = section
        self.key = key
    }
}

/// One option, declared once: parsing, help, completions, the man page and settings resolution
/// all read it. Handlers read its value through a typed `Option` that wraps it.
public struct OptionSpec: Sendable {
    public var long: String
    public var short: Character?
    /// nil for a flag that takes no value.
    public var valueName: String?
    public var type: ValueType
    public var help: String
    public var defaultValue: String?
    /// The environment variables that set it, in the order they are read.
    public var environmentVariables: [String]
    /// Its key in the config file, for a global option that has one.
    public var fileKey: ConfigFileKey?
    public var repeatable: Bool
    public var completion: CompletionKind
    public var hidden: Bool

    public init(_ long: String, short: Character? = nil, value valueName: String? = nil, type: ValueType = .string,
                help: String, default defaultValue: String? = nil, env environmentVariables: [String] = [],
                file fileKey: ConfigFileKey? = nil,
                repeatable: Bool = false, completion: CompletionKind? = nil, hidden: Bool = false) {
        self.long = long
        self.short = short
        self.valueName = valueName
        self.type = type
        self.help = help
        self.defaultValue = defaultValue
        self.environmentVariables = environmentVariables
        self.fileKey = fileKey
        self.repeatable = repeatable
        self.hidden = hidden
        if let completion {
            self.completion = completion
        } else {
            switch type {
            case .choice: self.completion = .choice
            case .file: self.completion = .file
            case .duration: self.completion = .duration
            case .znodePath: self.completion = .znodePath
            default: self.completion = .none
            }
        }
    }

    public var isFlag: Bool { valueName == nil }

    /// The environment variables as help shows them (`A, then B`), nil when there are none.
    public var environment: String? {
        environmentVariables.isEmpty ? nil : environmentVariables.joined(separator: ", then ")
    }

    /// `-s, --server HOSTS` as help shows it.
    public var synopsis: String {
        var s = short.map { "-\($0), " } ?? "    "
        s += "--\(long)"
        if let valueName { s += " \(valueName)" }
        return s
    }
}

/// An option as a handler reads it: its declaration (`spec`, which goes in the command's
/// `options`) and how its typed value comes out of the parsed command line. A handler reads
/// `inv[SomeOptions.name]`, never a string name, so a misspelt option does not compile.
///
/// Given more than once, an option that is not repeatable keeps its last value (as the parser
/// always did); a repeatable one (`list`, `count`) reads every occurrence.
public struct Option<Value: Sendable>: Sendable {
    public let spec: OptionSpec
    private let decode: @Sendable (_ given: [String]?, _ spec: OptionSpec) -> Value

    init(_ spec: OptionSpec, decode: @escaping @Sendable (_ given: [String]?, _ spec: OptionSpec) -> Value) {
        self.spec = spec
        self.decode = decode
    }

    /// The value on this command line (values are checked against the type while parsing).
    public func value(in parsed: ParsedCommand) -> Value {
        decode(parsed.values[spec.long], spec)
    }

    /// The text given for the option (its last occurrence), for messages that quote it.
    public func text(in parsed: ParsedCommand) -> String? { parsed.values[spec.long]?.last }

    /// Whether the option was given at all.
    public func isGiven(in parsed: ParsedCommand) -> Bool { parsed.values[spec.long] != nil }
}

extension Option where Value == Bool {
    /// A flag without a value: true when given.
    public init(flag long: String, short: Character? = nil, help: String, hidden: Bool = false) {
        self.init(OptionSpec(long, short: short, help: help, hidden: hidden)) { given, _ in given != nil }
    }

    /// A flag that the environment or the config file may also set (`Settings` reads those; this
    /// value is the command line's alone).
    public init(flag long: String, help: String, env: [String], file: ConfigFileKey?) {
        self.init(OptionSpec(long, help: help, env: env, file: file)) { given, _ in given != nil }
    }
}

extension Option where Value == Int {
    /// A flag that may be repeated (`-vv`): how many times it was given.
    public init(count long: String, short: Character? = nil, help: String) {
        self.init(OptionSpec(long, short: short, help: help, repeatable: true)) { given, _ in given?.count ?? 0 }
    }

    /// A whole number within `range`, with a default.
    public init(_ long: String, short: Character? = nil, value: String = "N", range: ClosedRange<Int>, help: String,
                default defaultValue: Int, env: [String] = [], file: ConfigFileKey? = nil) {
        self.init(OptionSpec(long, short: short, value: value, type: .int(range), help: help,
                             default: String(defaultValue), env: env, file: file)) { given, _ in
            given?.last.flatMap { Int($0) } ?? defaultValue
        }
    }
}

extension Option where Value == Int? {
    /// A whole number within `range`; nil when not given.
    public init(_ long: String, short: Character? = nil, value: String = "N", range: ClosedRange<Int>, help: String) {
        self.init(OptionSpec(long, short: short, value: value, type: .int(range), help: help)) { given, _ in
            given?.last.flatMap { Int($0) }
        }
    }
}

extension Option where Value == Duration? {
    /// A duration (`500ms`, `10s`, ...); its default when not given, nil without one.
    public init(duration long: String, short: Character? = nil, value: String = "DURATION", help: String,
                default defaultValue: String? = nil, env: [String] = [], file: ConfigFileKey? = nil,
                hidden: Bool = false) {
        self.init(OptionSpec(long, short: short, value: value, type: .duration, help: help, default: defaultValue,
                             env: env, file: file, hidden: hidden)) { given, spec in
            (given?.last ?? spec.defaultValue).flatMap { parseDuration($0) }
        }
    }
}

extension Option where Value == Duration {
    /// A duration with a default (which must be a valid duration).
    public init(duration long: String, short: Character? = nil, value: String = "DURATION", help: String,
                default defaultValue: String, env: [String] = [], file: ConfigFileKey? = nil) {
        guard let fallback = parseDuration(defaultValue) else { preconditionFailure("bad default '\(defaultValue)' for --\(long)") }
        self.init(OptionSpec(long, short: short, value: value, type: .duration, help: help, default: defaultValue,
                             env: env, file: file)) { given, _ in given?.last.flatMap { parseDuration($0) } ?? fallback }
    }
}

extension Option where Value == String? {
    /// A value of `type` (text, a path, a file, JSON, a choice); nil when not given.
    public init(_ long: String, short: Character? = nil, value: String, type: ValueType = .string, help: String,
                env: [String] = [], file: ConfigFileKey? = nil, completion: CompletionKind? = nil) {
        self.init(OptionSpec(long, short: short, value: value, type: type, help: help, env: env, file: file,
                             completion: completion)) { given, _ in given?.last }
    }
}

extension Option where Value == String {
    /// A value of `type` with a default.
    public init(_ long: String, short: Character? = nil, value: String, type: ValueType = .string, help: String,
                default defaultValue: String, env: [String] = [], file: ConfigFileKey? = nil,
                completion: CompletionKind? = nil) {
        self.init(OptionSpec(long, short: short, value: value, type: type, help: help, default: defaultValue,
                             env: env, file: file, completion: completion)) { given, _ in given?.last ?? defaultValue }
    }
}

extension Option where Value == [String] {
    /// A value that may be given several times: every occurrence, in order.
    public init(list long: String, short: Character? = nil, value: String, type: ValueType = .string, help: String,
                env: [String] = [], completion: CompletionKind? = nil) {
        self.init(OptionSpec(long, short: short, value: value, type: type, help: help, env: env, repeatable: true,
                             completion: completion)) { given, _ in given ?? [] }
    }
}

extension ParsedCommand {
    /// The typed value of `option` on this command line.
    public subscript<Value>(_ option: Option<Value>) -> Value { option.value(in: self) }
}

/// One positional argument.
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var type: ValueType
    public var optional: Bool
    /// Takes every remaining positional (at least one unless optional).
    public var variadic: Bool
    public var completion: CompletionKind
    /// A znode path that the shell fills in with its current path when left out (as it does for
    /// every optional one), though the command line needs it.
    public var currentPathInShell: Bool

    public init(_ name: String, help: String, type: ValueType = .string, optional: Bool = false,
                variadic: Bool = false, completion: CompletionKind = .none, currentPathInShell: Bool = false) {
        self.name = name
        self.help = help
        self.type = type
        self.optional = optional
        self.variadic = variadic
        self.completion = completion
        self.currentPathInShell = currentPathInShell
    }

    var usage: String {
        let core = variadic ? "\(name)..." : name
        return optional ? "[\(core)]" : core
    }
}

/// A command or subcommand. A command with subcommands has no handler of its own.
public struct CommandSpec: Sendable {
    public typealias Handler = @Sendable (Invocation) async throws -> Int32

    public var name: String
    public var aliases: [String]
    public var summary: String
    /// Longer help, with worked examples, shown by `zkctl help CMD` and in the man page.
    public var description: String
    public var examples: [String]
    public var arguments: [ArgumentSpec]
    public var options: [OptionSpec]
    /// Every subcommand, built (for the root: each one built as this asks for it).
    public var subcommands: [CommandSpec] {
        get { entries.isEmpty ? built : entries.map(\.spec) }
        set { built = newValue; entries = [] }
    }
    // Two plain arrays rather than an enum with two array payloads: such an enum keeps its case
    // in the pointer's spare bits, and LeakSanitizer (the fuzz build) then takes the root's
    // entries for a leak. Either `built` or `entries` is empty.
    private var built: [CommandSpec]
    private var entries: [CommandEntry] = []
    /// Everything after `--` is a command to run (`lock NAME -- CMD ARGS...`).
    public var takesCommand: Bool
    /// With `takesCommand`: whether the command after `--` must be there (usage shows it so).
    public var commandRequired: Bool
    public var hidden: Bool
    /// What `-o json` prints, in a sentence or a sketch (for the man page).
    public var jsonOutput: String
    public var handler: Handler?

    public init(_ name: String, aliases: [String] = [], summary: String, description: String = "",
                examples: [String] = [], arguments: [ArgumentSpec] = [], options: [OptionSpec] = [],
                subcommands: [CommandSpec] = [], takesCommand: Bool = false, commandRequired: Bool = true, hidden: Bool = false,
                jsonOutput: String = "", handler: Handler? = nil) {
        self.name = name
        self.aliases = aliases
        self.summary = summary
        self.description = description
        self.examples = examples
        self.arguments = arguments
        self.options = options
        self.built = subcommands
        self.takesCommand = takesCommand
        self.commandRequired = commandRequired
        self.hidden = hidden
        self.jsonOutput = jsonOutput
        self.handler = handler
    }

    /// A command whose subcommands are entries (the root): only the entry a command line
    /// names has its spec built.
    public init(_ name: String, summary: String, options: [OptionSpec], entries: [CommandEntry]) {
        self.init(name, summary: summary, options: options)
        self.entries = entries
    }

    var hasSubcommands: Bool {
        !built.isEmpty || !entries.isEmpty
    }

    /// The names of the subcommands that are not hidden, without building their specs.
    var visibleSubcommandNames: [String] {
        entries.isEmpty ? built.filter { !$0.hidden }.map(\.name) : entries.filter { !$0.hidden }.map(\.name)
    }

    func subcommand(named word: String) -> CommandSpec? {
        if entries.isEmpty { return built.first { $0.name == word || $0.aliases.contains(word) } }
        return entries.first { $0.name == word || $0.aliases.contains(word) }?.spec
    }

    func option(long: String) -> OptionSpec? { options.first { $0.long == long } }
    func option(short: Character) -> OptionSpec? { options.first { $0.short == short } }

    var usageLine: String {
        var parts: [String] = []
        if !subcommands.isEmpty { parts.append("COMMAND") }
        if !options.filter({ !$0.hidden }).isEmpty { parts.append("[OPTIONS]") }
        parts += arguments.map(\.usage)
        if takesCommand { parts.append(commandRequired ? "-- CMD [ARGS...]" : "[-- CMD [ARGS...]]") }
        return parts.joined(separator: " ")
    }
}

/// A subcommand that the parser finds by its name before its spec is built: the name, aliases
/// and `hidden` are repeated from the spec (a test checks that they agree), the spec itself is
/// a global built the first time it is asked for. So a command line builds the one command it
/// runs; building every command's spec was an eighth of a one-shot command's own work.
public struct CommandEntry: Sendable {
    public let name: String
    public let aliases: [String]
    public let hidden: Bool
    private let build: @Sendable () -> CommandSpec

    public init(_ name: String, aliases: [String] = [], hidden: Bool = false, _ build: @escaping @Sendable () -> CommandSpec) {
        self.name = name
        self.aliases = aliases
        self.hidden = hidden
        self.build = build
    }

    public var spec: CommandSpec { build() }
}
