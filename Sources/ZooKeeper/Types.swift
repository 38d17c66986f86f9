import Glibc
import CZooKeeper

/// A znode's metadata, as the server reports it.
public struct Stat: Sendable, Hashable, Codable {
    public var czxid: Int64
    public var mzxid: Int64
    /// Creation time, milliseconds since the epoch.
    public var ctime: Int64
    /// Last modification time, milliseconds since the epoch.
    public var mtime: Int64
    public var version: Int32
    public var cversion: Int32
    public var aversion: Int32
    /// The owning session for an ephemeral node, 0 otherwise.
    public var ephemeralOwner: Int64
    public var dataLength: Int32
    public var numChildren: Int32
    public var pzxid: Int64

    public init(czxid: Int64 = 0, mzxid: Int64 = 0, ctime: Int64 = 0, mtime: Int64 = 0, version: Int32 = 0,
                cversion: Int32 = 0, aversion: Int32 = 0, ephemeralOwner: Int64 = 0, dataLength: Int32 = 0,
                numChildren: Int32 = 0, pzxid: Int64 = 0) {
        self.czxid = czxid; self.mzxid = mzxid; self.ctime = ctime; self.mtime = mtime
        self.version = version; self.cversion = cversion; self.aversion = aversion
        self.ephemeralOwner = ephemeralOwner; self.dataLength = dataLength
        self.numChildren = numChildren; self.pzxid = pzxid
    }

    init(_ c: CZooKeeper.Stat) {
        self.init(czxid: c.czxid, mzxid: c.mzxid, ctime: c.ctime, mtime: c.mtime, version: c.version,
                  cversion: c.cversion, aversion: c.aversion, ephemeralOwner: c.ephemeralOwner,
                  dataLength: c.dataLength, numChildren: c.numChildren, pzxid: c.pzxid)
    }

    public var isEphemeral: Bool { ephemeralOwner != 0 }
}

/// The permissions of one ACL entry.
public struct Permissions: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1)
    public static let write = Permissions(rawValue: 2)
    public static let create = Permissions(rawValue: 4)
    public static let delete = Permissions(rawValue: 8)
    public static let admin = Permissions(rawValue: 16)
    public static let all: Permissions = [.read, .write, .create, .delete, .admin]

    /// The letters zkCli uses, in its order: `c d r w a`.
    private static let letters: [(Character, Permissions)] =
        [("c", .create), ("d", .delete), ("r", .read), ("w", .write), ("a", .admin)]

    /// `cdrwa`-style text for these permissions.
    public var letters: String {
        String(Self.letters.compactMap { contains($0.1) ? $0.0 : nil })
    }

    /// Parses `cdrwa`-style letters (any order, each at most once); nil on anything else.
    public init?(letters text: String) {
        var result: Permissions = []
        for ch in text {
            guard let p = Self.letters.first(where: { $0.0 == ch })?.1, !result.contains(p) else { return nil }
            result.insert(p)
        }
        guard !result.isEmpty else { return nil }
        self = result
    }
}

/// One access-control entry: a scheme (`world`, `digest`, `ip`, `auth`, ...), an id in that
/// scheme, and the permissions it grants.
public struct ACL: Sendable, Hashable {
    public var permissions: Permissions
    public var scheme: String
    public var id: String

    public init(permissions: Permissions, scheme: String, id: String) {
        self.permissions = permissions
        self.scheme = scheme
        self.id = id
    }

    /// Everyone may do everything (ZooKeeper's default for new nodes).
    public static let openUnsafe: [ACL] = [ACL(permissions: .all, scheme: "world", id: "anyone")]
    /// Everyone may read.
    public static let readUnsafe: [ACL] = [ACL(permissions: .read, scheme: "world", id: "anyone")]
    /// Every identity the session has authenticated as may do everything.
    public static let creatorAll: [ACL] = [ACL(permissions: .all, scheme: "auth", id: "")]
}

/// How a znode is created.
public enum CreateMode: Sendable, Hashable {
    case persistent
    case ephemeral
    case persistentSequential
    case ephemeralSequential
    /// Removed by the server once its last child is gone.
    case container
    /// Removed by the server when unchanged and childless for this long (servers need
    /// `zookeeper.extendedTypesEnabled=true`).
    case persistentWithTTL(milliseconds: Int64)
    case persistentSequentialWithTTL(milliseconds: Int64)

    var flags: Int32 {
        switch self {
        case .persistent: return ZOO_PERSISTENT
        case .ephemeral: return ZOO_EPHEMERAL
        case .persistentSequential: return ZOO_PERSISTENT_SEQUENTIAL
        case .ephemeralSequential: return ZOO_EPHEMERAL_SEQUENTIAL
        case .container: return ZOO_CONTAINER
        case .persistentWithTTL: return ZOO_PERSISTENT_WITH_TTL
        case .persistentSequentialWithTTL: return ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL
        }
    }

    var ttl: Int64? {
        switch self {
        case .persistentWithTTL(let ms), .persistentSequentialWithTTL(let ms): return ms
        default: return nil
        }
    }

    public var isEphemeral: Bool { self == .ephemeral || self == .ephemeralSequential }
}

/// The state of the client's session, as reported to `stateUpdates()`.
public enum SessionState: Sendable, Hashable {
    /// Trying to reach a server for the first time.
    case connecting
    case connected
    /// Connected to a server that has lost its quorum and serves reads only.
    case connectedReadOnly
    /// The connection was lost; the session may still be valid, and the client is reconnecting.
    case suspended
    /// The server expired the session; ephemeral nodes and watches are gone. The client is useless.
    case expired
    /// The server refused the credentials.
    case authFailed
    /// `close()` was called.
    case closed

    public var isConnected: Bool { self == .connected || self == .connectedReadOnly }
    public var isTerminal: Bool { self == .expired || self == .authFailed || self == .closed }
}

/// What a one-shot watch reports.
public struct WatchEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case created, deleted, dataChanged, childrenChanged
        /// The session ended (expired, auth failed or closed) before the watch fired.
        case sessionEnded
    }
    public var kind: Kind
    public var path: String
}

/// The servers and chroot of a ZooKeeper connect string (`h1:2181,h2:2181/chroot`).
public struct ConnectString: Sendable, Hashable, CustomStringConvertible {
    public struct Server: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) { self.host = host; self.port = port }
        public var description: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var servers: [Server]
    /// A chroot path (`/app`), or nil.
    public var chroot: String?

    public init(servers: [Server], chroot: String? = nil) {
        self.servers = servers
        self.chroot = chroot
    }

    public static let defaultPort = 2181

    /// Parses `host[:port][,host[:port]...][/chroot]`; a host without a port gets 2181, IPv6
    /// hosts are written in brackets. Throws `invalidPath`-coded errors naming the bad part.
    public init(parsing text: String) throws {
        var hostsPart = Substring(text)
        var chroot: String? = nil
        if let slash = text.firstIndex(of: "/") {
            hostsPart = text[..<slash]
            let root = String(text[slash...])
            if root != "/" {
                if let problem = PathRules.problem(with: root) {
                    throw ZooKeeperError(.badArguments, message: "bad chroot '\(root)': \(problem)")
                }
                chroot = root
            }
        }
        var servers: [Server] = []
        for raw in hostsPart.split(separator: ",", omittingEmptySubsequences: false) {
            let item = raw.trimmingBlanks()
            guard !item.isEmpty else {
                throw ZooKeeperError(.badArguments, message: "empty server in '\(text)'")
            }
            servers.append(try Self.parseServer(item))
        }
        guard !servers.isEmpty else { throw ZooKeeperError(.badArguments, message: "no server in '\(text)'") }
        self.init(servers: servers, chroot: chroot)
    }

    private static func parseServer(_ item: String) throws -> Server {
        var host = item
        var portText: String? = nil
        if item.hasPrefix("[") {
            guard let close = item.firstIndex(of: "]") else {
                throw ZooKeeperError(.badArguments, message: "bad server '\(item)': missing ']'")
            }
            host = String(item[item.index(after: item.startIndex)..<close])
            let rest = item[item.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else {
                    throw ZooKeeperError(.badArguments, message: "bad server '\(item)'")
                }
                portText = String(rest.dropFirst())
            }
        } else if let colon = item.lastIndex(of: ":") {
            host = String(item[..<colon])
            portText = String(item[item.index(after: colon)...])
        }
        guard !host.isEmpty, !host.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f || $0 == "/" || $0 == "@" }) else {
            throw ZooKeeperError(.badArguments, message: "bad host in server '\(item)'")
        }
        if !item.hasPrefix("["), host.contains(":") {
            throw ZooKeeperError(.badArguments, message: "bad server '\(item)': write an IPv6 address in brackets, [addr]:port")
        }
        // What a resolver takes: names of letters, digits, '.', '-', '_'; in brackets only an
        // IPv6 literal (what inet_pton takes), with an optional %zone of letters and digits.
        let bracketed = item.hasPrefix("[")
        guard host.unicodeScalars.allSatisfy({ Self.hostScalarAllowed($0, bracketed: bracketed) }) else {
            throw ZooKeeperError(.badArguments, message: "bad host in server '\(item)'")
        }
        if bracketed, !Self.isIPv6Literal(host) {
            throw ZooKeeperError(.badArguments, message: "bad server '\(item)': brackets hold only an IPv6 address, [addr]:port")
        }
        var port = defaultPort
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw ZooKeeperError(.badArguments, message: "bad port '\(portText)' in server '\(item)'")
            }
            port = p
        }
        return Server(host: host, port: port)
    }

    private static func hostScalarAllowed(_ u: Unicode.Scalar, bracketed: Bool) -> Bool {
        guard u.isASCII else { return false }
        let alphanumeric = ("a"..."z").contains(u) || ("A"..."Z").contains(u) || ("0"..."9").contains(u)
        if bracketed { return alphanumeric || u == ":" || u == "." || u == "%" }
        return alphanumeric || u == "." || u == "-" || u == "_"
    }

    /// An IPv6 address, optionally with a `%zone` of letters and digits (`fe80::1%eth0`).
    static func isIPv6Literal(_ host: String) -> Bool {
        let parts = host.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = parts.first, address.contains(":") else { return false }
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }) else { return false }
        }
        var storage = in6_addr()
        return inet_pton(AF_INET6, String(address), &storage) == 1
    }

    /// The form people read and zkctl parses back: IPv6 addresses in brackets.
    public var description: String {
        servers.map(\.description).joinedText(",") + (chroot ?? "")
    }

    /// The form the C client takes. It splits each server at its last ':' and hands the host to
    /// getaddrinfo as it is, so an IPv6 address goes without brackets (`::1:2181`); with them,
    /// getaddrinfo refuses the name.
    public var clientForm: String {
        servers.map { "\($0.host):\($0.port)" }.joinedText(",") + (chroot ?? "")
    }
}

/// Rules for znode paths, checked before anything is sent.
public enum PathRules {
    /// Why `path` is not a valid absolute znode path, or nil when it is.
    public static func problem(with path: String) -> String? {
        // Most paths are ASCII: one pass over the bytes, no allocation. Anything else (or a path
        // with a problem) goes through the scalars below, which word the answer.
        if let ascii = path.utf8.withContiguousStorageIfAvailable({ asciiPathIsValid($0, slashFirst: false) }), ascii { return nil }
        // One pass over the scalars, no substrings: this runs for every request.
        var scalars = path.unicodeScalars.makeIterator()
        guard scalars.next() == "/" else { return "a path must start with '/'" }
        var segment: [Unicode.Scalar] = []
        segment.reserveCapacity(16)
        var sawScalar = false
        func segmentProblem() -> String? {
            if segment.isEmpty { return "empty segment ('//')" }
            if segment == ["."] || segment == [".", "."] { return "relative segment '\(String(String.UnicodeScalarView(segment)))'" }
            return nil
        }
        while let u = scalars.next() {
            sawScalar = true
            let v = u.value
            if v == 0 { return "NUL character" }
            if (0x01...0x1f).contains(v) || (0x7f...0x9f).contains(v) { return "control character" }
            // The server checks UTF-16 units: a scalar above U+FFFF becomes a surrogate pair, which it refuses.
            if (0xd800...0xf8ff).contains(v) || v >= 0xfff0 { return "character not allowed in znode names" }
            if u == "/" {
                if let problem = segmentProblem() { return problem }
                segment.removeAll(keepingCapacity: true)
            } else {
                segment.append(u)
            }
        }
        if !sawScalar { return nil }                       // "/"
        if segment.isEmpty { return "a path must not end with '/'" }
        return segmentProblem()
    }

    /// Whether `"/" + relative` is a valid path, that is whether `relative` (not empty) joined to
    /// any valid path is one: the rules are about characters and segments.
    public static func relativeIsValid(_ relative: String) -> Bool {
        if let ascii = relative.utf8.withContiguousStorageIfAvailable({ asciiPathIsValid($0, slashFirst: true) }), ascii { return true }
        return problem(with: "/" + relative) == nil
    }

    /// Whether `bytes` are a valid path of printable ASCII only: a leading '/' (`slashFirst`: one
    /// is taken to stand before them), no empty, '.' or '..' segment, no trailing '/' (but "/"
    /// itself). False means "look closer", not "invalid".
    private static func asciiPathIsValid(_ bytes: UnsafeBufferPointer<UInt8>, slashFirst: Bool) -> Bool {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        let rest: Slice<UnsafeBufferPointer<UInt8>>
        if slashFirst {
            guard !bytes.isEmpty else { return false }
            rest = bytes[...]
        } else {
            guard bytes.first == slash else { return false }
            if bytes.count == 1 { return true }
            rest = bytes[1...]
        }
        // The current segment's length, and whether it holds only dots so far.
        var length = 0
        var dots = true
        for b in rest {
            if b == slash {
                if length == 0 || (dots && length <= 2) { return false }
                length = 0
                dots = true
                continue
            }
            guard b >= 0x20 && b < 0x7f else { return false }
            length += 1
            if b != dot { dots = false }
        }
        return length > 0 && !(dots && length <= 2)
    }

    /// The parent of an absolute path (`/` for a top-level node), nil for `/`.
    public static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `base` joined with a child name.
    public static func join(_ base: String, _ child: String) -> String {
        base == "/" ? "/" + child : base + "/" + child
    }
}
