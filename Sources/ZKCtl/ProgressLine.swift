@preconcurrency import Dispatch
import Glibc
import Dispatch
import Synchronization

/// What a long command has done so far, as its progress line shows it.
public struct ProgressReading: Sendable {
    /// How many of `what` are done in the current phase.
    public var done: Int
    /// How many there will be, when known (an import knows it).
    public var total: Int?
    /// What is counted: "nodes read", "writes", "nodes deleted".
    public var what: String
    /// When the phase began (the rate is over the phase).
    var since: ContinuousClock.Instant
    /// False for a phase that is not counted ("reading the file"): only its name is shown.
    var counted = true
}

/// A count that a command bumps as it goes and the progress line reads ten times a second.
/// Cheap enough to bump per node whether or not a line is shown.
public final class ProgressCounter: Sendable {
    private let state: Mutex<ProgressReading>

    public init(_ what: String, total: Int? = nil, counted: Bool = true) {
        state = Mutex(ProgressReading(done: 0, total: total, what: what, since: .now, counted: counted))
    }

    public func add(_ count: Int) { state.withLock { $0.done += count } }

    /// A new phase (say, deleting after reading): the count starts again.
    public func start(_ what: String, total: Int?, counted: Bool = true) {
        state.withLock { $0 = ProgressReading(done: 0, total: total, what: what, since: .now, counted: counted) }
    }

    public var reading: ProgressReading { state.withLock { $0 } }
}

/// The one line on stderr that a progress display owns. Diagnostics and data written to the
/// terminal go through `around`, which first clears the line (the next redraw puts it back), so
/// that the progress text never runs into what a command prints.
public final class StatusLine: Sendable {
    private let shown = Mutex(false)

    public init() {}

    /// Draws `text()` in place of the line; nothing when it returns nil.
    func draw(_ text: () -> String?) {
        shown.withLock { shown in
            guard let text = text() else { return }
            _ = WriteFailures.writeAll(2, Array(("\r" + text + "\u{1b}[K").utf8))
            shown = true
        }
    }

    /// Removes the line, if it is shown.
    func clear() { around {} }

    /// Runs `body` (a write to the terminal) with the line cleared first.
    func around(_ body: () -> Void) {
        shown.withLock { shown in
            if shown {
                _ = WriteFailures.writeAll(2, Array("\r\u{1b}[K".utf8))
                shown = false
            }
            body()
        }
    }
}

/// A progress line: once the work has run for `delay`, redrawn in place at most ten times a
/// second from a counter, until `end` clears it. Made by `Invocation.showProgress` only when
/// progress is on (stderr a terminal, or --progress; never -q or --no-progress).
final class ProgressLine: Sendable {
    /// Set once by `end`; a redraw under way checks it while it holds the status line.
    private final class Flag: Sendable {
        let value = Mutex(false)
    }
    private let timer: any DispatchSourceTimer
    private let ended = Flag()
    private let status: StatusLine

    init(label: String, counter: ProgressCounter, status: StatusLine, delay: Duration = .seconds(1),
         interval: Duration = .milliseconds(100)) {
        self.status = status
        let began = ContinuousClock.now
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "zkctl.progress"))
        self.timer = timer
        let ended = self.ended
        timer.schedule(deadline: .now() + .milliseconds(Int(delay / .milliseconds(1))),
                       repeating: .milliseconds(Int(interval / .milliseconds(1))))
        timer.setEventHandler {
            let now = ContinuousClock.now
            let text = ProgressLine.text(label: label, counter.reading, elapsed: now - began, now: now,
                                         width: ProgressLine.terminalWidth())
            status.draw { ended.value.withLock { $0 } ? nil : text }
        }
        timer.resume()
    }

    /// Stops redrawing and clears the line; idempotent.
    func end() {
        let first = ended.value.withLock { e -> Bool in defer { e = true }; return !e }
        guard first else { return }
        timer.cancel()
        status.clear()
    }

    /// `zkctl: import: 12,000 of 50,000 writes (24%), 4,000/s, 0:03, about 0:10 left`, cut to
    /// the terminal's width so that it never wraps (a wrapped line cannot be redrawn in place).
    static func text(label: String, _ r: ProgressReading, elapsed: Duration, now: ContinuousClock.Instant,
                     width: Int) -> String {
        var parts: [String] = []
        if !r.counted {
            parts.append(r.what)
        } else if let total = r.total {
            let percent = total > 0 ? min(100, r.done * 100 / total) : 100
            parts.append("\(grouped(r.done)) of \(grouped(total)) \(r.what) (\(percent)%)")
        } else {
            parts.append("\(grouped(r.done)) \(r.what)")
        }
        let phase = (now - r.since) / .seconds(1)
        let rate = phase >= 0.1 ? Double(r.done) / phase : 0
        if r.counted && rate > 0 { parts.append("\(grouped(Int(rate.rounded())))/s") }
        parts.append(clock(elapsed / .seconds(1)))
        if r.counted, let total = r.total, rate > 0, r.done < total {
            parts.append("about \(clock(Double(total - r.done) / rate)) left")
        }
        let line = "zkctl: \(label): " + parts.joined(separator: ", ")
        let room = max(10, width - 1)
        return line.count > room ? String(line.prefix(room)) : line
    }

    /// 1234567 as 1,234,567.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Seconds as m:ss, or h:mm:ss from an hour.
    static func clock(_ seconds: Double) -> String {
        // To the millisecond first: 3725 s computed from a Duration may come out as 3724.9999.
        let s = Int((seconds * 1000).rounded()) / 1000
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return h > 0 ? "\(h):\(two(m)):\(two(sec))" : "\(m):\(two(sec))"
    }

    /// stderr's width in columns; 80 when it is not a terminal.
    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }
}
