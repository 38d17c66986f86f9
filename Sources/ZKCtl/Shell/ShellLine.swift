
/// A shell line split as a POSIX shell would split it, without expansions: words separated by
/// blanks, `;` between commands, `'...'` taken literally, `"..."` with `\"`, `\\`, `\$` and
/// `` \` `` escaped, a backslash outside quotes escaping the next character, and `#` at the start
/// of a word beginning a comment that runs to the end of the line.
enum ShellLine {
    /// The commands on `text` (one line, or several separated by newlines), each as its words.
    /// Empty commands are left out.
    static func split(_ text: String) throws(UsageError) -> [[String]] {
        var commands: [[String]] = []
        var words: [String] = []
        var word = ""
        var inWord = false
        var chars = Array(text)[...]

        func endWord() {
            if inWord { words.append(word) }
            word = ""
            inWord = false
        }
        func endCommand() {
            endWord()
            if !words.isEmpty { commands.append(words) }
            words = []
        }

        while let c = chars.popFirst() {
            switch c {
            case " ", "\t", "\r":
                endWord()
            case "\n", ";":
                endCommand()
            case "#" where !inWord:
                // A comment: skip to the end of the line.
                while let next = chars.first, next != "\n" { chars.removeFirst() }
            case "\\":
                inWord = true
                guard let next = chars.popFirst() else {
                    throw UsageError("a line cannot end with a backslash")
                }
                if next != "\n" { word.append(next) }
            case "'":
                inWord = true
                var closed = false
                while let next = chars.popFirst() {
                    if next == "'" { closed = true; break }
                    word.append(next)
                }
                if !closed { throw UsageError("unterminated single quote") }
            case "\"":
                inWord = true
                var closed = false
                while let next = chars.popFirst() {
                    if next == "\"" { closed = true; break }
                    if next == "\\", let escaped = chars.first, "\"\\$`\n".contains(escaped) {
                        chars.removeFirst()
                        if escaped != "\n" { word.append(escaped) }
                        continue
                    }
                    word.append(next)
                }
                if !closed { throw UsageError("unterminated double quote") }
            default:
                inWord = true
                word.append(c)
            }
        }
        endCommand()
        return commands
    }

    /// `path` made absolute against `directory`: `.` and `..` components resolved (`..` at the
    /// root stays there). An absolute path without such components is left as typed, so that the
    /// usual checks see it; `-` (stdin) and the empty text too.
    static func resolve(_ path: String, from directory: String) -> String {
        if path.isEmpty || path == "-" { return path }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        if path.hasPrefix("/") && !components.contains(where: { $0 == "." || $0 == ".." }) { return path }
        var parts: [Substring] = path.hasPrefix("/") ? [] : directory.split(separator: "/")
        for component in path.split(separator: "/") {
            switch component {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(component)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
