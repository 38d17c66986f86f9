import CEditline
import Foundation

/// Line editing on a terminal through libedit: Emacs keys, Up/Down through the history, Ctrl-R
/// to search it. The history is kept in `$XDG_STATE_HOME/zkctl/history` (mode 0600).
final class LineEditor: @unchecked Sendable {
    // Sendable: used by the shell's loop alone, one line at a time.
    private let editor: OpaquePointer
    private let history: OpaquePointer
    let historyFile: String?

    init?() {
        guard let history = zkctl_history_open(1000) else { return nil }
        guard let editor = zkctl_editline_open("zkctl", history) else { return nil }
        self.history = history
        self.editor = editor
        historyFile = Self.historyPath()
        if let historyFile { _ = zkctl_history_load(history, historyFile) }
    }

    deinit {
        el_end(editor)
        history_end(history)
    }

    /// `$XDG_STATE_HOME/zkctl/history`, or `~/.local/state/zkctl/history`; nil without either.
    static func historyPath() -> String? {
        let environment = ProcessInfo.processInfo.environment
        let state: String
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            state = xdg
        } else if let home = environment["HOME"], !home.isEmpty {
            state = home + "/.local/state"
        } else {
            return nil
        }
        return state + "/zkctl/history"
    }

    /// The next line typed after `prompt`, without its newline; nil at end of input (Ctrl-D).
    func readLine(prompt: String) -> String? {
        zkctl_editline_set_prompt(prompt)
        var count: Int32 = 0
        guard let raw = el_gets(editor, &count), count > 0 else { return nil }
        var line = String(cString: raw)
        if line.hasSuffix("\n") { line.removeLast() }
        return line
    }

    /// Adds `line` to the history and saves it (owner-only), unless it is blank.
    func remember(_ line: String) {
        guard !line.allSatisfy(\.isWhitespace) else { return }
        _ = zkctl_history_enter(history, line)
        guard let historyFile else { return }
        let directory = (historyFile as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        // Created owner-only before libedit writes it; kept so if it was made otherwise.
        let fd = open(historyFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        _ = chmod(historyFile, 0o600)
        _ = zkctl_history_save(history, historyFile)
    }
}
