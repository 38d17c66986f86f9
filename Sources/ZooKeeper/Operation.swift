import CZooKeeper
import FoundationEssentials

/// One request, as the single-call methods and the pipelined batch API send it.
public enum Operation: Sendable, Hashable {
    case exists(String)
    case get(String)
    case children(String)
    case getACL(String)
    case create(String, data: Data = Data(), mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe)
    /// Set data; version -1 matches any version.
    case set(String, data: Data, version: Int32 = -1)
    /// Delete; version -1 matches any version.
    case delete(String, version: Int32 = -1)
    case setACL(String, acl: [ACL], version: Int32 = -1)
    /// Wait until the connected server has caught up with the leader for this path.
    case sync(String)

    public var path: String {
        switch self {
        case .exists(let p), .get(let p), .children(let p), .getACL(let p), .create(let p, _, _, _),
             .set(let p, _, _), .delete(let p, _), .setACL(let p, _, _), .sync(let p):
            return p
        }
    }

    /// Reads, which are safe to send again after a connection loss.
    public var isRead: Bool {
        // No default: a new operation must be placed here, or it would never be retried.
        switch self {
        case .exists, .get, .children, .getACL, .sync: return true
        case .create, .set, .delete, .setACL: return false
        }
    }

    /// A generous estimate of the request's size on the wire.
    var estimatedSize: Int {
        let base = 64 + path.utf8.count
        switch self {
        case .create(_, let data, _, let acl): return base + data.count + aclSize(acl)
        case .set(_, let data, _): return base + data.count
        case .setACL(_, let acl, _): return base + aclSize(acl)
        default: return base
        }
    }
}

func aclSize(_ acl: [ACL]) -> Int {
    acl.reduce(8) { $0 + 16 + $1.scheme.utf8.count + $1.id.utf8.count }
}

/// What an operation returned.
public enum OperationResult: Sendable, Hashable {
    case none
    /// `exists`: the stat, or nil when the node does not exist. `set`: the new stat.
    case stat(Stat?)
    case data(Data, Stat)
    case children([String], Stat?)
    case string(String)
    /// `create`: the path actually created (with its sequence suffix) and, when known, its stat.
    case created(String, Stat?)
    case acl([ACL], Stat)

    public var data: Data? { if case .data(let d, _) = self { return d }; return nil }
    public var children: [String]? { if case .children(let c, _) = self { return c }; return nil }
    public var createdPath: String? { if case .created(let p, _) = self { return p }; return nil }
    public var acl: [ACL]? { if case .acl(let a, _) = self { return a }; return nil }
    public var stat: Stat? {
        switch self {
        case .stat(let s), .children(_, let s), .created(_, let s): return s
        case .data(_, let s), .acl(_, let s): return s
        case .none, .string: return nil
        }
    }
}

extension ZooKeeperClient {
    /// The largest request the server takes in one packet (`jute.maxbuffer`'s default). Larger
    /// requests make it drop the connection, so they are refused before sending.
    public static let maxPacketSize = 0xfffff

    /// Issues `op` through the C client with `context` as the completion's data.
    /// Returns the C call's synchronous result; the completion runs only when that is ZOK.
    static func issue(_ op: Operation, on zh: OpaquePointer, context: UnsafeRawPointer,
                      watcher: UnsafeMutableRawPointer?, buffers: CBuffers) -> Int32 {
        let path = op.path
        switch op {
        case .exists:
            if let watcher { return zoo_awexists(zh, path, nodeWatcher, watcher, statCompletion, context) }
            return zoo_aexists(zh, path, 0, statCompletion, context)
        case .get:
            if let watcher { return zoo_awget(zh, path, nodeWatcher, watcher, dataCompletion, context) }
            return zoo_aget(zh, path, 0, dataCompletion, context)
        case .children:
            if let watcher { return zoo_awget_children2(zh, path, nodeWatcher, watcher, childrenCompletion, context) }
            return zoo_aget_children2(zh, path, 0, childrenCompletion, context)
        case .getACL:
            return zoo_aget_acl(zh, path, aclCompletion, context)
        case .create(_, let data, let mode, let acl):
            let value = buffers.bytes(data)
            let vector = buffers.aclVector(acl)
            if let ttl = mode.ttl {
                return zoo_acreate2_ttl(zh, path, value, Int32(data.count), vector, mode.flags, ttl, createCompletion, context)
            }
            return zoo_acreate2(zh, path, value, Int32(data.count), vector, mode.flags, createCompletion, context)
        case .set(_, let data, let version):
            return zoo_aset(zh, path, buffers.bytes(data), Int32(data.count), version, statCompletion, context)
        case .delete(_, let version):
            return zoo_adelete(zh, path, version, voidCompletion, context)
        case .setACL(_, let acl, let version):
            return zoo_aset_acl(zh, path, version, buffers.aclVector(acl), voidCompletion, context)
        case .sync:
            return zoo_async(zh, path, stringCompletion, context)
        }
    }

    /// Checks what can be checked before sending: the path and the size.
    static func precheck(_ op: Operation) -> ZooKeeperError? {
        if let problem = PathRules.problem(with: op.path) {
            return ZooKeeperError(.invalidPath, path: op.path, message: problem)
        }
        if op.estimatedSize > maxPacketSize {
            return ZooKeeperError(.requestTooLarge, path: op.path,
                                  message: "request of about \(op.estimatedSize) bytes is over the server's limit of \(maxPacketSize) bytes")
        }
        return nil
    }

    /// Turns a completion's code into a result; `exists` of a missing node is a success.
    static func outcome(_ op: Operation, _ rc: Int32, _ reply: OperationResult) -> Result<OperationResult, ZooKeeperError> {
        if rc == ZOK.rawValue { return .success(reply) }
        if rc == ZNONODE.rawValue, case .exists = op { return .success(.stat(nil)) }
        return .failure(ZooKeeperError(rc: rc, path: op.path))
    }
}
