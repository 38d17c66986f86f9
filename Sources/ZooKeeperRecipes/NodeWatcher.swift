import FoundationEssentials
import ZooKeeper

// MARK: - The watch engine
//
// `NodeWatcher` follows znodes and reports, as typed `NodeChange` values, what they hold now and
// every later change, for as long as its caller wants. It knows nothing of config keys or output;
// `zkctl config watch` and `zkctl watch` use it; any Swift program can (it is in the
// ZooKeeperRecipes library).
//
// Usage:
//
//     let spec = WatchSpec(paths: ["/config/a"], parents: ["/config"], recursive: false)
//     let watcher = NodeWatcher(spec: spec, connect: { try await ZooKeeperClient.connect(...) },
//                               onSession: { event in print("\(event)") })
//     try await watcher.run { change in   // (optionally `} onReady: { ... }` after the first look)
//         print(change.kind, change.path, change.data ?? Data(), change.stat?.version ?? -1)
//         return .proceed            // or .stop to end `run`
//     }
//
// What is followed:
// - every path in `spec.paths`: its existence and data (`initial` when it exists at the start,
//   then `created`, `changed`, `removed`);
// - every path in `spec.parents`: its children. Each child is reported like a path of its own
//   (`initial` for those there at the start, `created` when one appears, `changed`, `removed`),
//   with its data unless `spec.childData` is false. With `spec.recursive`, children's children
//   are followed too, down the whole subtree. A parent itself is reported only when it is also
//   in `spec.paths`. A parent that does not exist yet is waited for.
//
// How it works: ZooKeeper watches fire once, so every read that arms a watch is repeated when
// the watch fires. The engine does not trust the watch's event type: it re-reads the node and
// compares what it sees with what it saw before (existence, `czxid`, `mzxid`), so a change is
// reported once even when several watches fire for it, and a node removed and created again in
// between is reported as `removed` then `created`. Reads of many nodes run concurrently (at most
// `maxInFlight` at once).
//
// Connection problems: after a lost connection the C client reconnects on its own and keeps the
// session's watches; when it is back, the engine re-reads every node and reports whatever changed
// while it was away. When the session expires, the engine closes that client, makes a NEW one with
// the `connect` factory (retrying with a growing pause while no server answers), arms every watch
// again and again reports the differences. The first connection's failure is thrown from `run`;
// later ones are only reported through `onSession`.
//
// Clients: the engine closes a client it replaces after an expiry; the one in use when `run`
// returns is left to whoever made it (`Invocation.connect()` clients are closed by the runner).
//
// `run` returns (saying which) when the handler says `.stop` or the current client is closed by
// someone else (for example the runner on Ctrl-C). It throws the handler's errors, a refused authentication,
// and errors of reads that are not connection problems (such as `notAuthorized`).

/// What to follow. Paths are absolute znode paths (already including any root).
public struct WatchSpec: Sendable, Hashable {
    /// Nodes whose existence and data are reported.
    public var paths: [String]
    /// Nodes whose children are followed; each child is reported.
    public var parents: [String]
    /// Follow the children of children too (the whole subtree of each parent).
    public var recursive: Bool
    /// Read (and report) the data of followed children; false reports only their existence.
    public var childData: Bool

    public init(paths: [String] = [], parents: [String] = [], recursive: Bool = false, childData: Bool = true) {
        self.paths = paths
        self.parents = parents
        self.recursive = recursive
        self.childData = childData
    }
}

/// One thing that happened to a followed node.
public struct NodeChange: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// The node exists as the watch starts (or is first seen by a new parent listing at the start).
        case initial
        /// The node appeared.
        case created
        /// The node's data changed (or it was set again with the same data).
        case changed
        /// The node went away.
        case removed
    }

    public var kind: Kind
    public var path: String
    /// The data (nil for `removed`, and for children followed without data).
    public var data: Data?
    /// The stat (nil for `removed`).
    public var stat: Stat?
    /// The followed parent under which the node was found; nil for a node of `WatchSpec.paths`.
    public var parent: String?

    public init(kind: Kind, path: String, data: Data? = nil, stat: Stat? = nil, parent: String? = nil) {
        self.kind = kind
        self.path = path
        self.data = data
        self.stat = stat
        self.parent = parent
    }
}

/// What the engine's session is doing, for people (`zkctl: connection lost; reconnecting`).
public enum WatchSessionEvent: Sendable, CustomStringConvertible {
    /// The connection was lost; the client is reconnecting.
    case disconnected
    /// Connected again with the same session; every node is being re-read.
    case reconnected
    /// The session expired; a new one is being made.
    case expired
    /// A new session is in place; every watch is armed again.
    case newSession
    /// Making a new session failed; the engine tries again after `retryIn`.
    case connectFailed(String, retryIn: Duration)

    public var description: String {
        switch self {
        case .disconnected: return "connection lost; reconnecting"
        case .reconnected: return "reconnected; re-reading"
        case .expired: return "session expired; starting a new one"
        case .newSession: return "new session; watching again"
        case .connectFailed(let why, let pause): return "cannot connect (\(why)); retrying in \(durationText(pause))"
        }
    }
}

/// Why `run` ended.
public enum WatchEnd: Sendable {
    /// The handler said `.stop`.
    case stopped
    /// The client was closed from outside (for example by the runner on Ctrl-C).
    case closed
}

/// What the handler wants after an event.
public enum WatchDecision: Sendable {
    case proceed
    case stop
}

/// The engine. A value type holding only configuration; all state lives inside one `run`.
public struct NodeWatcher: Sendable {
    public typealias Connect = @Sendable () async throws -> ZooKeeperClient

    public let spec: WatchSpec
    public let maxInFlight: Int
    private let connect: Connect
    private let onSession: @Sendable (WatchSessionEvent) -> Void

    /// - Parameters:
    ///   - connect: makes a new connected client; called at the start and after every expiry.
    ///   - maxInFlight: bound on concurrent reads.
    ///   - onSession: told about connection trouble (for diagnostics only).
    public init(spec: WatchSpec, maxInFlight: Int = 64, connect: @escaping Connect,
                onSession: @escaping @Sendable (WatchSessionEvent) -> Void = { _ in }) {
        self.spec = spec
        self.maxInFlight = max(1, maxInFlight)
        self.connect = connect
        self.onSession = onSession
    }

    /// Follows the nodes until `handle` returns `.stop` or the client is closed from outside.
    /// `onReady` runs once, after the initial events were handled and every watch is armed.
    @discardableResult
    public func run(_ handle: @Sendable (NodeChange) async throws -> WatchDecision,
                    onReady: @Sendable () -> Void = {}) async throws -> WatchEnd {
        var engine = WatchEngineState(spec: spec)
        let (messages, sink) = AsyncStream<EngineMessage>.makeStream(bufferingPolicy: .unbounded)
        var generation = 0
        var zk = try await connect()
        var forwarder = Self.forwardStates(of: zk, generation: generation, into: sink)
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                sink.yield(.tick)
            }
        }
        defer {
            ticker.cancel()
            forwarder.cancel()
            sink.finish()
        }

        // The first look: everything found is `initial`.
        if try await refreshDirty(&engine, zk: zk, generation: generation, sink: sink, initial: true, handle: handle) == .stop {
            return .stopped
        }
        onReady()
        var wasDisconnected = false
        for await message in messages {
            switch message {
            case .tick:
                guard zk.state.isConnected, engine.hasDirty else { continue }
            case .fired(let gen, let path, let which):
                guard gen == generation else { continue }
                engine.fired(path, which)
            case .state(let gen, let state):
                guard gen == generation else { continue }
                switch state {
                case .suspended:
                    if !wasDisconnected { onSession(.disconnected) }
                    wasDisconnected = true
                    continue
                case .connected, .connectedReadOnly:
                    if wasDisconnected { onSession(.reconnected) }
                    wasDisconnected = false
                    // The client kept the session and its watches; re-read everything to report
                    // what changed while we could not hear about it.
                    engine.markAllDirty(disarm: false)
                case .connecting:
                    continue
                case .closed:
                    return .closed
                case .authFailed:
                    throw ZooKeeperError(.authFailed, message: "the server refused the credentials")
                case .expired:
                    onSession(.expired)
                    forwarder.cancel()
                    await zk.close()
                    generation += 1
                    zk = try await reconnect()
                    forwarder = Self.forwardStates(of: zk, generation: generation, into: sink)
                    wasDisconnected = false
                    onSession(.newSession)
                    engine.markAllDirty(disarm: true)
                }
            }
            if try await refreshDirty(&engine, zk: zk, generation: generation, sink: sink, initial: false, handle: handle) == .stop {
                return .stopped
            }
        }
        return .closed
    }

    /// A new session, retried while no server answers; a refused authentication is thrown.
    private func reconnect() async throws -> ZooKeeperClient {
        var pause: Duration = .milliseconds(500)
        while true {
            try Task.checkCancellation()
            do {
                return try await connect()
            } catch let error as ZooKeeperError where error.code == .authFailed || error.code == .notAuthorized {
                throw error
            } catch let error as ZooKeeperError {
                onSession(.connectFailed(error.message, retryIn: pause))
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }

    private static func forwardStates(of zk: ZooKeeperClient, generation: Int,
                                      into sink: AsyncStream<EngineMessage>.Continuation) -> Task<Void, Never> {
        let updates = zk.stateUpdates()
        return Task {
            for await state in updates {
                sink.yield(.state(generation, state))
                if state == .closed { break }
            }
        }
    }

    /// Reads every dirty node (newly found children included, until none is left), reports the
    /// differences in path order, and says whether the handler asked to stop.
    private func refreshDirty(_ engine: inout WatchEngineState, zk: ZooKeeperClient, generation: Int,
                              sink: AsyncStream<EngineMessage>.Continuation, initial: Bool,
                              handle: @Sendable (NodeChange) async throws -> WatchDecision) async throws -> WatchDecision {
        var changes: [NodeChange] = []
        // Each round may discover children (one level deeper with `recursive`); stop when calm.
        var rounds = 0
        while engine.hasDirty, rounds < 10_000 {
            rounds += 1
            let plans = engine.takeDirty()
            let reads = await Self.read(plans, zk: zk, generation: generation, sink: sink, maxInFlight: maxInFlight)
            var failedForConnection = false
            for (plan, result) in zip(plans, reads) {
                switch result {
                case .success(let read):
                    changes += engine.apply(read, for: plan, initial: initial)
                case .failure(let error) where error.code.isConnectionProblem || error.code == .sessionExpired
                    || error.code == .closing || error.code == .invalidState:
                    // Read again once the session is back (a tick or the state change does it).
                    engine.markDirty(plan.path)
                    failedForConnection = true
                case .failure(let error):
                    throw error
                }
            }
            if failedForConnection { break }
        }
        changes.sort { $0.path < $1.path }
        for change in changes where try await handle(change) == .stop {
            return .stop
        }
        return .proceed
    }

    /// Runs the reads of `plans` concurrently (bounded), results in the order of `plans`.
    private static func read(_ plans: [ReadPlan], zk: ZooKeeperClient, generation: Int,
                             sink: AsyncStream<EngineMessage>.Continuation, maxInFlight: Int) async -> [Result<NodeRead, ZooKeeperError>] {
        var results = [Result<NodeRead, ZooKeeperError>?](repeating: nil, count: plans.count)
        await withTaskGroup(of: (Int, Result<NodeRead, ZooKeeperError>).self) { group in
            var next = 0
            func launch() {
                let i = next
                let plan = plans[i]
                next += 1
                group.addTask {
                    do {
                        return (i, .success(try await readNode(plan, zk: zk, generation: generation, sink: sink)))
                    } catch let error as ZooKeeperError {
                        return (i, .failure(error))
                    } catch {
                        return (i, .failure(ZooKeeperError(.systemError, path: plan.path, message: "\(error)")))
                    }
                }
            }
            while next < plans.count && next < maxInFlight { launch() }
            for await (i, result) in group {
                results[i] = result
                if next < plans.count { launch() }
            }
        }
        return results.map { $0 ?? .failure(ZooKeeperError(.systemError, message: "read not done")) }
    }

    /// One node's read, arming the watches the plan asks for.
    private static func readNode(_ plan: ReadPlan, zk: ZooKeeperClient, generation: Int,
                                 sink: AsyncStream<EngineMessage>.Continuation) async throws -> NodeRead {
        let path = plan.path
        func watcher(_ which: WatchSlot) -> @Sendable (WatchEvent) -> Void {
            { event in
                // A watch ended by the session's end is handled through the state stream.
                if event.kind != .sessionEnded { sink.yield(.fired(generation, path, which)) }
            }
        }
        var read = NodeRead(path: path)
        var armData = plan.armData
        var armChildren = plan.armChildren
        // A node can appear or vanish between two reads: try a few times for a consistent view.
        // A watch armed once stays armed (an existence watch also fires on change and removal).
        for _ in 0..<5 {
            read.stat = nil
            read.data = nil
            read.children = nil
            if plan.readData {
                do {
                    let r = armData ? try await zk.get(path, watch: watcher(.data)) : try await zk.get(path)
                    read.stat = r.stat
                    read.data = r.data
                    if armData { read.armedData = true; armData = false }
                } catch ZooKeeperError.Code.noNode {
                    let stat = armData ? try await zk.exists(path, watch: watcher(.data)) : try await zk.exists(path)
                    if armData { read.armedData = true; armData = false }
                    if stat != nil { continue }   // created in between: read its data
                    return read
                }
            } else {
                let stat = armData ? try await zk.exists(path, watch: watcher(.data)) : try await zk.exists(path)
                if armData { read.armedData = true; armData = false }
                read.stat = stat
                if stat == nil { return read }
            }
            if plan.followChildren {
                do {
                    let r = armChildren ? try await zk.children(path, watch: watcher(.children)) : try await zk.children(path)
                    read.children = r.children
                    if armChildren { read.armedChildren = true; armChildren = false }
                } catch ZooKeeperError.Code.noNode {
                    // Removed in between: look again, and watch its existence if nothing does yet.
                    if !read.armedData && !plan.readData { armData = true }
                    continue
                }
            }
            return read
        }
        return read
    }
}

// MARK: - Engine internals

enum WatchSlot: Sendable { case data, children }

enum EngineMessage: Sendable {
    case fired(Int, String, WatchSlot)
    case state(Int, SessionState)
    case tick
}

/// What to read for one node, and which watches to arm.
struct ReadPlan: Sendable {
    var path: String
    var readData: Bool
    var followChildren: Bool
    var armData: Bool
    var armChildren: Bool
}

/// What one read saw.
struct NodeRead: Sendable {
    var path: String
    var stat: Stat?
    var data: Data?
    var children: [String]?
    var armedData = false
    var armedChildren = false
}

/// The engine's bookkeeping, free of I/O so it can be unit tested.
struct WatchEngineState {
    struct Node {
        var path: String
        /// Asked for by path (never dropped) rather than found under a parent.
        var explicit: Bool
        /// The followed parent it was found under.
        var parent: String?
        var reported: Bool
        var readData: Bool
        var followChildren: Bool
        /// Watch the node's existence (and data) itself; children found under a parent without
        /// data rely on the parent's listing instead.
        var watchExistence: Bool
        /// What was seen last: nil when missing (or never read).
        var stat: Stat?
        var data: Data?
        var seen = false
        var children: Set<String> = []
        var dataArmed = false
        var childrenArmed = false
        var dirty = true
    }

    let spec: WatchSpec
    private(set) var nodes: [String: Node] = [:]

    init(spec: WatchSpec) {
        self.spec = spec
        for p in spec.parents {
            nodes[p] = Node(path: p, explicit: true, parent: nil, reported: false, readData: false,
                            followChildren: true, watchExistence: true)
        }
        for p in spec.paths {
            if nodes[p] != nil {
                nodes[p]?.reported = true
                nodes[p]?.readData = true
            } else {
                nodes[p] = Node(path: p, explicit: true, parent: nil, reported: true, readData: true,
                                followChildren: false, watchExistence: true)
            }
        }
    }

    var hasDirty: Bool { nodes.values.contains { $0.dirty } }

    mutating func markDirty(_ path: String) { nodes[path]?.dirty = true }

    /// After a reconnect (`disarm` false: the session kept its watches) or a new session (`disarm`
    /// true: every watch must be armed again).
    mutating func markAllDirty(disarm: Bool) {
        for key in nodes.keys {
            nodes[key]?.dirty = true
            if disarm {
                nodes[key]?.dataArmed = false
                nodes[key]?.childrenArmed = false
            }
        }
    }

    mutating func fired(_ path: String, _ which: WatchSlot) {
        guard nodes[path] != nil else { return }
        switch which {
        case .data: nodes[path]?.dataArmed = false
        case .children: nodes[path]?.childrenArmed = false
        }
        nodes[path]?.dirty = true
    }

    /// The plans for every dirty node (sorted by path), marking them clean.
    mutating func takeDirty() -> [ReadPlan] {
        var plans: [ReadPlan] = []
        for key in nodes.keys.sorted() {
            guard var n = nodes[key], n.dirty else { continue }
            n.dirty = false
            nodes[key] = n
            plans.append(ReadPlan(path: n.path, readData: n.readData, followChildren: n.followChildren,
                                  armData: n.watchExistence && !n.dataArmed, armChildren: n.followChildren && !n.childrenArmed))
        }
        return plans
    }

    /// Takes in one read and returns the changes it shows.
    mutating func apply(_ read: NodeRead, for plan: ReadPlan, initial: Bool) -> [NodeChange] {
        guard var n = nodes[read.path] else { return [] }
        if read.armedData { n.dataArmed = true }
        if read.armedChildren { n.childrenArmed = true }
        var changes: [NodeChange] = []
        let before = n.stat
        let wasSeen = n.seen
        n.seen = true
        n.stat = read.stat
        n.data = read.data
        if n.reported {
            changes += Self.diff(before: wasSeen ? before : nil, after: read.stat, data: read.data,
                                 path: n.path, parent: n.parent, initial: initial, existenceOnly: !n.readData)
        }
        var dropped: [String] = []
        if n.followChildren {
            let now = Set(read.children ?? [])
            let added = now.subtracting(n.children)
            dropped = n.children.subtracting(now).map { PathRules.join(n.path, $0) }
            n.children = now
            for name in added.sorted() {
                let child = PathRules.join(n.path, name)
                if nodes[child] != nil {
                    nodes[child]?.dirty = true
                    if nodes[child]?.parent == nil { nodes[child]?.parent = n.path }
                    continue
                }
                let follow = spec.recursive
                nodes[child] = Node(path: child, explicit: false, parent: n.path, reported: true,
                                    readData: spec.childData, followChildren: follow,
                                    watchExistence: spec.childData)
            }
        }
        nodes[n.path] = n
        for child in dropped.sorted() { changes += drop(child) }
        return changes
    }

    /// Stops following a child found under a parent (and what was found under it); reports
    /// `removed` for those that were last seen present.
    mutating func drop(_ path: String) -> [NodeChange] {
        guard let n = nodes[path] else { return [] }
        var changes: [NodeChange] = []
        for name in n.children.sorted() { changes += drop(PathRules.join(path, name)) }
        if n.reported && n.seen && n.stat != nil {
            changes.append(NodeChange(kind: .removed, path: path, parent: n.parent))
        }
        if n.explicit {
            nodes[path]?.stat = nil
            nodes[path]?.data = nil
            nodes[path]?.children = []
            nodes[path]?.dirty = true
        } else {
            nodes[path] = nil
        }
        return changes
    }

    /// The changes between two looks at one node.
    static func diff(before: Stat?, after: Stat?, data: Data?, path: String, parent: String?, initial: Bool,
                     existenceOnly: Bool = false) -> [NodeChange] {
        switch (before, after) {
        case (nil, nil):
            return []
        case (nil, let now?):
            return [NodeChange(kind: initial ? .initial : .created, path: path, data: data, stat: now, parent: parent)]
        case (_?, nil):
            return [NodeChange(kind: .removed, path: path, parent: parent)]
        case (let old?, let now?):
            if old.czxid != now.czxid {
                return [NodeChange(kind: .removed, path: path, parent: parent),
                        NodeChange(kind: .created, path: path, data: data, stat: now, parent: parent)]
            }
            if !existenceOnly && (old.mzxid != now.mzxid || old.version != now.version) {
                return [NodeChange(kind: .changed, path: path, data: data, stat: now, parent: parent)]
            }
            return []
        }
    }
}
