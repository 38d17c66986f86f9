import ZooKeeper

/// A mistake on the command line: one line for stderr, exit 64.
public struct UsageError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// The command whose help the message points to (`zkctl config set --help`).
    public var commandPath: [String]

    public init(_ message: String, command commandPath: [String] = []) {
        self.message = message
        self.commandPath = commandPath
    }

    public var description: String {
        let help = (["zkctl"] + commandPath + ["--help"]).joined(separator: " ")
        return "\(message); see '\(help)'"
    }
}

/// The command line, understood: which command, its option values and arguments.
public struct ParsedCommand: Sendable {
    public var path: [String]
    public var spec: CommandSpec
    /// Raw values by long option name, in the order given (a flag's value is "true").
    public var values: [String: [String]]
    public var positionals: [String]
    /// The command after `--`, for commands that run one.
    public var command: [String]
    public var helpRequested: Bool
    /// The index of the first positional typed after `--` (then taken literally: a `-` there is
    /// the text `-`, not stdin); `positionals.count` when there was no `--`.
    public var firstLiteralPositional: Int

    /// Whether positional `index` is `-` standing for stdin (not a literal `-` after `--`).
    public func isStdin(_ index: Int) -> Bool {
        index < positionals.count && positionals[index] == "-" && index < firstLiteralPositional
    }

    public func has(_ long: String) -> Bool { values[long] != nil }
    public func last(_ long: String) -> String? { values[long]?.last }
    public func count(_ long: String) -> Int { values[long]?.count ?? 0 }
}

public enum Parser {
    /// Parses `arguments` (without the program name) against `root`, whose options are the global
    /// options, accepted before or after any subcommand. `resolvePath`, when given (the shell),
    /// turns each value typed as a znode path into an absolute one before it is checked.
    public static func parse(_ arguments: [String], root: CommandSpec,
                             resolvePath: ((String) -> String)? = nil) throws(UsageError) -> ParsedCommand {
        var current = root
        var path: [String] = []
        var values: [String: [String]] = [:]
        var positionals: [String] = []
        var command: [String] = []
        var help = false
        var endOfOptions = false
        var firstLiteral: Int? = nil
        let tokens = Parser.tokens(arguments)
        var i = 0

        func lookup(long name: String) -> OptionSpec? {
            current.option(long: name) ?? (path.isEmpty ? nil : root.option(long: name))
        }
        func lookup(short c: Character) -> OptionSpec? {
            current.option(short: c) ?? (path.isEmpty ? nil : root.option(short: c))
        }
        func allLongNames() -> [String] {
            (current.options + (path.isEmpty ? [] : root.options)).filter { !$0.hidden }.map(\.long) + ["help"]
        }
        func record(_ option: OptionSpec, _ value: String, typed: String) throws(UsageError) {
            var value = option.type == .znodePath ? Parser.withoutTrailingSlash(value) : value
            if option.type == .znodePath, let resolvePath { value = resolvePath(value) }
            if !option.isFlag { try validate(value, as: option.type, what: "value '\(value)' for \(typed)", command: path) }
            values[option.long, default: []].append(value)
        }

        // An option and the value it was given with (after '=' or the rest of a short cluster),
        // whichever way it was typed: one path for long and short options.
        func apply(_ option: OptionSpec, inline: String?, typed: String) throws(UsageError) {
            if option.isFlag {
                values[option.long, default: []].append("true")
                return
            }
            let value: String
            if let inline {
                value = inline
            } else {
                guard i < tokens.count else {
                    throw UsageError("option '\(typed)' needs a value (\(option.valueName ?? "VALUE"))", command: path)
                }
                value = tokens[i].text
                i += 1
            }
            try record(option, value, typed: "'\(typed)'")
        }

        while i < tokens.count {
            let token = tokens[i]
            i += 1
            if endOfOptions {
                positionals.append(token.text)
                continue
            }
            switch token.kind {
            case .endOfOptions:
                if current.takesCommand {
                    command = tokens[i...].map(\.text)
                    i = tokens.count
                    continue
                }
                endOfOptions = true
                firstLiteral = positionals.count
            case .long(let name, let inline):
                if name == "help" { help = true; continue }
                guard let option = lookup(long: name) else {
                    var message = "unknown option '--\(name)'"
                    if !path.isEmpty { message += " for '\(path.joined(separator: " "))'" }
                    if let guess = suggestion(for: name, among: allLongNames()) { message += " (did you mean '--\(guess)'?)" }
                    throw UsageError(message, command: path)
                }
                if option.isFlag && inline != nil { throw UsageError("option '--\(name)' takes no value", command: path) }
                try apply(option, inline: inline, typed: "--\(name)")
            case .shorts(let letters):
                var j = 0
                while j < letters.count {
                    let c = letters[j]
                    j += 1
                    if c == "h" && lookup(short: "h") == nil { help = true; continue }
                    guard let option = lookup(short: c) else {
                        throw UsageError("unknown option '-\(c)'" + (token.text.count > 2 ? " in '\(token.text)'" : ""), command: path)
                    }
                    if option.isFlag {
                        try apply(option, inline: nil, typed: "-\(c)")
                        continue
                    }
                    // The rest of the cluster, if any, is the value (-d3).
                    try apply(option, inline: j < letters.count ? String(letters[j...]) : nil, typed: "-\(c)")
                    break
                }
            case .word:
                if current.hasSubcommands && positionals.isEmpty {
                    guard let sub = current.subcommand(named: token.text) else {
                        let names = current.visibleSubcommandNames
                        var message = path.isEmpty ? "unknown command '\(token.text)'" : "unknown subcommand '\(token.text)' for '\(path.joined(separator: " "))'"
                        if let guess = suggestion(for: token.text, among: names) { message += " (did you mean '\(guess)'?)" }
                        throw UsageError(message, command: path)
                    }
                    current = sub
                    path.append(sub.name)
                    continue
                }
                positionals.append(token.text)
            }
        }

        var parsed = ParsedCommand(path: path, spec: current, values: values, positionals: positionals,
                                   command: command, helpRequested: help,
                                   firstLiteralPositional: firstLiteral ?? positionals.count)
        if help { return parsed }
        if current.handler == nil && current.hasSubcommands {
            if path.isEmpty { return parsed }
            let names = current.visibleSubcommandNames.joined(separator: ", ")
            throw UsageError("'\(path.joined(separator: " "))' needs a subcommand (\(names))", command: path)
        }
        // A path typed with a trailing '/' (as shell completion leaves it) is the same path.
        for (index, value) in parsed.positionals.enumerated() where !current.arguments.isEmpty {
            if current.arguments[min(index, current.arguments.count - 1)].type == .znodePath {
                parsed.positionals[index] = Parser.withoutTrailingSlash(value)
                if let resolvePath { parsed.positionals[index] = resolvePath(parsed.positionals[index]) }
            }
        }
        // In the shell, a command's optional PATH left out (or ls's) is the current path, unless
        // the command was given a znode path some other way (an option such as tree's --path).
        if let resolvePath, parsed.positionals.isEmpty, let first = current.arguments.first,
           first.optional || first.currentPathInShell, first.type == .znodePath,
           !current.options.contains(where: { $0.type == .znodePath && values[$0.long] != nil }) {
            parsed.positionals = [resolvePath(".")]
        }
        try checkArguments(parsed)
        return parsed
    }

    /// One command-line argument as it looks on its own: an option, `--`, or a word. Whether a
    /// word is an option's value, a subcommand or a positional is decided while parsing; an
    /// option that needs a value takes the next token's text, whatever its kind.
    struct Token: Sendable, Hashable {
        enum Kind: Sendable, Hashable {
            /// `--`.
            case endOfOptions
            /// `--name` or `--name=value`.
            case long(name: String, inline: String?)
            /// `-abc`: one or more short options, the last of which may take the rest as its value.
            case shorts([Character])
            /// Anything else, including `-` and a negative number such as `-5`.
            case word
        }
        var kind: Kind
        /// The argument as typed.
        var text: String
        /// Its index in the arguments.
        var position: Int
    }

    /// Splits the arguments into tokens, before any of them is interpreted.
    static func tokens(_ arguments: [String]) -> [Token] {
        arguments.enumerated().map { position, text in
            let kind: Token.Kind
            if text == "--" {
                kind = .endOfOptions
            } else if text.hasPrefix("--") {
                let body = text.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                let inline: String? = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
                kind = .long(name: name, inline: inline)
            } else if text.hasPrefix("-"), text.count > 1, !looksNumeric(text) || text == "-0" {  // -0: find's NUL flag
                kind = .shorts(Array(text.dropFirst()))
            } else {
                kind = .word
            }
            return Token(kind: kind, text: text, position: position)
        }
    }

    private static func checkArguments(_ parsed: ParsedCommand) throws(UsageError) {
        let specs = parsed.spec.arguments
        // The command's name, only for a message (joining costs a generic instantiation at start-up).
        var name: String { parsed.path.joined(separator: " ") }
        let given = parsed.positionals
        let required = specs.filter { !$0.optional }.count
        if given.count < required {
            let missing = specs.filter { !$0.optional }[given.count]
            throw UsageError("missing argument \(missing.name) for '\(name)'", command: parsed.path)
        }
        let variadic = specs.last?.variadic ?? false
        if !variadic && given.count > specs.count {
            throw UsageError("unexpected argument '\(given[specs.count])' for '\(name)'", command: parsed.path)
        }
        for (index, value) in given.enumerated() {
            let spec = specs[min(index, specs.count - 1)]
            try validate(value, as: spec.type, what: "\(spec.name) '\(value)'", command: parsed.path)
        }
    }

    /// Checks a value against its type; the message quotes what was typed.
    static func validate(_ value: String, as type: ValueType, what: String, command: [String]) throws(UsageError) {
        switch type {
        case .string, .json, .file:
            return
        case .int(let range):
            guard let n = Int(value) else { throw UsageError("bad \(what): not a whole number", command: command) }
            guard range.contains(n) else {
                throw UsageError("bad \(what): must be from \(range.lowerBound) to \(range.upperBound)", command: command)
            }
        case .duration:
            if parseDuration(value) == nil {
                throw UsageError("bad \(what): not a duration (like 500ms, 10s, 5m, 24h)", command: command)
            }
        case .znodePath:
            if let problem = PathRules.problem(with: value) {
                throw UsageError("bad \(what): \(problem)", command: command)
            }
        case .choice(let choices):
            guard choices.contains(value) else {
                var message = "bad \(what): must be one of \(choices.joined(separator: ", "))"
                if let guess = suggestion(for: value, among: choices) { message += " (did you mean '\(guess)'?)" }
                throw UsageError(message, command: command)
            }
        }
    }

    /// `/app/` as `/app`: one trailing slash, as shell completion leaves after a directory, names
    /// the same znode. `/` and paths with more than one trailing slash are left for the checks.
    static func withoutTrailingSlash(_ path: String) -> String {
        guard path.count > 1, path.hasSuffix("/"), !path.hasSuffix("//") else { return path }
        return String(path.dropLast())
    }

    /// `-5`, `-1.5`: a negative number is a value, not an option.
    static func looksNumeric(_ token: String) -> Bool {
        Double(token) != nil
    }

    /// The closest name within a small edit distance, if any.
    static func suggestion(for word: String, among names: [String]) -> String? {
        let limit = max(2, word.count / 3)
        let scored = names.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= limit }
        return scored.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var row = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = row
        }
        return previous[b.count]
    }
}

/// `500ms`, `10s`, `5m`, `24h`, `7d`, `1h30m`, or a bare number of seconds (`1.5`).
public func parseDuration(_ text: String) -> Duration? {
    if let seconds = Double(text) {
        guard seconds >= 0, seconds.isFinite, seconds < 1e9 else { return nil }
        return .milliseconds(Int64(seconds * 1000))
    }
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
    var rest = Substring(text)
    var total = 0.0
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let number = rest.prefix { $0.isNumber || $0 == "." }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        let unitText = rest.prefix { $0.isLetter }
        guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
        rest = rest.dropFirst(unitText.count)
        total += value * unit.1
    }
    guard total.isFinite, total < 1e9 else { return nil }
    return .milliseconds(Int64(total * 1000))
}
