import CEditline
import FoundationEssentials
import Glibc
import Synchronization
import ZooKeeper

/// Line editing on a terminal through libedit: Emacs keys, Up/Down through the history, Ctrl-R
/// to search it. The history is kept in `$XDG_STATE_HOME/zkctl/history` (mode 0600).
final class LineEditor: @unchecked Sendable {
    // Sendable: used by the shell's loop alone, one line at a time.
    private let editor: OpaquePointer
    private let history: OpaquePointer
    let historyFile: String?

    init?() {
        // Characters as the user's locale encodes them (UTF-8, usually), for the editor's reads;
        // only the character type, so no number or message changes.
        setlocale(LC_CTYPE, "")
        guard let history = zkctl_history_open(1000) else { return nil }
        guard let editor = zkctl_editline_open("zkctl", history) else { return nil }
        self.history = history
        self.editor = editor
        historyFile = Self.historyPath()
        if let historyFile { _ = zkctl_history_load(history, historyFile) }
        _ = zkctl_editline_set_interrupt(editor, lineEditorInterrupt)
    }

    /// Ctrl-C at the prompt (the signal path calls this when no command runs): the line being
    /// typed is dropped and a fresh prompt shown.
    static func interrupt() {
        zkctl_editline_wake()
    }

    deinit {
        zkctl_el_end(editor)
        zkctl_history_end(history)
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
        zkctl_editline_drain()
        lineInterrupted.withLock { $0 = false }
        let raw = zkctl_el_gets(editor, &count)
        // Ctrl-C: an empty line, so that the shell shows its prompt again.
        if lineInterrupted.withLock({ $0 }) { return "" }
        guard let raw, count > 0 else { return nil }
        var line = String(cString: raw)
        if line.hasSuffix("\n") { line.removeLast() }
        return line
    }

    /// Adds `line` to the history and saves it (owner-only), unless it is blank.
    func remember(_ line: String) {
        guard !line.allSatisfy(\.isWhitespace) else { return }
        _ = zkctl_history_enter(history, line)
        guard let historyFile else { return }
        let directory = parentDirectory(of: historyFile)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        // Created owner-only before libedit writes it; kept so if it was made otherwise.
        let fd = open(historyFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        _ = chmod(historyFile, 0o600)
        _ = zkctl_history_save(history, historyFile)
    }
}

extension LineEditor {
    /// Tab: what `complete` offers for the text before the cursor (the word being typed is the
    /// text after its last blank). One candidate is inserted; several insert their common
    /// prefix, or are listed when there is none to insert.
    func enableCompletion(_ complete: @escaping @Sendable (String) -> [Completion]) {
        completionBody.withLock { $0 = complete }
        zkctl_editline_set_completion(editor, lineEditorComplete)
    }

    /// Reads a line on a thread of its own, so that completion may wait for the server without
    /// holding one of the tasks' threads.
    func readLine(prompt: String) async -> String? {
        await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            startThread { continuation.resume(returning: self.readLine(prompt: prompt)) }
        }
    }
}

/// One completion: the whole word, and whether a blank follows it once it is inserted.
struct Completion: Sendable, Hashable {
    var word: String
    var final: Bool
}

private let completionBody = Mutex<(@Sendable (String) -> [Completion])?>(nil)

/// Whether the line being read was dropped by Ctrl-C.
private let lineInterrupted = Mutex(false)

/// libedit's handler of the ^C key (which the wake-up pipe sends): shows the rest of the line
/// and '^C', as a terminal does, then ends the line; `readLine` drops it.
private func lineEditorInterrupt(_ editor: OpaquePointer?, _ key: Int32) -> UInt8 {
    guard let editor else { return UInt8(CC_ERROR) }
    zkctl_editline_show_interrupt(editor)
    lineInterrupted.withLock { $0 = true }
    return UInt8(CC_NEWLINE)
}

/// libedit's Tab handler (a C function pointer: no captures).
private func lineEditorComplete(_ editor: OpaquePointer?, _ key: Int32) -> UInt8 {
    guard let editor, let info = zkctl_el_line(editor)?.pointee, let body = completionBody.withLock({ $0 }) else {
        return UInt8(CC_ERROR)
    }
    let length = info.cursor - info.buffer
    let before = length <= 0 ? "" : String(decoding: UnsafeRawBufferPointer(start: info.buffer, count: length), as: UTF8.self)
    let typed = String(before.reversed().prefix { $0 != " " && $0 != "\t" }.reversed())
    let candidates = body(before).filter { $0.word.hasPrefix(typed) }
    guard !candidates.isEmpty else { return UInt8(CC_REFRESH_BEEP) }
    if candidates.count == 1 {
        let insert = String(candidates[0].word.dropFirst(typed.count)) + (candidates[0].final ? " " : "")
        if !insert.isEmpty { _ = zkctl_el_insertstr(editor, insert) }
        return UInt8(CC_REFRESH)
    }
    let common = candidates.map(\.word).reduce(candidates[0].word) { a, b in String(zip(a, b).prefix { $0 == $1 }.map(\.0)) }
    if common.count > typed.count {
        _ = zkctl_el_insertstr(editor, String(common.dropFirst(typed.count)))
        return UInt8(CC_REFRESH)
    }
    let list = candidates.map(\.word).sorted().joined(separator: "  ")
    writeToStandardError("\n" + list + "\n")
    return UInt8(CC_REDISPLAY)
}
