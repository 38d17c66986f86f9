import CZooKeeper

/// An error from ZooKeeper or from this client.
///
/// It carries the raw code, so codes this file does not name still survive, the path the
/// operation was about, and a plain message. Match on the code with `~=`:
///
///     do { try await zk.delete("/a") }
///     catch ZooKeeperError.Code.noNode { ... }
public struct ZooKeeperError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A ZooKeeper result code (`ZOK`, `ZNONODE`, ...), or one of this client's own codes
    /// (below -1000), which no server sends.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let systemError = Code(rawValue: -1)
        public static let runtimeInconsistency = Code(rawValue: -2)
        public static let dataInconsistency = Code(rawValue: -3)
        public static let connectionLoss = Code(rawValue: -4)
        public static let marshallingError = Code(rawValue: -5)
        public static let unimplemented = Code(rawValue: -6)
        public static let operationTimeout = Code(rawValue: -7)
        public static let badArguments = Code(rawValue: -8)
        public static let invalidState = Code(rawValue: -9)
        public static let noNode = Code(rawValue: -101)
        public static let notAuthorized = Code(rawValue: -102)
        public static let badVersion = Code(rawValue: -103)
        public static let noChildrenForEphemerals = Code(rawValue: -108)
        public static let nodeExists = Code(rawValue: -110)
        public static let notEmpty = Code(rawValue: -111)
        public static let sessionExpired = Code(rawValue: -112)
        public static let invalidCallback = Code(rawValue: -113)
        public static let invalidACL = Code(rawValue: -114)
        public static let authFailed = Code(rawValue: -115)
        public static let closing = Code(rawValue: -116)
        public static let sessionMoved = Code(rawValue: -118)
        public static let notReadOnly = Code(rawValue: -119)
        public static let noWatcher = Code(rawValue: -121)
        public static let reconfigDisabled = Code(rawValue: -123)
        public static let sessionClosedRequiresSASLAuth = Code(rawValue: -124)
        public static let throttled = Code(rawValue: -127)
        /// A hard quota (`zookeeper.enforceQuota=true` on the server) refuses the write. The
        /// 3.8 C client has no name for it.
        public static let quotaExceeded = Code(rawValue: -125)

        /// No server of the connect string could be reached before the deadline.
        public static let unavailable = Code(rawValue: -1001)
        /// The request is larger than the server accepts in one packet; it was not sent.
        public static let requestTooLarge = Code(rawValue: -1002)
        /// A path or argument was refused before anything was sent.
        public static let invalidPath = Code(rawValue: -1003)

        public var description: String {
            switch self {
            case .unavailable: return "unavailable"
            case .requestTooLarge: return "request too large"
            case .invalidPath: return "invalid path"
            case .quotaExceeded: return "quota exceeded"
            default: return String(cString: zerror(rawValue))
            }
        }

        /// True for the codes that say the outcome is unknown or the server could not be
        /// reached: the operation may be retried once connected again.
        public var isConnectionProblem: Bool {
            self == .connectionLoss || self == .operationTimeout || self == .unavailable
                || self == .sessionMoved || self == .throttled
        }
    }

    public var code: Code
    /// The znode the failed operation was about, when there is one.
    public var path: String?
    /// A plain sentence saying what went wrong.
    public var message: String
    /// For a failed `multi`, the index of the operation that failed.
    public var operationIndex: Int?
    /// Set (to the chroot) when the connect string's chroot does not exist: the code is then
    /// `noNode` and `path` is nil.
    public var missingChroot: String?
    /// Set when a write was sent (or may have been) and its answer was lost, and whether the
    /// server applied it could not be learned in time (DESIGN.md 4b): the write may or may not
    /// have been applied. The code stays a connection problem (`connectionLoss`,
    /// `operationTimeout` or `sessionExpired`); `path` is what to read to find out (a
    /// sequential create's parent is `path`'s parent).
    public var unknownOutcome: Write?

    /// The kinds of write whose outcome can be unknown.
    public enum Write: String, Sendable, Hashable {
        case set, create, createSequential, delete, setACL, multi
    }

    /// The connect string's chroot does not exist on the server.
    public static func missingChroot(_ chroot: String) -> ZooKeeperError {
        var e = ZooKeeperError(.noNode, message: "chroot \(chroot) does not exist")
        e.missingChroot = chroot
        return e
    }

    public init(_ code: Code, path: String? = nil, message: String? = nil, operationIndex: Int? = nil) {
        self.code = code
        self.path = path
        self.message = message ?? code.description
        self.operationIndex = operationIndex
    }

    init(rc: Int32, path: String?) {
        self.init(Code(rawValue: rc), path: path)
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}

extension ZooKeeperError.Code {
    /// Lets `catch ZooKeeperError.Code.noNode` match a thrown `ZooKeeperError` with that code.
    public static func ~= (code: Self, error: any Error) -> Bool {
        (error as? ZooKeeperError)?.code == code
    }
}
