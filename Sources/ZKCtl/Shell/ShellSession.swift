import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// The shell's one session and what lives on it: the ephemeral nodes its commands made and the
/// watches its running command holds. When the server expires the session, the shell says so at
/// once on one line, naming what was lost, and opens a new session; a session a command closed
/// is replaced (with the same line) when it is next needed.
final class ShellSession: Sendable {
    private struct State {
        var client: ZooKeeperClient
        var sessionID: Int64
        var monitor: Task<Void, Never>?
        /// The new session being opened, which every caller waits for.
        var renewal: Task<ZooKeeperClient, any Error>?
        /// Ephemeral nodes made on the current session and not seen deleted since, in order.
        var ephemerals: [String] = []
        /// What the running commands follow, by registration.
        var watches: [Int: String] = [:]
        var nextWatch = 0
    }

    private let state: Mutex<State>
    /// Opens a new session (closed by the shell's runner at the end).
    private let open: @Sendable () async throws -> ZooKeeperClient
    private let output: Output

    init(_ client: ZooKeeperClient, output: Output, open: @escaping @Sendable () async throws -> ZooKeeperClient) {
        self.output = output
        self.open = open
        state = Mutex(State(client: client, sessionID: client.sessionID))
        monitor(client)
    }

    deinit {
        state.withLock { $0.monitor?.cancel() }
    }

    /// The session as it is now (perhaps ended).
    var client: ZooKeeperClient { state.withLock { $0.client } }

    /// Replaces `client` as soon as the server expires it.
    private func monitor(_ client: ZooKeeperClient) {
        let updates = client.stateUpdates()
        let task = Task { [weak self] in
            for await s in updates where s == .expired {
                _ = try? await self?.renewal(of: client)
                return
            }
        }
        state.withLock { $0.monitor = task }
    }

    /// The session for the next request: the current one, or, when it has ended, a new one
    /// (after the line that says what was lost).
    func current() async throws -> ZooKeeperClient {
        let client = self.client
        guard client.state.isTerminal else { return client }
        return try await renewal(of: client)
    }

    /// The one renewal of `old` (started now, or already under way), awaited.
    private func renewal(of old: ZooKeeperClient) async throws -> ZooKeeperClient {
        let task = state.withLock { s -> Task<ZooKeeperClient, any Error>? in
            guard s.client === old else { return nil }
            if let running = s.renewal { return running }
            let task = Task { try await self.renew(old) }
            s.renewal = task
            return task
        }
        guard let task else { return self.client }
        do {
            let client = try await task.value
            return client
        } catch {
            state.withLock { s in if s.client === old { s.renewal = nil } }
            throw error
        }
    }

    /// A new session in place of `old`, which has ended.
    private func renew(_ old: ZooKeeperClient) async throws -> ZooKeeperClient {
        let (id, how, ephemerals, watches) = state.withLock { s in
            (s.sessionID, old.ending ?? old.state, s.ephemerals, s.watches.sorted { $0.key < $1.key }.map(\.value))
        }
        var parts = ["session " + hexText(id) + (how == .expired ? " expired" : how == .authFailed ? " ended: the server refused its credentials" : " ended")]
        if !ephemerals.isEmpty { parts.append("lost ephemeral " + ephemerals.joined(separator: ", ")) }
        if !watches.isEmpty { parts.append("lost watches on " + watches.joined(separator: "; ") + " (the running command sets them again)") }
        if ephemerals.isEmpty && watches.isEmpty { parts.append("no ephemeral nodes or watches were lost") }
        let client: ZooKeeperClient
        do {
            client = try await open()
        } catch {
            output.error((parts + ["cannot open a new session: " + ExitCode.message(for: error)]).joined(separator: "; "))
            throw error
        }
        state.withLock { s in
            s.monitor?.cancel()
            s.client = client
            s.sessionID = client.sessionID
            s.ephemerals = []
            s.renewal = nil
        }
        monitor(client)
        output.error((parts + ["the shell opened a new session " + hexText(client.sessionID)]).joined(separator: "; "))
        return client
    }

    /// Between commands: a session that has ended is replaced now, so that the user hears of it
    /// at once. Nil when all is well; the exit code when no new session could be opened.
    func renewIfEnded() async -> Int32? {
        let client = self.client
        guard client.state.isTerminal else { return nil }
        do {
            _ = try await renewal(of: client)
            return nil
        } catch {
            return ExitCode.code(for: error)
        }
    }

    // MARK: What lives on the session

    /// `path`, an ephemeral node just made on `client`, is kept in the list until it is seen
    /// deleted (by anyone: an exists watch follows it) or the session ends.
    func madeEphemeral(_ path: String, on client: ZooKeeperClient) {
        let added = state.withLock { s -> Bool in
            guard s.client === client, !s.ephemerals.contains(path) else { return false }
            s.ephemerals.append(path)
            return true
        }
        if added { follow(path, on: client) }
    }

    private func follow(_ path: String, on client: ZooKeeperClient) {
        // Held by the watch until it fires or the session ends (which every watch is told).
        Task {
            let present: Bool
            do {
                present = try await client.exists(path, watch: { event in
                    switch event.kind {
                    case .deleted: self.deleted(path, on: client)
                    case .sessionEnded: break
                    case .created, .dataChanged, .childrenChanged: self.follow(path, on: client)
                    }
                }) != nil
            } catch {
                // A session that ended keeps the node in the list: it is reported lost.
                return
            }
            if !present { self.forget(path, on: client) }
        }
    }

    /// The node is gone: deleted while the session lived, or by the server as it expired the
    /// session (whose notices can still arrive before the client learns of the expiry). A
    /// request on the same session tells them apart: after an expiry none is answered.
    private func deleted(_ path: String, on client: ZooKeeperClient) {
        Task {
            do {
                _ = try await client.exists(path)
                forget(path, on: client)
            } catch {
                // Not answered: the session is ending, and the node is reported lost with it.
            }
        }
    }

    private func forget(_ path: String, on client: ZooKeeperClient) {
        state.withLock { s in
            if s.client === client { s.ephemerals.removeAll { $0 == path } }
        }
    }

    /// While `body` runs, the nodes of `spec` are named among what a lost session loses.
    func following<T>(_ spec: WatchSpec, _ body: () async throws -> T) async rethrows -> T {
        let key = state.withLock { s -> Int in
            s.nextWatch += 1
            s.watches[s.nextWatch] = Self.describe(spec)
            return s.nextWatch
        }
        defer { state.withLock { _ = $0.watches.removeValue(forKey: key) } }
        return try await body()
    }

    /// `/a, /b, the children of /c`, or `the subtree of /c` when recursive.
    static func describe(_ spec: WatchSpec) -> String {
        let parents = spec.parents.map { (spec.recursive ? "the subtree of " : "the children of ") + $0 }
        return (spec.paths + parents).joined(separator: ", ")
    }
}
