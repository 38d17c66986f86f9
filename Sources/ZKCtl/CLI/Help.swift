
/// Help text, generated from the command table.
public enum Help {
    public static func text(for path: [String], root: CommandSpec) -> String {
        var spec = root
        for word in path { if let sub = spec.subcommand(named: word) { spec = sub } }
        let name = (["zkctl"] + path).joined(separator: " ")
        var out = ""
        if path.isEmpty {
            out += "zkctl: \(root.summary)\n\n"
        } else {
            out += "\(name): \(spec.summary)\n\n"
        }
        out += "Usage: \(name) \(spec.usageLine)\n"
        if !spec.description.isEmpty {
            out += "\n" + spec.description.trimmingBlanksAndNewlines() + "\n"
        }
        let visible = spec.subcommands.filter { !$0.hidden }
        if !visible.isEmpty {
            out += "\nCommands:\n"
            let width = (visible.map { $0.name.count }.max() ?? 0) + 2
            for c in visible { out += "  " + c.name.padded(to: width) + c.summary + "\n" }
        }
        if !spec.arguments.isEmpty {
            out += "\nArguments:\n"
            let width = (spec.arguments.map { $0.name.count }.max() ?? 0) + 2
            for a in spec.arguments { out += "  " + a.name.padded(to: width) + a.help + "\n" }
        }
        let options = spec.options.filter { !$0.hidden }
        if !options.isEmpty && !path.isEmpty {
            out += "\nOptions:\n" + optionLines(options)
        }
        if !spec.jsonOutput.isEmpty {
            out += "\n" + wrapped("JSON output: " + spec.jsonOutput.split(whereSeparator: \.isNewline).joined(separator: " "))
        }
        if !spec.examples.isEmpty {
            out += "\nExamples:\n"
            for e in spec.examples { out += "  \(e)\n" }
        }
        out += "\nGlobal options:\n" + optionLines(root.options.filter { !$0.hidden })
        if path.isEmpty {
            out += "\nRun 'zkctl help COMMAND' or 'zkctl COMMAND --help' for a command's options and examples.\n"
            out += "Exit codes: 0 ok, 1 not found, 64 usage, 65 bad data, 66 no input, 69 unavailable,\n"
            out += "70 internal error, 73 cannot write output, 75 conflict, 77 not authorized, 130 interrupted.\n"
            out += "See man zkctl.\n"
        }
        return out
    }

    /// Text in lines of at most `width` columns (a longer word stands alone), each ending in a newline.
    static func wrapped(_ text: String, width: Int = 92) -> String {
        var out = "", line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                out += line + "\n"
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        return out + line + "\n"
    }

    static func optionLines(_ options: [OptionSpec]) -> String {
        let width = (options.map { $0.synopsis.count }.max() ?? 0) + 2
        var out = ""
        for o in options {
            var help = o.help
            if let d = o.defaultValue { help += " (default \(d))" }
            if let e = o.environment { help += " [env \(e)]" }
            out += "  " + o.synopsis.padded(to: width) + help + "\n"
        }
        return out
    }
}
