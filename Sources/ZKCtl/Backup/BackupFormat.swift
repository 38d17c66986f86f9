import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

// The export format (docs/export-format.md is the reference for users) and the reader of
// zk-shell's `json://` dumps. Pure code: nothing here talks to a server.

/// What kind of znode a stat describes, read from its `ephemeralOwner`.
///
/// The C client's Stat has no type field; ZooKeeper marks the extended types in `ephemeralOwner`
/// (org.apache.zookeeper.server.EphemeralType):
/// - 0: an ordinary persistent node;
/// - `Long.MIN_VALUE` (0x8000000000000000, `CONTAINER_EPHEMERAL_OWNER`): a container;
/// - high byte 0xff (`EXTENDED_MASK`) with the next two bytes 0 (`EXTENDED_BIT_TTL`): a TTL node
///   whose TTL in milliseconds is the low five bytes (`EXTENDED_FEATURE_VALUE_MASK`);
/// - anything else: the session id owning an ephemeral node.
enum ZnodeKind: Sendable, Hashable {
    case persistent
    case container
    case ttl(milliseconds: Int64)
    case ephemeral

    static let containerOwner = Int64.min
    static let extendedMask: UInt64 = 0xff00_0000_0000_0000
    static let reservedMask: UInt64 = 0x00ff_ff00_0000_0000
    static let ttlValueMask: UInt64 = 0x0000_00ff_ffff_ffff
    /// The largest TTL the server accepts (EphemeralType.TTL.maxValue()).
    static let maxTTL = Int64(ttlValueMask)

    init(ephemeralOwner owner: Int64) {
        if owner == 0 { self = .persistent; return }
        if owner == Self.containerOwner { self = .container; return }
        let bits = UInt64(bitPattern: owner)
        // An extended owner whose feature bits are not TTL's (none exists today) is treated as
        // ephemeral: left out, never guessed at.
        if bits & Self.extendedMask == Self.extendedMask, bits & Self.reservedMask == 0 {
            self = .ttl(milliseconds: Int64(bits & Self.ttlValueMask))
            return
        }
        self = .ephemeral
    }
}

/// The type of a persistent node as the export records it.
enum BackupNodeType: Sendable, Hashable {
    case persistent
    case container
    case ttl(milliseconds: Int64)

    var name: String {
        switch self {
        case .persistent: return "persistent"
        case .container: return "container"
        case .ttl: return "ttl"
        }
    }

    var createMode: CreateMode {
        switch self {
        case .persistent: return .persistent
        case .container: return .container
        case .ttl(let ms): return .persistentWithTTL(milliseconds: ms)
        }
    }

    init?(_ kind: ZnodeKind) {
        switch kind {
        case .persistent: self = .persistent
        case .container: self = .container
        case .ttl(let ms): self = .ttl(milliseconds: ms)
        case .ephemeral: return nil
        }
    }
}

/// One node of a snapshot (an export file, a zk-shell dump, or a live subtree).
struct BackupNode: Sendable, Hashable {
    /// Relative to the snapshot's root: "" for the root itself, "a/b" below it.
    var path: String
    var type: BackupNodeType
    /// nil only for a node a zk-shell dump implies but does not hold (an intermediate path):
    /// such a node must exist, and nothing else about it is compared.
    var data: Data?
    var acl: [ACL]?

    var isImplied: Bool { data == nil }
}

/// A whole tree read from a file or a server.
struct BackupSnapshot: Sendable {
    enum Source: String, Sendable { case zkctlExport = "zkctl-export", zkShell = "zk-shell", live }
    var source: Source
    /// The absolute path the relative paths hang from.
    var root: String
    /// Parents before children.
    var nodes: [BackupNode]
    var skippedEphemeral: Int
    /// Nodes the export could not read (relative paths, each standing for its subtree): not in
    /// `nodes`, and not known.
    var skippedUnreadable: [String] = []
}

enum BackupFormat {
    static let formatName = "zkctl-export"
    static let version = 1

    // MARK: Paths

    /// `path` relative to `root` ("" for the root itself); nil when it is not inside.
    static func relative(_ path: String, to root: String) -> String? {
        if path == root { return "" }
        if root == "/" { return path.hasPrefix("/") ? String(path.dropFirst()) : nil }
        guard path.hasPrefix(root + "/") else { return nil }
        return String(path.dropFirst(root.count + 1))
    }

    /// The absolute path of relative `rel` under `root`.
    static func absolute(_ rel: String, under root: String) -> String {
        rel.isEmpty ? root : PathRules.join(root, rel)
    }

    /// The parent of a relative path ("" for a top-level one), nil for the root.
    static func relativeParent(_ rel: String) -> String? {
        if rel.isEmpty { return nil }
        guard let slash = rel.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        return String(rel[..<slash])
    }

    /// How a relative path is shown to people: "." for the root.
    static func display(_ rel: String) -> String { rel.isEmpty ? "." : rel }

    /// Orders relative paths so that every parent comes before its children and siblings are
    /// sorted by name.
    static func treeOrder(_ a: String, _ b: String) -> Bool {
        let x = a.split(separator: "/"), y = b.split(separator: "/")
        for (p, q) in zip(x, y) where p != q { return p < q }
        return x.count < y.count
    }

    // MARK: Values

    /// The bytes as text when they are valid UTF-8 (exactly, byte for byte), else nil.
    static func text(_ data: Data) -> String? {
        let s = String(decoding: data, as: UTF8.self)
        return s.utf8.elementsEqual(data) ? s : nil
    }

    static func aclJSON(_ acl: [ACL]) -> JSONValue {
        .array(acl.map { a in
            .object(JSONObject([("scheme", .string(a.scheme)), ("id", .string(a.id)), ("perms", .string(a.permissions.letters))]))
        })
    }

    /// ACLs compare as sets: the server keeps the order it was given, which says nothing. A
    /// digest entry the server redacted (`user:x`, see `isRedacted`) matches any digest entry of
    /// the same user with the same permissions.
    static func sameACL(_ a: [ACL], _ b: [ACL]) -> Bool {
        guard a.count == b.count else { return false }
        if Set(a) == Set(b) { return true }
        guard a.contains(where: isRedacted) || b.contains(where: isRedacted) else { return false }
        var rest = b
        for x in a {
            guard let i = rest.firstIndex(where: { y in
                x == y || (x.scheme == "digest" && y.scheme == "digest" && x.permissions == y.permissions
                           && (isRedacted(x) || isRedacted(y)) && digestUser(x) == digestUser(y))
            }) else { return false }
            rest.remove(at: i)
        }
        return true
    }

    /// ZooKeeper 3.6+ answers getACL from a session without ADMIN permission on the node with
    /// every digest id rewritten to `user:x` (FinalRequestProcessor). A real digest id is
    /// `user:` + 28 base64 characters, so `x` never is one.
    static func isRedacted(_ entry: ACL) -> Bool {
        entry.scheme == "digest" && entry.id.hasSuffix(":x")
    }

    private static func digestUser(_ entry: ACL) -> Substring {
        entry.id.prefix { $0 != ":" }
    }

    // MARK: Writing

    /// The document's opening, up to and including `"nodes":[`.
    static func header(root: String, exported: Date) -> String {
        let ms = Int64((exported.timeIntervalSince1970 * 1000).rounded())
        return "{\"format\":\(JSONValue.quoted(formatName)),\"version\":\(version),\"root\":\(JSONValue.quoted(root)),"
            + "\"exported\":\(JSONValue.quoted(isoTime(ms))),\"nodes\":[\n"
    }

    /// One node, one line (without separators).
    static func nodeLine(_ node: BackupNode) -> String {
        var o = JSONObject()
        o["path"] = .string(node.path)
        o["type"] = .string(node.type.name)
        if case .ttl(let ms) = node.type { o["ttl"] = .int(Int(ms)) }
        let data = node.data ?? Data()
        if let text = text(data) {
            o["data"] = .string(text)
        } else {
            o["dataBase64"] = .string(data.base64EncodedString())
        }
        o["acl"] = aclJSON(node.acl ?? ACL.openUnsafe)
        return JSONValue.object(o).compact()
    }

    /// The document's end, after the last node. `skippedUnreadable` (paths relative to the root,
    /// of nodes the session could not read, each standing for its subtree) is written only when
    /// there are some.
    static func footer(nodeCount: Int, skippedEphemeral: Int, skippedUnreadable: [String] = []) -> String {
        var text = "\n],\"nodeCount\":\(nodeCount),\"skippedEphemeral\":\(skippedEphemeral)"
        if !skippedUnreadable.isEmpty {
            text += ",\"skippedUnreadable\":" + JSONValue.array(skippedUnreadable.map { .string($0) }).compact()
        }
        return text + "}\n"
    }

    // MARK: Reading

    struct FormatError: Error, CustomStringConvertible {
        var message: String
        init(_ message: String) { self.message = message }
        var description: String { message }
    }

    /// Reads an export or a zk-shell dump, checking all of it.
    static func read(_ data: Data) throws(FormatError) -> BackupSnapshot {
        try read(bytes: [UInt8](data))
    }

    /// Reads an export or a zk-shell dump, checking all of it. A well-formed export is decoded
    /// straight into nodes (`ExportDecoder`); anything else (a zk-shell dump, or a document with
    /// any problem) is parsed whole and read from its JSON tree, which is also what words every
    /// error, so that both ways accept the same documents and refuse the rest with the same
    /// message.
    static func read(bytes: [UInt8]) throws(FormatError) -> BackupSnapshot {
        if let snapshot = ExportDecoder.decode(bytes) { return snapshot }
        return try readTree(bytes)
    }

    /// The general reader: parses the whole document into a JSON tree and reads that.
    static func readTree(_ bytes: [UInt8]) throws(FormatError) -> BackupSnapshot {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: bytes)
        } catch {
            let end = error.offset >= bytes.count ? " (the file ends early: truncated?)" : ""
            throw FormatError("not valid JSON at byte \(error.offset): \(error.message)\(end)")
        }
        guard case .object(let top) = value else {
            throw FormatError("expected a JSON object (a zkctl export or a zk-shell dump), found \(value.typePhrase)")
        }
        if top.contains(key: "format") {
            return try readExport(top)
        }
        if !top.isEmpty, top.keys.allSatisfy({ $0.hasPrefix("/") }) {
            return try readZKShell(top)
        }
        throw FormatError("neither a zkctl export (no \"format\" field) nor a zk-shell dump (keys are not znode paths)")
    }

    static func readExport(_ top: JSONObject) throws(FormatError) -> BackupSnapshot {
        let array = top["nodes"]?.arrayValue
        let header = try exportHeader(format: top["format"], version: top["version"], root: top["root"], itemCount: array?.count,
                                      nodeCount: top["nodeCount"], skippedEphemeral: top["skippedEphemeral"],
                                      skippedUnreadable: top["skippedUnreadable"])
        let items = array ?? []
        var placed = Placement(capacity: items.count)
        var nodes: [BackupNode] = []
        nodes.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            let node = try readExportNode(item, index: i)
            try place(node, index: i, placed: &placed, root: header.root)
            nodes.append(node)
        }
        return BackupSnapshot(source: .zkctlExport, root: header.root, nodes: nodes, skippedEphemeral: header.skipped,
                              skippedUnreadable: header.unreadable)
    }

    /// Checks an export's top-level fields (`itemCount`: the length of `nodes`, nil when it is
    /// missing or not an array); both readers come here.
    static func exportHeader(format: JSONValue?, version v: JSONValue?, root r: JSONValue?, itemCount: Int?,
                             nodeCount: JSONValue?, skippedEphemeral: JSONValue?,
                             skippedUnreadable: JSONValue? = nil) throws(FormatError) -> (root: String, skipped: Int, unreadable: [String]) {
        guard format?.stringValue == formatName else {
            throw FormatError("unknown format \(format.map { $0.compact() } ?? "null"); expected \"\(formatName)\"")
        }
        guard let v = v?.intValue else { throw FormatError("missing or non-integer \"version\"") }
        guard v == version else { throw FormatError("export format version \(v) is not supported (this zkctl reads version \(version))") }
        guard let root = r?.stringValue else { throw FormatError("missing \"root\"") }
        if let problem = PathRules.problem(with: root) { throw FormatError("bad root '\(root)': \(problem)") }
        guard let itemCount else { throw FormatError("missing \"nodes\" array") }
        var skipped = 0
        if let s = skippedEphemeral {
            guard let n = s.intValue, n >= 0 else { throw FormatError("\"skippedEphemeral\" must be a whole number") }
            skipped = n
        }
        if let c = nodeCount {
            guard let n = c.intValue, n == itemCount else {
                throw FormatError("\"nodeCount\" says \(c.compact()) but the file holds \(itemCount) nodes")
            }
        }
        var unreadable: [String] = []
        if let u = skippedUnreadable {
            guard let items = u.arrayValue else { throw FormatError("\"skippedUnreadable\" must be an array of paths") }
            for item in items {
                guard let path = item.stringValue, !path.isEmpty else {
                    throw FormatError("\"skippedUnreadable\" must hold relative paths, found \(item.compact())")
                }
                unreadable.append(path)
            }
        }
        return (root, skipped, unreadable)
    }

    /// The paths placed so far (`place`).
    struct Placement {
        var seen: Set<String>
        /// The parent of the last node placed, known to be in `seen` (siblings come together).
        var lastParent: String? = nil

        init(capacity: Int) { seen = Set(minimumCapacity: capacity) }
    }

    /// Checks where node `i` stands: the first is the root, every other one comes once and after
    /// its parent (`placed`: the paths so far, this one is added), and, when `root` is known, its
    /// absolute path is valid.
    static func place(_ node: BackupNode, index i: Int, placed: inout Placement, root: String?) throws(FormatError) {
        if i == 0 {
            guard node.path.isEmpty else { throw FormatError("node 0 must be the root (path \"\"), found '\(node.path)'") }
        } else {
            guard placed.seen.insert(node.path).inserted else { throw FormatError("node \(i): '\(node.path)' appears twice") }
            guard let parent = relativeParent(node.path), parent == placed.lastParent || placed.seen.contains(parent) else {
                throw FormatError("node \(i): '\(node.path)' comes before its parent (parents must come first)")
            }
            placed.lastParent = parent
        }
        if let root, let problem = PathRules.problem(with: absolute(node.path, under: root)) {
            throw FormatError("node \(i): bad path '\(node.path)': \(problem)")
        }
        if i == 0 { placed.seen.insert(node.path) }
    }

    private static func readExportNode(_ item: JSONValue, index i: Int) throws(FormatError) -> BackupNode {
        guard case .object(let o) = item else { throw FormatError("node \(i): expected an object") }
        let entries: [JSONValue]?
        if case .array(let a)? = o["acl"] { entries = a } else { entries = nil }
        return try exportNode(index: i, path: o["path"]?.stringValue, type: o["type"]?.stringValue, ttl: o["ttl"]?.intValue,
                              data: o["data"], dataBase64: o["dataBase64"], acl: entries, describe: { $0.compact() }) { entry in
            guard case .object(let e) = entry else { return nil }
            return (e["scheme"]?.stringValue, e["id"]?.stringValue, e["perms"]?.stringValue)
        }
    }

    /// Checks one node of an export and makes it (the general reader; the decoder uses the same
    /// pieces: `nodeType`, `nodeData`, `nodeACL`), with what was found under each key (nil:
    /// absent, or for `path`, `type`, `ttl` and the ACL fields, not a string or integer; `acl`
    /// nil: absent or not an array). `fields` gives an ACL entry's scheme, id and perms (nil: the
    /// entry is not an object), `describe` shows an entry in messages.
    static func exportNode<Entry>(index i: Int, path: String?, type: String?, ttl: Int?, data: JSONValue?, dataBase64: JSONValue?,
                                  acl entries: [Entry]?, describe: (Entry) -> String,
                                  fields: (Entry) -> (scheme: String?, id: String?, perms: String?)?) throws(FormatError) -> BackupNode {
        let (path, nodeType) = try nodeType(index: i, path: path, type: type, ttl: ttl)
        let bytes = try nodeData(index: i, path: path, data: data, dataBase64: dataBase64)
        let acl = try nodeACL(index: i, path: path, entries: entries, describe: describe, fields: fields)
        return BackupNode(path: path, type: nodeType, data: bytes, acl: acl)
    }

    /// A node's path (present, relative) and type (with its TTL).
    static func nodeType(index i: Int, path: String?, type: String?, ttl: Int?) throws(FormatError) -> (String, BackupNodeType) {
        guard let path else { throw FormatError("node \(i): missing \"path\"") }
        if path.hasPrefix("/") || path.hasSuffix("/") {
            throw FormatError("node \(i): path '\(path)' must be relative to the root (no leading or trailing '/')")
        }
        switch type ?? "persistent" {
        case "persistent": return (path, .persistent)
        case "container": return (path, .container)
        case "ttl":
            guard let ms = ttl, ms > 0, Int64(ms) <= ZnodeKind.maxTTL else {
                throw FormatError("node \(i) ('\(path)'): a ttl node needs \"ttl\", milliseconds from 1 to \(ZnodeKind.maxTTL)")
            }
            return (path, .ttl(milliseconds: Int64(ms)))
        case let other:
            throw FormatError("node \(i) ('\(path)'): unknown type '\(other)' (persistent, container or ttl)")
        }
    }

    /// A node's bytes from `data` (text) or `dataBase64`.
    static func nodeData(index i: Int, path: String, data: JSONValue?, dataBase64: JSONValue?) throws(FormatError) -> Data {
        switch (data, dataBase64) {
        case (let text?, nil):
            guard let s = text.stringValue else { throw FormatError("node \(i) ('\(path)'): \"data\" must be a string") }
            return Data(s.utf8)
        case (nil, let b64?):
            guard let s = b64.stringValue, let d = Data(base64Encoded: s) else {
                throw FormatError("node \(i) ('\(path)'): \"dataBase64\" is not valid base64")
            }
            return d
        case (nil, nil):
            return Data()
        case (_?, _?):
            throw FormatError("node \(i) ('\(path)'): give \"data\" or \"dataBase64\", not both")
        }
    }

    /// A node's ACL from its entries.
    static func nodeACL<Entry>(index i: Int, path: String, entries: [Entry]?, describe: (Entry) -> String,
                               fields: (Entry) -> (scheme: String?, id: String?, perms: String?)?) throws(FormatError) -> [ACL] {
        guard let entries else { throw FormatError("node \(i) ('\(path)'): missing \"acl\" array") }
        guard !entries.isEmpty else { throw FormatError("node \(i) ('\(path)'): empty \"acl\" (ZooKeeper refuses it)") }
        var acl: [ACL] = []
        acl.reserveCapacity(entries.count)
        for entry in entries {
            guard let f = fields(entry), let scheme = f.scheme, !scheme.isEmpty, let id = f.id, let letters = f.perms,
                  let perms = letters.isEmpty ? Permissions() : Permissions(letters: letters) else {
                throw FormatError("node \(i) ('\(path)'): bad ACL entry \(describe(entry)) (expected {\"scheme\",\"id\",\"perms\":\"cdrwa\"})")
            }
            let a = ACL(permissions: perms, scheme: scheme, id: id)
            if isRedacted(a) {
                throw FormatError("node \(i) ('\(path)'): ACL entry digest:\(id) was hidden by the server when exported (the exporting session had no admin permission there); export again with --auth as a user that has it")
            }
            acl.append(a)
        }
        return acl
    }

    /// zk-shell's `cp ... json://FILE/path` dump: one flat object keyed by absolute znode path,
    /// each value `{"content": base64 or null, "acls": [{"perms": int, "id": {"scheme", "id"}}]}`.
    /// Missing perms mean all, a missing id world:anyone, no entries the open ACL (as zk-shell
    /// reads them). The root is the deepest path holding every key; paths the dump implies but
    /// does not hold are created empty.
    static func readZKShell(_ top: JSONObject) throws(FormatError) -> BackupSnapshot {
        var root: [Substring]? = nil
        for key in top.keys {
            if let problem = PathRules.problem(with: key) { throw FormatError("zk-shell dump: bad path '\(key)': \(problem)") }
            let parts = key.split(separator: "/")
            if let r = root {
                root = Array(zip(r, parts).prefix { $0.0 == $0.1 }.map(\.0))
            } else {
                root = parts
            }
        }
        let rootPath = "/" + (root ?? []).joined(separator: "/")
        var byPath: [String: BackupNode] = [:]
        for (key, value) in top {
            guard let rel = relative(key, to: rootPath) else { continue }
            guard case .object(let o) = value else { throw FormatError("zk-shell dump: '\(key)' is not an object") }
            var data = Data()
            switch o["content"] {
            case nil, .null?: break
            case .string(let s)?:
                guard let d = Data(base64Encoded: s) else { throw FormatError("zk-shell dump: '\(key)': \"content\" is not valid base64") }
                data = d
            case let other?: throw FormatError("zk-shell dump: '\(key)': \"content\" must be a base64 string, found \(other.typeName)")
            }
            var acl: [ACL] = []
            switch o["acls"] {
            case nil, .null?: break
            case .array(let entries)?:
                for entry in entries {
                    guard case .object(let e) = entry else { throw FormatError("zk-shell dump: '\(key)': bad ACL entry \(entry.compact())") }
                    var perms = Permissions.all
                    if let p = e["perms"] {
                        guard let n = p.intValue, (0...31).contains(n) else {
                            throw FormatError("zk-shell dump: '\(key)': bad ACL perms \(p.compact())")
                        }
                        perms = Permissions(rawValue: Int32(n))
                    }
                    var scheme = "world", id = "anyone"
                    if let idValue = e["id"] {
                        guard case .object(let i) = idValue else { throw FormatError("zk-shell dump: '\(key)': bad ACL id \(idValue.compact())") }
                        if let s = i["scheme"] { guard let t = s.stringValue else { throw FormatError("zk-shell dump: '\(key)': bad ACL scheme") }; scheme = t }
                        if let s = i["id"] { guard let t = s.stringValue else { throw FormatError("zk-shell dump: '\(key)': bad ACL id") }; id = t }
                    }
                    acl.append(ACL(permissions: perms, scheme: scheme, id: id))
                }
            case let other?: throw FormatError("zk-shell dump: '\(key)': \"acls\" must be an array, found \(other.typeName)")
            }
            byPath[rel] = BackupNode(path: rel, type: .persistent, data: data, acl: acl.isEmpty ? ACL.openUnsafe : acl)
        }
        // Fill in implied intermediate paths, then order parents first.
        for rel in Array(byPath.keys) {
            var p = relativeParent(rel)
            while let q = p, byPath[q] == nil {
                byPath[q] = BackupNode(path: q, type: .persistent, data: nil, acl: nil)
                p = relativeParent(q)
            }
        }
        let nodes = byPath.keys.sorted(by: treeOrder).compactMap { byPath[$0] }
        return BackupSnapshot(source: .zkShell, root: rootPath, nodes: nodes, skippedEphemeral: 0)
    }
}
