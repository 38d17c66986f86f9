import FoundationEssentials
import Glibc
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// Exit codes (DESIGN.md section 6), the same for every command.
public enum ExitCode {
    public static let success: Int32 = 0
    public static let notFound: Int32 = 1
    public static let usage: Int32 = 64
    public static let badData: Int32 = 65
    public static let noInput: Int32 = 66
    /// An output file cannot be written (sysexits' EX_CANTCREAT; not in DESIGN.md's first table).
    public static let cannotCreate: Int32 = 73
    public static let unavailable: Int32 = 69
    public static let internalError: Int32 = 70
    public static let conflict: Int32 = 75
    public static let notAuthorized: Int32 = 77
    public static let interrupted: Int32 = 130

    /// The one mapping from an error to an exit code.
    public static func code(for error: any Error) -> Int32 {
        switch error {
        case is UsageError: return usage
        case let e as CommandError: return e.exitCode
        case is UnknownOutcomeError: return unavailable
        case is ServiceInstanceError: return badData
        case let e as OutputError: return e.exitCode
        case let e as ZooKeeperError:
            switch e.code {
            case .noNode: return notFound
            case .nodeExists, .badVersion, .notEmpty: return conflict
            case .quotaExceeded: return conflict
            case .notAuthorized, .authFailed, .sessionClosedRequiresSASLAuth, .invalidACL: return notAuthorized
            case .connectionLoss, .operationTimeout, .unavailable, .sessionExpired, .sessionMoved,
                 .closing, .notReadOnly, .throttled, .invalidState, .unimplemented:
                return unavailable
            case .requestTooLarge, .invalidPath, .badArguments, .noChildrenForEphemerals: return badData
            default: return internalError
            }
        default: return internalError
        }
    }

    /// The one line a user sees for an error (after `zkctl: `), naming the path when there is one.
    public static func message(for error: any Error) -> String {
        if let e = error as? UnknownOutcomeError { return e.description }
        if let e = error as? ZooKeeperError, e.unknownOutcome != nil { return UnknownOutcomeError(e).description }
        if let e = error as? ZooKeeperError, let path = e.path {
            // A lost connection or a timeout is the servers' doing: lead with them, not the path.
            if e.code == .connectionLoss || e.code == .operationTimeout { return "\(reason(for: e)) (request on \(path))" }
            return "\(path): \(reason(for: e))"
        }
        return reason(for: error)
    }

    /// What went wrong, without the path: for a sentence that names the path itself.
    public static func reason(for error: any Error) -> String {
        switch error {
        case let e as ZooKeeperError:
            switch e.code {
            case .noNode: return e.missingChroot != nil ? e.message : "no such znode"
            case .nodeExists: return "already exists"
            case .badVersion: return "version mismatch (changed by someone else)"
            case .notAuthorized: return "not authorized"
            case .notEmpty: return "has children"
            case .quotaExceeded: return "refused by the server: over the hard quota of this node or one above it (see 'zkctl quota list')"
            default: return e.message
            }
        case let e as CommandError: return e.message
        case let e as ServiceInstanceError: return e.message
        case let e as OutputError: return e.description
        case let e as UsageError: return e.description
        default: return "\(error)"
        }
    }
}

/// A command's own failure with its exit code and one-line message.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    public var exitCode: Int32
    public var message: String
    public init(_ exitCode: Int32, _ message: String) {
        self.exitCode = exitCode
        self.message = message
    }
    public var description: String { message }

    public static func notFound(_ m: String) -> CommandError { CommandError(ExitCode.notFound, m) }
    public static func badData(_ m: String) -> CommandError { CommandError(ExitCode.badData, m) }
    public static func noInput(_ m: String) -> CommandError { CommandError(ExitCode.noInput, m) }
    public static func conflict(_ m: String) -> CommandError { CommandError(ExitCode.conflict, m) }
    public static func unavailable(_ m: String) -> CommandError { CommandError(ExitCode.unavailable, m) }
}

/// What went wrong writing to stdout or stderr: the first failure of each, as an errno.
final class WriteFailures: Sendable {
    private let state = Mutex<(stdout: Int32?, stderr: Int32?)>((nil, nil))

    var stdout: Int32? { state.withLock { $0.stdout } }
    var stderr: Int32? { state.withLock { $0.stderr } }

    func recordStdout(_ code: Int32) { state.withLock { if $0.stdout == nil { $0.stdout = code } } }
    func recordStderr(_ code: Int32) { state.withLock { if $0.stderr == nil { $0.stderr = code } } }

    /// Writes all of `bytes` to `fd`; the errno of a failure, or nil. A write of 0 bytes is a
    /// failure too (it would loop for ever).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBufferPointer { p -> Int32? in
            var offset = 0
            while offset < p.count {
                let n = Glibc.write(fd, p.baseAddress! + offset, p.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return n < 0 ? errno : EIO }
                offset += n
            }
            return nil
        }
    }
}

/// The one failure the runner reports when stdout (or stderr) could not be written: exit 73.
/// A broken pipe (the reader went away, as in `zkctl tree / | head -1`) is not reported: the
/// runner then exits quietly with 141, as if SIGPIPE had ended it.
public struct OutputError: Error, Sendable, CustomStringConvertible {
    public var errno: Int32
    public var isBrokenPipe: Bool { errno == EPIPE }
    public var description: String { "cannot write to standard output: " + String(cString: strerror(errno)) }
    /// The exit code: 73, or 141 (128 + SIGPIPE) for a broken pipe.
    public var exitCode: Int32 { isBrokenPipe ? 128 + SIGPIPE : ExitCode.cannotCreate }
}

/// stdout for data, stderr for diagnostics. stdout is buffered and flushed at exit; every
/// diagnostic is one line starting `zkctl: `. Every write is checked: the first failure of each
/// stream is kept (`stdoutFailure`), data written after stdout failed is dropped, and bulk
/// commands call `check()` to stop early instead of reading the rest of a tree for nothing.
public final class Output: Sendable {
    public let format: OutputFormat
    public let color: Bool
    public let quiet: Bool
    private let buffer = Mutex<[UInt8]>([])
    private let sink: @Sendable ([UInt8]) -> Void
    private let errorSink: @Sendable (String) -> Void
    let failures = WriteFailures()
    /// The progress line's place on stderr: the default sinks clear it before they write.
    public let statusLine = StatusLine()

    public init(format: OutputFormat, color: Bool = false, quiet: Bool = false,
                sink: (@Sendable ([UInt8]) -> Void)? = nil, errorSink: (@Sendable (String) -> Void)? = nil) {
        self.format = format
        self.color = color
        self.quiet = quiet
        let failures = self.failures
        let status = self.statusLine
        self.sink = sink ?? { bytes in
            // Only data for the same terminal clears the progress line first (a file or a pipe
            // does not make it flicker).
            if Common.stdoutIsTerminal {
                status.around { if let code = WriteFailures.writeAll(1, bytes) { failures.recordStdout(code) } }
            } else if let code = WriteFailures.writeAll(1, bytes) { failures.recordStdout(code) }
        }
        self.errorSink = errorSink ?? { line in
            var bytes = Array(line.utf8)
            bytes.append(0x0a)
            status.around { if let code = WriteFailures.writeAll(2, bytes) { failures.recordStderr(code) } }
        }
    }

    /// Renders a command's result in the active format: its JSON value (one compact line) for
    /// `-o json` and `-o ndjson`, its text otherwise. A stream prints one result per event.
    public func print(_ result: some Printable) {
        if format == .prometheus, let exposition = result.prometheus { write(exposition); return }
        if format == .text || result.textInEveryFormat { result.text(into: self) } else { json(result.json) }
    }

    /// Prints a stream of items, such as the nodes of a walk: with `-o ndjson` one JSON line per
    /// item as `produce` hands it over (stopping once stdout has failed); in the other formats the
    /// items are collected and `collected` makes the one result printed. Returns how many items came.
    @discardableResult
    public func stream<Item>(_ produce: ((Item) throws -> Void) async throws -> Void,
                             ndjson line: @escaping (Item) -> JSONValue,
                             collected: ([Item]) throws -> some Printable) async throws -> Int {
        var count = 0
        if format == .ndjson {
            try await produce { item in
                try check()
                json(line(item))
                count += 1
            }
            return count
        }
        var items: [Item] = []
        try await produce { items.append($0) }
        count = items.count
        print(try collected(items))
        return count
    }

    /// Writes data to stdout (buffered). Once stdout has failed, data is dropped.
    public func write(_ text: String) {
        write(bytes: text.utf8)
    }

    /// Writes bytes to stdout exactly as they are (buffered). Once stdout has failed, data is dropped.
    public func write(bytes: some Collection<UInt8>) {
        if failures.stdout != nil { return }
        let flushNow = buffer.withLock { b -> [UInt8]? in
            b.append(contentsOf: bytes)
            guard b.count >= 1 << 16 else { return nil }
            defer { b.removeAll(keepingCapacity: true) }
            return b
        }
        if let flushNow { sink(flushNow) }
    }

    public func line(_ text: String) { write(text + "\n") }

    public func flush() {
        let pending = buffer.withLock { b -> [UInt8] in
            defer { b.removeAll() }
            return b
        }
        if !pending.isEmpty && failures.stdout == nil { sink(pending) }
    }

    /// The first failure writing stdout, if any.
    public var stdoutFailure: OutputError? { failures.stdout.map { OutputError(errno: $0) } }

    /// Whether a diagnostic could not be written to stderr.
    public var stderrFailed: Bool { failures.stderr != nil }

    /// Throws once stdout has failed: bulk loops call it to stop early.
    public func check() throws {
        if let e = stdoutFailure { throw e }
    }

    /// Flushes stdout and throws if anything written to it was lost: a command calls it before
    /// saying on stderr that its output is complete.
    public func finish() throws {
        flush()
        try check()
    }

    /// One JSON document: compact for programs.
    public func json(_ value: JSONValue) {
        line(value.compact())
    }

    /// A diagnostic for people; `-q` silences it.
    public func note(_ text: String) {
        if !quiet { errorSink("zkctl: " + Self.oneLine(text)) }
    }

    /// A warning that `-q` does not silence.
    public func warn(_ text: String) {
        errorSink("zkctl: warning: " + Self.oneLine(text))
    }

    /// An error line.
    public func error(_ text: String) {
        errorSink("zkctl: " + Self.oneLine(text))
    }

    /// A diagnostic stays one line whatever it quotes: control characters in what the user typed
    /// (or a server sent) are shown escaped.
    static func oneLine(_ text: String) -> String {
        escapingControls(text, keepingLines: false)
    }

    /// `text` with its control characters (C0, DEL, C1, U+2028/9) written as `\n`, `\r`, `\t`,
    /// `\xNN` or `\uNNNN`, so that it cannot move the cursor, clear a terminal or end a line.
    /// With `keepingLines`, newlines and tabs stay as they are (for multi-line text on a terminal).
    static func escapingControls(_ text: String, keepingLines: Bool) -> String {
        func isControl(_ u: Unicode.Scalar) -> Bool {
            if keepingLines && (u == "\n" || u == "\t") { return false }
            return u.value < 0x20 || (u.value >= 0x7f && u.value < 0xa0) || u.value == 0x2028 || u.value == 0x2029
        }
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "\n" where !keepingLines: out += "\\n"
            case "\r": out += "\\r"
            case "\t" where !keepingLines: out += "\\t"
            default:
                if isControl(u) {
                    out += u.value > 0xff ? "\\u" + paddedHex(u.value, width: 4) : "\\x" + paddedHex(u.value, width: 2)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    /// An aligned table; the last column is not padded.
    public func table(_ header: [String], _ rows: [[String]]) {
        let all = [header] + rows
        let columns = all.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], displayWidth(cell)) } }
        for (index, row) in all.enumerated() {
            // Empty cells at the end of a row add no padding: no line ends in spaces.
            let last = row.lastIndex { !$0.isEmpty } ?? 0
            var text = ""
            for (i, cell) in row.enumerated() where i <= last {
                if i == last { text += cell } else { text += cell + String(repeating: " ", count: widths[i] - displayWidth(cell) + 2) }
            }
            line(index == 0 ? styled(text, .bold) : text)
        }
    }

    public enum Style: String { case bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34" }

    /// `text` in a style, only when colour is on (a terminal that is not TERM=dumb, and no NO_COLOR).
    public func styled(_ text: String, _ style: Style) -> String {
        color ? "\u{1b}[\(style.rawValue)m\(text)\u{1b}[0m" : text
    }
}

/// A command's result as the printers see it: the one JSON value `-o json`/`-o ndjson` print,
/// and what the text printer writes. A handler builds its result and hands it to
/// `Output.print`; it never asks which format is active.
public protocol Printable {
    var json: JSONValue { get }
    func text(into out: Output)
    /// True for a result with no JSON form, printed as text in every format.
    var textInEveryFormat: Bool { get }
    /// Its Prometheus text exposition, for a result that has one (`-o prometheus`); the others
    /// print their JSON in that format.
    var prometheus: String? { get }
}

extension Printable {
    public var textInEveryFormat: Bool { false }
    public var prometheus: String? { nil }
}

/// A result built in place: its JSON value and its text, each made only when that format prints.
public struct Printed: Printable {
    private let makeJSON: () -> JSONValue
    private let writeText: (Output) -> Void

    public init(json: @autoclosure @escaping () -> JSONValue, text: @escaping (Output) -> Void) {
        makeJSON = json
        writeText = text
    }

    /// A result whose text is these lines.
    public init(json: @autoclosure @escaping () -> JSONValue, lines: @autoclosure @escaping () -> [String]) {
        self.init(json: json(), text: { out in lines().forEach(out.line) })
    }

    /// A result whose text form is nothing (set, delete...): only `-o json` shows it.
    public static func silentInText(json: @autoclosure @escaping () -> JSONValue) -> Printed {
        Printed(json: json(), text: { _ in })
    }

    /// A result that is these lines of text whatever the format (`config get --raw` of a string).
    public static func plain(_ lines: [String]) -> Printed {
        var result = Printed(json: .null, lines: lines)
        result.textInEveryFormat = true
        return result
    }

    public private(set) var textInEveryFormat = false
    public var json: JSONValue { makeJSON() }
    public func text(into out: Output) { writeText(out) }
}

/// Columns a string takes in a terminal, close enough for tables (wide East Asian characters
/// take two). Escape sequences (the colours `styled` adds: ESC '[' parameters, a final letter)
/// take none, so a coloured cell pads like a plain one.
func displayWidth(_ s: String) -> Int {
    var width = 0
    var inEscape = false
    var sawBracket = false
    for u in s.unicodeScalars {
        let v = u.value
        if inEscape {
            // ESC '[' then parameter bytes (0x30-0x3f), intermediates (0x20-0x2f), one final byte.
            if !sawBracket {
                sawBracket = true
                if u != "[" { inEscape = false }   // a two-byte escape: ESC and one character
                continue
            }
            if (0x40...0x7e).contains(v) { inEscape = false }
            continue
        }
        if v == 0x1b { inEscape = true; sawBracket = false; continue }
        if v < 0x20 || (0x300...0x36f).contains(v) { continue }
        if (0x1100...0x115f).contains(v) || (0x2e80...0xa4cf).contains(v) || (0xac00...0xd7a3).contains(v)
            || (0xf900...0xfaff).contains(v) || (0xff00...0xff60).contains(v) || (0x1f300...0x1faff).contains(v) {
            width += 2
        } else {
            width += 1
        }
    }
    return width
}

/// A znode's bytes as JSON: UTF-8 text as a string, anything else as `{"base64": "..."}`.
public func jsonData(_ data: Data) -> JSONValue {
    if let text = String(data: data, encoding: .utf8) { return .string(text) }
    return .object(JSONObject([("base64", .string(data.base64EncodedString()))]))
}

/// A stat as JSON: the one shape every command uses (under "stat" wherever a node carries one),
/// with the field names of ZooKeeper's Java `Stat`. Times are milliseconds since the epoch; the
/// owner session is a hex string, since session ids do not fit the 53 bits a JSON number keeps.
public func jsonStat(_ s: Stat) -> JSONValue {
    .object(JSONObject([
        ("czxid", .int(Int(s.czxid))), ("mzxid", .int(Int(s.mzxid))), ("pzxid", .int(Int(s.pzxid))),
        ("ctime", .int(Int(s.ctime))), ("mtime", .int(Int(s.mtime))),
        ("version", .int(Int(s.version))), ("cversion", .int(Int(s.cversion))), ("aversion", .int(Int(s.aversion))),
        ("ephemeralOwner", .string(hexText(s.ephemeralOwner))),
        ("dataLength", .int(Int(s.dataLength))), ("numChildren", .int(Int(s.numChildren))),
    ]))
}
