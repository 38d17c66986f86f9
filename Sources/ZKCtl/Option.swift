import Foundation

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
