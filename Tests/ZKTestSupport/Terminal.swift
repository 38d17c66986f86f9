import Foundation

/// `text` quoted for a POSIX shell: one word, whatever it holds.
public func shellQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

/// Runs `executable` with `args` on a pseudo-terminal that script(1) makes, as a user at a
/// terminal would: isatty(1) is true for it. Returns what the terminal received, with the
/// terminal's CR LF line ends turned back into LF, and the program's exit status.
public func runOnTerminal(_ executable: String, _ args: [String], environment: [String: String],
                          timeout: TimeInterval = 60) throws -> ProcessResult {
    let command = ([executable] + args).map(shellQuoted).joined(separator: " ")
    let r = try runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment, timeout: timeout)
    var screen = Data()
    screen.reserveCapacity(r.stdout.count)
    for byte in r.stdout {
        if byte == 0x0a, screen.last == 0x0d { screen.removeLast() }
        screen.append(byte)
    }
    return ProcessResult(stdout: screen, stderr: r.stderr, status: r.status, signal: r.signal)
}
