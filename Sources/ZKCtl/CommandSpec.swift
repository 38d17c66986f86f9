import Foundation

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
    case none, znodePath, configKey, serviceName, file, choice, duration, command
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

/// One positional argument.
public struct ArgumentSpec: Sendable {
    public var name: String
    public var help: String
    public var type: ValueType
    public var optional: Bool
    /// Takes every remaining positional (at least one unless optional).
    public var variadic: Bool
    public var completion: CompletionKind

    public init(_ name: String, help: String, type: ValueType = .string, optional: Bool = false,
                variadic: Bool = false, completion: CompletionKind = .none) {
        self.name = name
        self.help = help
        self.type = type
        self.optional = optional
        self.variadic = variadic
        self.completion = completion
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
    public var subcommands: [CommandSpec]
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
        self.subcommands = subcommands
        self.takesCommand = takesCommand
        self.commandRequired = commandRequired
        self.hidden = hidden
        self.jsonOutput = jsonOutput
        self.handler = handler
    }

    func subcommand(named word: String) -> CommandSpec? {
        subcommands.first { $0.name == word || $0.aliases.contains(word) }
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
