import Synchronization
import ZooKeeper

// MARK: - The lease rule

/// When a holder of something kept on a session (a lock's contender node, an ephemeral
/// registration) must have stopped the work that relies on it.
///
/// The server may expire a session once it has heard nothing from the client for the session
/// timeout T. The client cannot know when the server last heard it, but it knows a lower bound:
/// the moment it *sent* the last request the server answered (the server read that request, so
/// it heard the client then or later). From that moment L the holder must be done by
/// L + T − T/3: a third of T is left as a margin for clocks, scheduling and the server's own
/// view (a follower reports its clients' pings to the leader only every half tick). The work
/// gets SIGTERM `grace` earlier, so that SIGKILL, if it is needed, still lands in time.
public struct LeaseTerms: Sendable, Equatable {
    /// The session timeout the server granted.
    public let sessionTimeout: Duration
    /// How long the work has between SIGTERM and SIGKILL.
    public let grace: Duration

    public init(sessionTimeout: Duration, grace: Duration) {
        self.sessionTimeout = sessionTimeout
        self.grace = grace
    }

    /// The part of the session timeout kept free of the work.
    public var margin: Duration { sessionTimeout / 3 }
    /// How long after the servers were last heard the work must be dead.
    public var stopBy: Duration { sessionTimeout - margin }
    /// How long after the servers were last heard the work gets SIGTERM.
    public var warnAfter: Duration { stopBy - grace }

    /// The longest grace that leaves room: SIGTERM must not come before a third of the session
    /// timeout has passed without an answer, or every short pause of the network would stop the
    /// work.
    public static func longestGrace(sessionTimeout: Duration) -> Duration { sessionTimeout / 3 }

    /// The grace used when none is given: 10 s, or less when the session timeout is short.
    public static func defaultGrace(sessionTimeout: Duration) -> Duration {
        min(.seconds(10), longestGrace(sessionTimeout: sessionTimeout))
    }

    /// How often the holder asks the servers for a sign of life.
    public var heartbeat: Duration {
        min(max(sessionTimeout / 10, .milliseconds(100)), .seconds(2))
    }
}

/// Keeps track of when the servers were last heard on a held session and says, once, when the
/// lease has run out: when `terms.warnAfter` has passed since the send time of the last request
/// they answered. The requests are `sync` calls on `path` every `terms.heartbeat`; a `sync` goes
/// through the leader, so an answer also means the member the client talks to still reaches the
/// quorum (a member cut off from it could go on answering reads for a while).
public final class SessionLease: Sendable {
    private struct State {
        var lastHeard: ContinuousClock.Instant
        var lapsed = false
        var stopped = false
        var tasks: [Task<Void, Never>] = []
    }
    public let terms: LeaseTerms
    private let client: ZooKeeperClient
    private let path: String
    private let state: Mutex<State>
    private let onLapse: @Sendable (String) -> Void

    /// - Parameters:
    ///   - heardAt: a moment the servers are known to have heard the session (the send time of a
    ///     request they answered).
    ///   - onLapse: told once, with the reason, when the lease runs out (on some thread; it must
    ///     not block).
    public init(client: ZooKeeperClient, path: String, terms: LeaseTerms, heardAt: ContinuousClock.Instant,
                onLapse: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.path = path
        self.terms = terms
        self.state = Mutex(State(lastHeard: heardAt))
        self.onLapse = onLapse
    }

    /// The send time of the last request the servers answered.
    public var lastHeard: ContinuousClock.Instant { state.withLock { $0.lastHeard } }
    public var hasLapsed: Bool { state.withLock { $0.lapsed } }

    /// Starts the heartbeats and the watchdog.
    public func start() {
        let beat = Task { [self] in await heartbeats() }
        let watch = Task { [self] in await watchdog() }
        state.withLock { $0.tasks = [beat, watch] }
    }

    /// Stops both; nothing is reported after this.
    public func stop() {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.stopped = true
            defer { s.tasks = [] }
            return s.tasks
        }
        for t in tasks { t.cancel() }
    }

    /// Records an answer to a request sent at `sent` (any request of the holder counts).
    public func heard(sentAt sent: ContinuousClock.Instant) {
        state.withLock { s in if sent > s.lastHeard { s.lastHeard = sent } }
    }

    private func heartbeats() async {
        while !Task.isCancelled {
            let sent = ContinuousClock.now
            if (try? await client.perform(.sync(path))) != nil { heard(sentAt: sent) }
            try? await Task.sleep(until: sent + terms.heartbeat, clock: .continuous)
        }
    }

    private func watchdog() async {
        while !Task.isCancelled {
            let due = lastHeard + terms.warnAfter
            let now = ContinuousClock.now
            if now >= due {
                let silent = now - lastHeard
                lapse("the servers did not answer for \(seconds(silent)) s, too close to the session timeout of "
                      + "\(seconds(terms.sessionTimeout)) s after which they may expire the session")
                return
            }
            try? await Task.sleep(until: min(due, now + terms.heartbeat), clock: .continuous)
        }
    }

    private func lapse(_ reason: String) {
        let first = state.withLock { s -> Bool in
            guard !s.stopped, !s.lapsed else { return false }
            s.lapsed = true
            return true
        }
        if first { onLapse(reason) }
    }

    private func seconds(_ d: Duration) -> String {
        oneDecimal(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}
