import CZooKeeper
import Synchronization

/// The C client's log, which is process-global. By default it is silent: nothing reaches stderr.
/// A program that wants it (zkctl's `-v`) installs a handler.
public enum ZooKeeperLog {
    public enum Level: Int32, Sendable {
        case error = 1, warning = 2, info = 3
        // DEBUG is left out on purpose: the 3.8.0 C client has a use-after-free when closing at DEBUG.
    }

    private static let handler = Mutex<(@Sendable (String) -> Void)?>(nil)
    private static let configured = Mutex(false)

    /// Sends the C client's log lines at `level` and above to `handler`; nil silences it again.
    public static func setHandler(level: Level = .info, _ newHandler: (@Sendable (String) -> Void)?) {
        handler.withLock { $0 = newHandler }
        zoo_set_debug_level(ZooLogLevel(rawValue: UInt32(newHandler == nil ? Level.error.rawValue : level.rawValue)))
        configureOnce()
    }

    /// Called before the first handle is made: lines logged without a handle would otherwise go to
    /// the C client's default stream, stderr.
    static func configureOnce() {
        let first = configured.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        if handler.withLock({ $0 == nil }) {
            zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR)
        }
        if let sink = fopen("/dev/null", "w") { zoo_set_log_stream(sink) }
    }

    static func emit(_ line: String) {
        handler.withLock { $0 }?(line)
    }
}

/// Every handle's log callback: the line goes to the installed handler, or nowhere.
let logCallback: log_callback_fn = { message in
    guard let message else { return }
    ZooKeeperLog.emit(String(cString: message))
}
