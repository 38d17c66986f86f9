import FoundationEssentials
import Synchronization
import ZooKeeper

// MARK: - The lock recipe

/// The lock was not acquired before the deadline.
public struct LockWaitTimeout: Error, Sendable {
    public init() {}
}

/// An exclusive lock with Apache Curator's InterProcessMutex layout, which also honours kazoo's
/// Lock contenders.
///
/// Contenders are ephemeral sequential children of `directory` named `_c_<uuid>-lock-<seq>`;
/// the uuid ("protection" in Curator's words) lets a create whose answer was lost to a
/// connection loss find its node again. Children named `...__lock__<seq>` (kazoo) are
/// contenders too. All contenders are ordered by their sequence number; the first holds the
/// lock and every other watches only the one just ahead of it, so a release wakes one waiter.
public struct CuratorMutex: Sendable {
    /// The lock's znode: its contenders are its children.
    public let directory: String
    /// The ACL of the contender node (and of the directory when it is created).
    public let acl: [ACL]
    /// What our contender node holds.
    public let data: Data
    /// What comes before the sequence number in a contender's name: ours (the first) and the
    /// others honoured.
    public let markers: [String]
    /// nil for an exclusive contender (it waits until it is first). For a reader of a
    /// read/write lock, the markers of writers: only a writer ahead makes it wait.
    public let writerMarkers: [String]?

    /// - Parameters:
    ///   - directory: the lock's absolute znode path (created, as a container, when missing).
    ///   - acl: the ACL for the nodes created.
    ///   - data: what the contender node holds (for people reading the tree: who holds it).
    ///   - markers: what precedes the sequence number in contender names, ours first: the
    ///     mutex's `-lock-` and kazoo's `__lock__` by default; Curator's LeaderLatch uses the
    ///     same recipe with `-latch-`.
    public init(directory: String, acl: [ACL], data: Data, markers: [String] = CuratorMutex.lockMarkers,
                writerMarkers: [String]? = nil) {
        self.directory = directory
        self.acl = acl
        self.data = data
        self.markers = markers
        self.writerMarkers = writerMarkers
    }

    /// Curator's InterProcessReadWriteLock (`_c_<uuid>-__READ__<seq>`, `_c_<uuid>-__WRIT__<seq>`)
    /// and kazoo's ReadLock and WriteLock (`<hex>__rlock__<seq>`, `<hex>__lock__<seq>`) under one
    /// node, all ordered by sequence number; a mutex contender (`-lock-`) there counts as a
    /// writer. A writer waits until it is first; a reader until no writer is ahead of it.
    public static func readWrite(directory: String, acl: [ACL], data: Data, write: Bool) -> CuratorMutex {
        let writers = ["__WRIT__", "__lock__", "-lock-"]
        let readers = ["__READ__", "__rlock__"]
        return write
            ? CuratorMutex(directory: directory, acl: acl, data: data, markers: ["-__WRIT__"] + writers + readers)
            : CuratorMutex(directory: directory, acl: acl, data: data, markers: ["-__READ__"] + readers + writers, writerMarkers: writers)
    }

    /// Whether the contender `name` is a writer of a read/write lock (or any exclusive one).
    public static func isWriter(_ name: String, writerMarkers: [String] = ["__WRIT__", "__lock__", "-lock-"]) -> Bool {
        sequence(ofContender: name, markers: writerMarkers) != nil
    }

    /// The contender that makes the one at `index` of `contenders` wait, or nil when it holds.
    func blocker(_ contenders: [String], at index: Int) -> String? {
        guard let writerMarkers else { return index == 0 ? nil : contenders[index - 1] }
        return contenders[..<index].last { Self.sequence(ofContender: $0, markers: writerMarkers) != nil }
    }

    static let curatorMarker = "-lock-"
    static let kazooMarker = "__lock__"
    public static let lockMarkers = [curatorMarker, kazooMarker]
    /// Curator's LeaderLatch participants: `_c_<uuid>-latch-<seq>`.
    public static let latchMarkers = ["-latch-"]

    /// The sequence number of a contender node's name, nil for a child that is no contender.
    /// Mirrors kazoo's `(?:__lock__|-lock-)(-?\d{10})$`.
    public static func sequence(ofContender name: String) -> Int? {
        sequence(ofContender: name, markers: lockMarkers)
    }

    /// The same for contenders named with any of `markers`.
    public static func sequence(ofContender name: String, markers: [String]) -> Int? {
        let bytes = Array(name.utf8)
        guard bytes.count > 10 else { return nil }
        let digits = bytes.suffix(10)
        guard digits.allSatisfy({ (0x30...0x39).contains($0) }), let value = Int(String(decoding: digits, as: UTF8.self)) else {
            return nil
        }
        let head = String(decoding: bytes.dropLast(10), as: UTF8.self)
        if markers.contains(where: { head.hasSuffix($0) }) { return value }
        if head.hasSuffix("-") {
            let shorter = head.dropLast()
            if markers.contains(where: { shorter.hasSuffix($0) }) { return -value }
        }
        return nil
    }

    /// The contenders among `children`, first (the holder) first.
    public static func ordered(_ children: [String]) -> [String] {
        ordered(children, markers: lockMarkers)
    }

    /// The same for contenders named with any of `markers`.
    public static func ordered(_ children: [String], markers: [String]) -> [String] {
        var contenders: [(sequence: Int, name: String)] = []
        for name in children {
            if let sequence = sequence(ofContender: name, markers: markers) { contenders.append((sequence, name)) }
        }
        contenders.sort { a, b in a.sequence == b.sequence ? a.name < b.name : a.sequence < b.sequence }
        return contenders.map { $0.name }
    }

    /// Waits until this process holds the lock and returns its node's path. Without a deadline
    /// it waits for ever; past the deadline it removes its node and throws `LockWaitTimeout`.
    /// `waiting` hears of each wait (the contender watched and how many are ahead).
    public func acquire(on zk: ZooKeeperClient, deadline: ContinuousClock.Instant?,
                 waiting: @Sendable (String, Int) -> Void) async throws -> String {
        let prefix = "_c_\(UUID().uuidString.lowercased())\(markers[0])"
        var node = try await createContender(zk, prefix: prefix)
        do {
            while true {
                let children: [String]
                do {
                    children = try await zk.children(directory).children
                } catch ZooKeeperError.Code.noNode {
                    children = []
                }
                let contenders = Self.ordered(children, markers: markers)
                guard let index = contenders.firstIndex(of: lastSegment(node)) else {
                    // Our node is gone (someone deleted it): take a place again.
                    node = try await createContender(zk, prefix: prefix)
                    continue
                }
                guard let blocking = blocker(contenders, at: index) else { return node }
                if let deadline, ContinuousClock.now >= deadline { throw LockWaitTimeout() }
                let ahead = PathRules.join(directory, blocking)
                waiting(ahead, index)
                let wake = OneShot<WaitEnd>()
                do {
                    _ = try await zk.get(ahead) { event in
                        wake.resume(event.kind == .sessionEnded ? .sessionEnded : .changed)
                    }
                } catch ZooKeeperError.Code.noNode {
                    continue
                }
                let end = if let deadline { await wake.wait(until: deadline) { .timedOut } } else { await wake.wait() }
                switch end {
                case .changed:
                    continue
                case .timedOut:
                    throw LockWaitTimeout()
                case .sessionEnded:
                    throw ZooKeeperError(zk.state == .expired ? .sessionExpired : .closing, path: ahead,
                                         message: "the session ended while waiting for the lock")
                }
            }
        } catch {
            // Give up our place (closing the session would also remove it).
            if zk.state.isConnected { try? await zk.delete(node) }
            throw error
        }
    }

    /// Releases the lock held as `node` (what `acquire` returned): deletes the node, which wakes
    /// the next contender. A node already gone is no error. Should this fail, closing the session
    /// also releases the lock (the node is ephemeral).
    public func release(_ node: String, on zk: ZooKeeperClient) async throws {
        do {
            try await zk.delete(node)
        } catch ZooKeeperError.Code.noNode {
        }
    }

    private enum WaitEnd: Sendable { case changed, timedOut, sessionEnded }

    /// Creates our ephemeral sequential node, creating the lock's directory when missing.
    private func createContender(_ zk: ZooKeeperClient, prefix: String) async throws -> String {
        try await createProtectedSequential(zk, under: directory, prefix: prefix, data: data, acl: acl) {
            try await createDirectory(zk)
        }
    }

    /// The lock's parents as persistent nodes, the lock itself as a container (the server
    /// removes it once it has no contenders), as Curator does.
    private func createDirectory(_ zk: ZooKeeperClient) async throws {
        if let parent = PathRules.parent(of: directory), parent != "/" {
            try await zk.createParentChain(parent, acl: acl)
        }
        do {
            _ = try await zk.create(directory, mode: .container, acl: acl)
        } catch ZooKeeperError.Code.nodeExists {
        }
    }

    private func lastSegment(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// Watches a held lock for anything that means it may no longer be ours: the session expired,
/// the lock node was deleted, or the servers have not answered for so long that the session
/// could expire before the holder's work is stopped (the lease rule, `LeaseTerms`). Reports the
/// first such reason once, unless stopped first.
public final class LockLossMonitor: Sendable {
    private struct State {
        var reason: String?
        var stopped = false
        var task: Task<Void, Never>?
    }
    private let state = Mutex(State())
    private let client: ZooKeeperClient
    private let node: String
    private let lease: SessionLease
    private let onLost: @Sendable (String) -> Void

    /// - Parameters:
    ///   - client: the session that holds the lock.
    ///   - node: the held contender node (what `CuratorMutex.acquire` returned).
    ///   - terms: the lease rule's numbers for this session.
    ///   - heardAt: the send time of a request the servers answered after the lock was acquired.
    ///   - onLost: told the first reason, once (on some thread; it must not block).
    public init(client: ZooKeeperClient, node: String, terms: LeaseTerms, heardAt: ContinuousClock.Instant,
                onLost: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.node = node
        self.onLost = onLost
        let reasons = Mutex<(@Sendable (String) -> Void)?>(nil)
        self.lease = SessionLease(client: client, path: node, terms: terms, heardAt: heardAt) { reason in
            reasons.withLock { $0 }?(reason)
        }
        reasons.withLock { $0 = { [weak self] reason in self?.lost(reason) } }
    }

    /// Why the lock was lost, if it was.
    public var reason: String? { state.withLock { $0.reason } }

    /// Starts watching the session, the servers' answers and the node; returns once the node's
    /// watch is armed.
    public func start() async {
        let updates = client.stateUpdates()
        let task = Task { [self] in
            for await next in updates { observe(next) }
        }
        state.withLock { $0.task = task }
        lease.start()
        observe(client.state)
        await watchNode()
    }

    /// Stops watching; no reason is reported after this.
    public func stop() {
        let task = state.withLock { s -> Task<Void, Never>? in
            s.stopped = true
            defer { s.task = nil }
            return s.task
        }
        task?.cancel()
        lease.stop()
    }

    private func observe(_ session: SessionState) {
        switch session {
        case .expired:
            lost("the session expired")
        case .authFailed:
            lost("the server refused the session's credentials")
        case .suspended, .connected, .connectedReadOnly, .connecting, .closed:
            // A lost connection is the lease's business: it may come back in time.
            break
        }
    }

    /// One-shot watches on the node, armed again after any change other than deletion.
    private func watchNode() async {
        do {
            let stat = try await client.exists(node) { [self] event in
                switch event.kind {
                case .deleted: lost("its node \(node) was deleted")
                case .sessionEnded: break
                default: Task { await self.watchNode() }
                }
            }
            if stat == nil { lost("its node \(node) is gone") }
        } catch {
            // A session problem; the state stream reports it.
        }
    }

    private func lost(_ reason: String) {
        let first = state.withLock { s -> Bool in
            guard !s.stopped, s.reason == nil else { return false }
            s.reason = reason
            return true
        }
        if first { onLost(reason) }
    }
}
