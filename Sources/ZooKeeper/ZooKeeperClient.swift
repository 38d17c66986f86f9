import CZooKeeper
import FoundationEssentials
import Glibc
import Dispatch
import Synchronization

/// How to connect.
public struct ConnectOptions: Sendable {
    /// `host:port,host:port[/chroot]`.
    public var connectString: String
    /// The session timeout asked of the server (it may negotiate another).
    public var sessionTimeout: Duration
    /// How long `connect` waits for a first session before giving up with `unavailable`.
    public var connectTimeout: Duration
    /// How long one request may take, including waiting for a reconnect; nil means the
    /// connect timeout.
    public var requestTimeout: Duration?
    /// Digest credentials, `user:password`, sent with `zoo_add_auth` and confirmed before
    /// `connect` returns.
    public var digestCredentials: [String]
    /// Accept a read-only server (one that lost its quorum).
    public var allowReadOnly: Bool
    /// When the connect string has a chroot, check once, after connecting, that it exists, and
    /// fail with `ZooKeeperError.missingChroot` when it does not (without a chroot nothing extra
    /// is sent). Off only for a caller that goes on to create the chroot.
    public var checkChroot: Bool
    /// Before `connect` returns, make the server the session is on catch up with the leader (a
    /// `sync`), so that the session's reads see every write acknowledged before it began.
    public var syncFirst = false
    /// TLS to every server (their `secureClientPort`), through a relay of this process
    /// (`TLSRelay`); nil: plain TCP.
    public var tls: TLSOptions?

    public init(connectString: String, sessionTimeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(10),
                requestTimeout: Duration? = nil, digestCredentials: [String] = [], allowReadOnly: Bool = false,
                checkChroot: Bool = true, tls: TLSOptions? = nil) {
        self.tls = tls
        self.connectString = connectString
        self.sessionTimeout = sessionTimeout
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.digestCredentials = digestCredentials
        self.allowReadOnly = allowReadOnly
        self.checkChroot = checkChroot
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}

/// A ZooKeeper session over the official multi-threaded C client.
///
/// Thread safety: the mt C client may be called from any thread; what it must not see is a
/// handle after `zookeeper_close`. The handle therefore lives in a mutex that every call holds
/// while it hands a request to the C client (which only queues it and returns), and `close()`
/// takes it out of the mutex before closing it, exactly once. A request issued after that fails
/// with `closing`. Completions and watchers run on the C client's completion thread and only
/// copy data and resume continuations there; they never block.
public final class ZooKeeperClient: Sendable {
    /// The zhandle_t*, as a bit pattern (0 once closed).
    private let handle: Mutex<UInt>
    /// Held for the whole of a close, so that a second `close()` returns only once the session is
    /// really closed (closing runs on threads of its own, where blocking is fine).
    private let closing = BlockingLock()
    let core: SessionCore
    public let options: ConnectOptions
    public let connectString: ConnectString
    /// With TLS: the relay the C client's connections go through; closed with the session.
    let relay: TLSRelay?

    private init(handle: OpaquePointer, core: SessionCore, options: ConnectOptions, connectString: ConnectString, relay: TLSRelay? = nil) {
        self.relay = relay
        self.handle = Mutex(UInt(bitPattern: handle))
        self.core = core
        self.options = options
        self.connectString = connectString
    }

    deinit {
        closeNow()
    }

    /// The C client library's version.
    public static var libraryVersion: String { ZOO_VERSION }

    // MARK: Connecting

    /// Starts a session and waits until it is connected (and authenticated, when credentials are
    /// given), at most `options.connectTimeout`.
    public static func connect(_ options: ConnectOptions) async throws -> ZooKeeperClient {
        let connectString = try ConnectString(parsing: options.connectString)
        ZooKeeperLog.configureOnce()
        let core = SessionCore(connectString: connectString)
        let context = Unmanaged.passRetained(core).toOpaque()
        let contextBits = UInt(bitPattern: context)
        let flags = Int32(ZOO_NO_LOG_CLIENTENV) | (options.allowReadOnly ? Int32(ZOO_READONLY) : 0)
        // With TLS the C client connects to the relay's loopback ports, one per server.
        let relay = try options.tls.map { try TLSRelay(servers: connectString.servers, options: $0, handshakeTimeout: options.connectTimeout) }
        let hosts = relay?.clientForm(chroot: connectString.chroot) ?? connectString.clientForm
        let timeout = Int32(clamping: options.sessionTimeout.milliseconds)
        let start: @Sendable () -> (UInt, Int32) = {
            let h = zookeeper_init2(hosts, sessionWatcher, timeout, nil, UnsafeMutableRawPointer(bitPattern: contextBits), flags, logCallback)
            let err = errno
            // By default the client resolves every host name each time it polls its socket (a
            // getaddrinfo per request, in bulk work); resolve again only after a connection loss.
            if let h { zoo_set_servers_resolution_delay(h, -1) }
            return (UInt(bitPattern: h), err)
        }
        // zookeeper_init2 resolves host names, which may block: keep it off the cooperative pool,
        // unless every host is an address already (the relay's are), which resolves at once.
        let (bits, err) = relay != nil || connectString.servers.allSatisfy({ isIPAddress($0.host) }) ? start() : await offload(start)
        guard let h = OpaquePointer(bitPattern: bits) else {
            Unmanaged<SessionCore>.fromOpaque(context).release()
            relay?.close()
            let tried = connectString.servers.map(\.description).joined(separator: ",")
            // The C client fails when a host name does not resolve; say which, not a stale errno.
            let unresolved = await offload { connectString.servers.filter { !resolves($0.host) }.map(\.host) }
            if !unresolved.isEmpty {
                throw ZooKeeperError(.unavailable, message: "cannot resolve \(unresolved.joined(separator: ", ")); tried \(tried)")
            }
            throw ZooKeeperError(.unavailable, message: "cannot start a session with \(tried): \(String(cString: strerror(err)))")
        }
        core.adoptRetainedContext(context)
        let client = ZooKeeperClient(handle: h, core: core, options: options, connectString: connectString, relay: relay)
        // A read-only session counts only when asked for: a real server never grants one to a
        // client that did not ask, so one here is something else answering on the port (its
        // bytes read as a handshake), and the connection drops at once.
        let allowReadOnly = options.allowReadOnly
        let usable: @Sendable (SessionState) -> Bool = { $0 == .connected || (allowReadOnly && $0 == .connectedReadOnly) }
        let state = await core.wait(for: options.connectTimeout) { usable($0) || $0.isTerminal }
        guard usable(state) else {
            await client.close()
            if state == .authFailed { throw ZooKeeperError(.authFailed, message: "the server refused the credentials") }
            if let error = TLSRelay.connectFailure(relay, servers: connectString.servers, tls: options.tls != nil) { throw error }
            // Say why: a quick bounded probe of every server tells "nothing listening" from
            // "accepts connections but is not serving (no quorum)".
            let probes = await FourLetterWord.probe(connectString.servers, timeout: min(options.connectTimeout, .seconds(1)), tls: options.tls)
            if options.tls == nil, let hint = await TLSExchange.plainConnectHint(probes, timeout: min(options.connectTimeout, .seconds(1))) {
                throw ZooKeeperError(.unavailable, message: hint)
            }
            throw ZooKeeperError(.unavailable, message: FourLetterWord.explain(probes, waited: options.connectTimeout))
        }
        do {
            for credential in options.digestCredentials {
                try await client.addAuth(scheme: "digest", credential: Data(credential.utf8))
            }
            // Under a chroot every path is relative to it: a missing one would make every read
            // "no such znode" about a path that is not the problem. One exists() says so first.
            if options.checkChroot, let chroot = connectString.chroot, try await client.exists("/") == nil {
                throw ZooKeeperError.missingChroot(chroot)
            }
            if options.syncFirst { _ = try await client.perform(.sync("/")) }
        } catch {
            await client.close()
            throw error
        }
        return client
    }

    /// The servers of the connect string, as people write them.
    var serverList: String { connectString.servers.map(\.description).joined(separator: ",") }

    /// Adds credentials to the session and waits for the server's answer.
    public func addAuth(scheme: String, credential: Data) async throws {
        // zoo_add_auth copies the credential before it returns.
        let rc = await start(deadline: .now + requestTimeout, timedOut: { ZOPERATIONTIMEOUT.rawValue },
                             reply: { rc, _ in rc }) { zh, context in
            credential.withUnsafeBytes { raw in
                zoo_add_auth(zh, scheme, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(credential.count), voidCompletion, context)
            }
        }.wait()
        guard rc == ZOK.rawValue else {
            // Say which user, never the password.
            let user = scheme == "digest" ? String(decoding: credential.prefix { $0 != UInt8(ascii: ":") }, as: UTF8.self) : scheme
            let code = ZooKeeperError.Code(rawValue: rc)
            throw ZooKeeperError(code == .authFailed ? .authFailed : code,
                                 message: "authentication as '\(user)' failed: \(code)")
        }
    }

    // MARK: Session facts

    public var state: SessionState { core.currentState }

    /// How the session ended: the first terminal state it reached (`expired`, `authFailed` or
    /// `closed`; an expired session closed afterwards is still `expired` here), nil while it lives.
    public var ending: SessionState? { core.ending }

    /// Every later state change, until the session is closed.
    public func stateUpdates() -> AsyncStream<SessionState> { core.updates() }

    /// The session id (0 before the first connection).
    public var sessionID: Int64 {
        withHandle { zh in zoo_client_id(zh)?.pointee.client_id ?? 0 } ?? 0
    }

    /// The session timeout the server granted, in milliseconds.
    public var negotiatedTimeout: Int {
        Int(withHandle { zh in zoo_recv_timeout(zh) } ?? 0)
    }

    /// The `host:port` the client is connected to, or trying to connect to.
    public var connectedServer: String? {
        let local = withHandle { zh in zoo_get_current_server(zh).map { String(cString: $0) } } ?? nil
        // Through the TLS relay, the server behind the loopback port.
        return local.map { relay?.realServer(for: $0) ?? $0 }
    }

    var requestTimeout: Duration { options.requestTimeout ?? options.connectTimeout }

    // MARK: Closing

    /// Ends the session: its ephemeral nodes go at once. Safe to call more than once. Must not be
    /// called from a completion or watcher callback.
    public func close() async {
        await offload { self.closeNow() }
    }

    private func closeNow() {
        closing.lock()
        defer { closing.unlock() }
        let bits = handle.withLock { h -> UInt in
            defer { h = 0 }
            return h
        }
        guard let h = OpaquePointer(bitPattern: bits) else { return }
        zookeeper_close(h)
        // No callback runs after zookeeper_close returns: the core can go.
        core.closed()
        relay?.close()
    }

    /// Runs `body` with the live handle while holding the handle lock; nil after close.
    @discardableResult
    func withHandle<T: Sendable>(_ body: (OpaquePointer) -> T) -> T? {
        handle.withLock { bits in OpaquePointer(bitPattern: bits).map(body) }
    }

    // MARK: One request

    /// Sends one operation and waits for its result. Reads that meet a connection loss are sent
    /// again once reconnected, until the request timeout passes. A write whose answer is lost
    /// (the connection dropped after it was sent) is not just reported: once reconnected, what
    /// the server holds tells whether it was applied, and it is sent again only when it was not
    /// (`performWrite`, LostReply.swift); only when that cannot be learned within the request
    /// timeout does it fail, with `unknownOutcome` set.
    public func perform(_ op: Operation) async throws -> OperationResult {
        if !op.isRead {
            if let error = Self.precheck(op) { throw error }
            return try await performWrite(op)
        }
        return try await perform(op, watch: nil)
    }

    func perform(_ op: Operation, watch: WatchBox?, deadline given: ContinuousClock.Instant? = nil) async throws -> OperationResult {
        if let error = Self.precheck(op) { throw error }
        let deadline = given ?? ContinuousClock.now + requestTimeout
        while true {
            do {
                return try await send(op, watch: watch, deadline: deadline)
            } catch let error as ZooKeeperError where op.isRead && error.code == .connectionLoss {
                // The client may not have noticed the loss yet: pause, then wait for a connection.
                try? await Task.sleep(for: .milliseconds(50))
                let left = deadline - .now
                guard left > .zero else { throw blamingServers(error, waited: true) }
                let state = await core.wait(for: left) { $0.isConnected || $0.isTerminal }
                guard state.isConnected else { throw blamingServers(error, waited: true) }
            } catch let error as ZooKeeperError where error.code == .connectionLoss || error.code == .operationTimeout {
                throw blamingServers(error, waited: false)
            }
        }
    }

    /// A connection loss or a timeout is about the servers, not the path: the message names
    /// them (the path stays in `path`, for callers that match on it).
    /// `waited`: a read waited for a reconnect that did not come in time.
    func blamingServers(_ error: ZooKeeperError, waited: Bool) -> ZooKeeperError {
        var e = error
        let ms = requestTimeout.milliseconds
        if e.code == .connectionLoss {
            e.message = waited
                ? "lost the connection to the servers (\(serverList)) and did not get it back within \(ms) ms"
                : "lost the connection to the servers (\(serverList)) before the answer came"
        } else {
            e.message = "no answer from the servers (\(serverList)) within \(ms) ms"
        }
        return e
    }

    func send(_ op: Operation, watch: WatchBox?, deadline: ContinuousClock.Instant) async throws -> OperationResult {
        let buffers = CBuffers()
        let watchKey = watch.map { core.register($0) }
        // The deadline keeps only these two small values, never `op` and its data.
        let path = op.path, ms = requestTimeout.milliseconds
        let once = start(deadline: deadline, keepAlive: buffers, timedOut: {
            .failure(ZooKeeperError(.operationTimeout, path: path, message: "no answer within \(ms) ms"))
        }, reply: { [core] rc, reply in
            // A synchronous failure comes here too: the C client keeps no watch then.
            if let watchKey, !Self.watchArmed(op, rc) { core.unregister(watchKey) }
            return Self.outcome(op, rc, reply)
        }) { zh, context in
            Self.issue(op, on: zh, context: context, watcher: watchKey.map { UnsafeMutableRawPointer(bitPattern: $0) } ?? nil, buffers: buffers)
        }
        return try await once.wait().get()
    }

    /// Whether the C client keeps a watch set by `op` that ended with `rc`.
    static func watchArmed(_ op: Operation, _ rc: Int32) -> Bool {
        if rc == ZOK.rawValue { return true }
        if case .exists = op, rc == ZNONODE.rawValue { return true }
        return false
    }

    // MARK: Convenience

    /// The node's stat, or nil when it does not exist.
    public func exists(_ path: String) async throws -> Stat? {
        try await perform(.exists(path)).stat
    }

    public func get(_ path: String) async throws -> (data: Data, stat: Stat) {
        let r = try await perform(.get(path))
        return (r.data ?? Data(), r.stat ?? Stat())
    }

    /// Sets the data; with `version` the write succeeds only if the node still has that version.
    @discardableResult
    public func set(_ path: String, data: Data, version: Int32 = -1) async throws -> Stat {
        try await perform(.set(path, data: data, version: version)).stat ?? Stat()
    }

    /// Creates a node and returns the path created (which differs for sequential nodes). With
    /// `createParents`, missing parents are created as empty persistent nodes with `parentACL`
    /// (open by default, as Curator does), so a restrictive ACL on the node does not lock its
    /// siblings out of a shared parent.
    @discardableResult
    public func create(_ path: String, data: Data = Data(), mode: CreateMode = .persistent,
                       acl: [ACL] = ACL.openUnsafe, createParents: Bool = false,
                       parentACL: [ACL] = ACL.openUnsafe) async throws -> String {
        let op = Operation.create(path, data: data, mode: mode, acl: acl)
        do {
            return try await perform(op).createdPath ?? path
        } catch ZooKeeperError.Code.noNode where createParents {
            if let parent = PathRules.parent(of: path), parent != "/" {
                try await createParentChain(parent, acl: parentACL)
            }
            return try await perform(op).createdPath ?? path
        }
    }

    /// Creates `path` and its missing ancestors as empty persistent nodes; existing ones are fine.
    public func createParentChain(_ path: String, acl: [ACL] = ACL.openUnsafe) async throws {
        var missing: [String] = []
        var cursor: String? = path
        while let p = cursor, p != "/" {
            if try await exists(p) != nil { break }
            missing.append(p)
            cursor = PathRules.parent(of: p)
        }
        for p in missing.reversed() {
            do {
                _ = try await perform(.create(p, data: Data(), mode: .persistent, acl: acl))
            } catch ZooKeeperError.Code.nodeExists {
                continue
            }
        }
    }

    /// Deletes a node; with `version` only if it still has that version.
    public func delete(_ path: String, version: Int32 = -1) async throws {
        _ = try await perform(.delete(path, version: version))
    }

    public func children(_ path: String) async throws -> (children: [String], stat: Stat) {
        let r = try await perform(.children(path))
        return (r.children ?? [], r.stat ?? Stat())
    }

    public func getACL(_ path: String) async throws -> (acl: [ACL], stat: Stat) {
        let r = try await perform(.getACL(path))
        return (r.acl ?? [], r.stat ?? Stat())
    }

    public func setACL(_ path: String, acl: [ACL], version: Int32 = -1) async throws {
        _ = try await perform(.setACL(path, acl: acl, version: version))
    }

    /// Waits until the connected server has caught up with the leader for `path`.
    public func sync(_ path: String = "/") async throws {
        _ = try await perform(.sync(path))
    }

    /// The ensemble's dynamic configuration (`/zookeeper/config`), read past any chroot.
    public func getConfig() async throws -> (data: Data, stat: Stat) {
        let deadline = ContinuousClock.now + requestTimeout
        let path = "/zookeeper/config"
        let reply = try await start(deadline: deadline, timedOut: {
            Result<OperationResult, ZooKeeperError>.failure(ZooKeeperError(.operationTimeout, path: path))
        }, reply: { rc, reply in
            rc == ZOK.rawValue ? .success(reply) : .failure(ZooKeeperError(rc: rc, path: path))
        }) { zh, context in
            zoo_agetconfig(zh, 0, dataCompletion, context)
        }.wait().get()
        return (reply.data ?? Data(), reply.stat ?? Stat())
    }

    // MARK: Watches

    /// Gets the data and leaves a one-shot watch: `onEvent` runs once, on the client's completion
    /// thread, when the node changes or is deleted, or the session ends first.
    public func get(_ path: String, watch onEvent: @escaping @Sendable (WatchEvent) -> Void) async throws -> (data: Data, stat: Stat) {
        let r = try await perform(.get(path), watch: WatchBox(onEvent))
        return (r.data ?? Data(), r.stat ?? Stat())
    }

    /// Lists the children and leaves a one-shot child watch.
    public func children(_ path: String, watch onEvent: @escaping @Sendable (WatchEvent) -> Void) async throws -> (children: [String], stat: Stat) {
        let r = try await perform(.children(path), watch: WatchBox(onEvent))
        return (r.children ?? [], r.stat ?? Stat())
    }

    /// The stat (nil when missing) and a one-shot watch that fires on creation, change or deletion.
    public func exists(_ path: String, watch onEvent: @escaping @Sendable (WatchEvent) -> Void) async throws -> Stat? {
        try await perform(.exists(path), watch: WatchBox(onEvent)).stat
    }
}

/// Whether `host` resolves to an address (blocking).
func resolves(_ host: String) -> Bool {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, nil, &hints, &list)
    if let list { freeaddrinfo(list) }
    return rc == 0
}

/// Runs blocking work off Swift's cooperative pool (see `BlockingWork`).
func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        BlockingWork.run { continuation.resume(returning: work()) }
    }
}

/// Where blocking calls run (zookeeper_init2 with host names, zookeeper_close, probes), off
/// Swift's cooperative pool: on the program's serving thread when it is free, else on a thread
/// of their own. A program that has nothing else for its main thread to do (zkctl's main) hands
/// it over with `serve()`: a one-shot command then creates no thread to close its session.
public enum BlockingWork {
    static func run(_ job: @escaping @Sendable () -> Void) {
        if !MainThreadExecutor.shared.takeIfIdle(job) { startThread(job) }
    }

    /// Serves the calling thread (the main thread) for ever: the jobs of the tasks that prefer
    /// `MainThreadExecutor.shared`, and blocking work handed to it while it is idle.
    public static func serve() -> Never {
        MainThreadExecutor.shared.serve()
    }
}

/// The main thread as a task executor. zkctl starts its command as a task that prefers it (with
/// its structured children: task groups, `async let`), so a one-shot command runs on the thread
/// the process began with, and the global concurrent pool, with its worker and manager threads,
/// is not started for it (benchmarks/FINDINGS.md §14). Unstructured tasks (`Task {}`: a lease's
/// heartbeat and watchdog, a lock's watcher) do not inherit the preference and still run on the
/// global pool, so a blocking call here never holds them up.
///
/// The same thread takes blocking work (`BlockingWork.run`) when it has no job to run; while it
/// runs one, jobs wait, and other blocking work gets a thread of its own.
public final class MainThreadExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: every field below is read and written with `mutex` held; the mutex and the
    // condition live at fixed addresses for the process's life (the executor is never freed).
    public static let shared = MainThreadExecutor()

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let ready: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [UnownedJob] = []
    private var blocking: (@Sendable () -> Void)?
    /// Waiting in `serve` with nothing to run.
    private var idle = false
    /// The thread in `serve`, once one is.
    private var server: pthread_t?

    private init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        ready = .allocate(capacity: 1)
        ready.initialize(to: pthread_cond_t())
        pthread_cond_init(ready, nil)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        jobs.append(job)
        pthread_cond_signal(ready)
        pthread_mutex_unlock(mutex)
    }

    /// Hands `work` to the serving thread if it is waiting with nothing to run, or if the caller
    /// is a job on that thread (which is about to wait for `work`: the command closing its
    /// session); false otherwise (no thread serves, or it is busy with something else).
    func takeIfIdle(_ work: @escaping @Sendable () -> Void) -> Bool {
        let caller = pthread_self()
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard blocking == nil, let server, idle && jobs.isEmpty || pthread_equal(server, caller) != 0 else { return false }
        blocking = work
        idle = false
        pthread_cond_signal(ready)
        return true
    }

    func serve() -> Never {
        pthread_mutex_lock(mutex)
        server = pthread_self()
        pthread_mutex_unlock(mutex)
        while true {
            pthread_mutex_lock(mutex)
            while jobs.isEmpty && blocking == nil {
                idle = true
                pthread_cond_wait(ready, mutex)
            }
            idle = false
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            let work = blocking
            blocking = nil
            pthread_mutex_unlock(mutex)
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            work?()
        }
    }
}
