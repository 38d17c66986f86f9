import FoundationEssentials
import Glibc
import ZooKeeper
import ZooKeeperRecipes

/// Reads a zkctl export straight into `BackupNode`s, without building the JSON tree of the whole
/// document: a pull reader over the bytes (`JSONParser`'s own pieces, so the JSON rules are the
/// same) that makes each node as soon as its object ends, with the checks `BackupFormat` applies
/// to a tree (`exportHeader`, `exportNode`, `place`).
///
/// It only ever says yes: any document it does not fully understand (not valid JSON, not UTF-8,
/// a zk-shell dump, a duplicate key where it matters, a value of an unexpected type, anything
/// the checks refuse) gives nil, and `BackupFormat.read` reads that document the general way,
/// which decides and words the answer exactly as before. Any layout reads: whitespace anywhere,
/// keys in any order (`root` and the other top-level fields may come after `nodes`), unknown
/// keys ignored at the top, in nodes and in ACL entries.
struct ExportDecoder {
    private var parser: JSONParser
    /// The last ACL array read: where its text was, and what it says (checked). Most nodes of an
    /// export carry the same ACL, so the same text is not read twice.
    private var lastACL: (start: Int, count: Int, acl: [ACL])? = nil
    /// Every node's data, one after another: a node's data is a slice of it (`nodeArray`), so
    /// no node has an allocation of its own for it (a `Data` of more than 14 bytes would have two).
    private var stored = Data()

    private struct Refused: Error {}

    init(parser: JSONParser) { self.parser = parser }

    /// The export in `bytes`, or nil when it must be read the general way.
    static func decode(_ bytes: [UInt8]) -> BackupSnapshot? {
        guard JSONParser.firstInvalidUTF8Offset(bytes) == nil else { return nil }
        var decoder = ExportDecoder(parser: JSONParser(bytes: bytes))
        return try? decoder.document()
    }

    private mutating func document() throws -> BackupSnapshot {
        guard parser.consume(JSONParser.openBrace), !parser.consume(JSONParser.closeBrace) else { throw Refused() }
        var format, version, root, nodeCount, skippedEphemeral, skippedUnreadable: JSONValue?
        var nodes: [BackupNode]? = nil
        var itemCount: Int? = nil
        // Where `root` was already known (and valid) when the nodes were read, their absolute
        // paths were checked on the way.
        var pathsChecked = false
        var first = true
        repeat {
            let key = try parser.parseKey(afterComma: false)
            switch key {
            case "format", "version", "root", "nodeCount", "skippedEphemeral", "skippedUnreadable":
                let value = try parser.parseValue(depth: 1)
                func set(_ slot: inout JSONValue?) throws {
                    guard slot == nil else { throw Refused() }  // a repeated key: the last one counts
                    slot = value
                }
                switch key {
                case "format": try set(&format)
                case "version": try set(&version)
                case "root": try set(&root)
                case "nodeCount": try set(&nodeCount)
                case "skippedUnreadable": try set(&skippedUnreadable)
                default: try set(&skippedEphemeral)
                }
            case "nodes":
                guard nodes == nil else { throw Refused() }
                var knownRoot = root?.stringValue
                if let r = knownRoot, PathRules.problem(with: r) != nil { knownRoot = nil }
                nodes = try nodeArray(root: knownRoot)
                itemCount = nodes?.count
                pathsChecked = knownRoot != nil
            default:
                // Keys that are znode paths: a zk-shell dump.
                if first && key.hasPrefix("/") { throw Refused() }
                _ = try parser.parseValue(depth: 1)
            }
            first = false
        } while parser.consume(JSONParser.comma)
        guard parser.consume(JSONParser.closeBrace) else { throw Refused() }
        parser.skipWhitespace()
        guard parser.pos == parser.bytes.count, format != nil, let nodes else { throw Refused() }
        let header = try BackupFormat.exportHeader(format: format, version: version, root: root, itemCount: itemCount,
                                                   nodeCount: nodeCount, skippedEphemeral: skippedEphemeral,
                                                   skippedUnreadable: skippedUnreadable)
        // The header checked the root: each path joined to it is valid when the relative one is.
        if !pathsChecked {
            for node in nodes where !node.path.isEmpty && !PathRules.relativeIsValid(node.path) {
                throw Refused()
            }
        }
        return BackupSnapshot(source: .zkctlExport, root: header.root, nodes: nodes, skippedEphemeral: header.skipped,
                              skippedUnreadable: header.unreadable)
    }

    private mutating func nodeArray(root: String?) throws -> [BackupNode] {
        guard parser.consume(JSONParser.openBracket) else { throw Refused() }
        var nodes: [BackupNode] = []
        if parser.consume(JSONParser.closeBracket) { return nodes }
        // About a hundred bytes a node: room enough for most files from the start.
        var placed = BackupFormat.Placement(capacity: parser.bytes.count / 128)
        nodes.reserveCapacity(parser.bytes.count / 128)
        // Where each node's data ends in `stored`.
        var ends: [Int] = []
        ends.reserveCapacity(parser.bytes.count / 128)
        // Reserving touches no memory, and the data is never longer than the file.
        stored.reserveCapacity(parser.bytes.count)
        repeat {
            let node = try exportNode(index: nodes.count)
            try BackupFormat.place(node, index: nodes.count, placed: &placed, root: nil)
            // `root` is valid: the path joined to it is when the relative one is.
            if root != nil, !node.path.isEmpty, !PathRules.relativeIsValid(node.path) { throw Refused() }
            nodes.append(consume node)  // not copied: no retain of its strings and arrays
            ends.append(stored.count)
        } while parser.consume(JSONParser.comma)
        guard parser.consume(JSONParser.closeBracket) else { throw Refused() }
        // Sliced once nothing more is appended: a slice taken before would make the next append copy.
        var start = 0
        for (k, end) in ends.enumerated() {
            nodes[k].data = stored[start..<end]
            start = end
        }
        return nodes
    }

    /// One ACL entry's fields.
    private typealias Entry = (scheme: String?, id: String?, perms: String?)

    /// The keys of a node object and of an ACL entry, by their index in `keys`.
    private static let keys: [[UInt8]] = ["path", "type", "data", "dataBase64", "ttl", "acl", "scheme", "id", "perms"].map { Array($0.utf8) }
    private enum Key: Int { case path, type, data, dataBase64, ttl, acl, scheme, id, perms, other }

    private mutating func exportNode(index i: Int) throws -> BackupNode {
        guard parser.consume(JSONParser.openBrace), !parser.consume(JSONParser.closeBrace) else { throw Refused() }
        var path, type, dataBase64: String?
        var hasData = false
        var ttl: Int?
        var acl: [ACL]?
        repeat {
            switch try key() {
            case .path: try string(&path)
            case .type: try string(&type)
            case .data:
                parser.skipWhitespace()
                guard !hasData, parser.peek == JSONParser.quote else { throw Refused() }
                try appendStringBytes()
                hasData = true
            case .dataBase64: try string(&dataBase64)
            case .ttl:
                parser.skipWhitespace()
                guard ttl == nil, parser.peek != JSONParser.quote, case .number(let lexeme) = try parser.parseValue(depth: 3),
                      let n = JSONValue.exactInteger(lexeme) else { throw Refused() }
                ttl = n
            case .acl:
                guard acl == nil else { throw Refused() }
                acl = try nodeACL(index: i)
            default:
                _ = try parser.parseValue(depth: 3)
            }
        } while parser.consume(JSONParser.comma)
        guard parser.consume(JSONParser.closeBrace) else { throw Refused() }
        let (checkedPath, nodeType) = try BackupFormat.nodeType(index: i, path: path, type: type, ttl: ttl)
        switch (hasData, dataBase64) {
        case (_, nil): break
        case (false, let b64?): stored.append(try BackupFormat.nodeData(index: i, path: checkedPath, data: nil, dataBase64: .string(b64)))
        case (true, _?): throw Refused()
        }
        guard let acl else { throw Refused() }
        // The data is the end of `stored`, given to the node by `nodeArray`.
        return BackupNode(path: checkedPath, type: nodeType, data: Data(), acl: acl)
    }

    /// The key before a value (pos before its opening quote), matched on its bytes; a key with
    /// escapes is decoded first.
    private mutating func key() throws -> Key {
        parser.skipWhitespace()
        guard parser.peek == JSONParser.quote else { throw Refused() }
        let start = parser.pos + 1
        var end = start
        let found: Key
        let plain: Bool = parser.bytes.withUnsafeBufferPointer { bytes in
            while end < bytes.count, bytes[end] != JSONParser.quote, bytes[end] != 0x5C, bytes[end] >= 0x20 { end += 1 }
            return end < bytes.count && bytes[end] == JSONParser.quote
        }
        if plain {
            found = Self.match(parser.bytes[start..<end])
            parser.pos = end + 1
            parser.skipWhitespace()
            guard parser.peek == UInt8(ascii: ":") else { throw Refused() }
            parser.pos += 1
        } else {
            found = Self.match(Array(try parser.parseKey(afterComma: false).utf8)[...])
        }
        return found
    }

    private static func match(_ name: ArraySlice<UInt8>) -> Key {
        for (i, k) in keys.enumerated() where k.count == name.count && k.elementsEqual(name) { return Key(rawValue: i)! }
        return .other
    }

    /// Appends a string value's decoded bytes to `stored` (pos at its opening quote). The file
    /// is valid UTF-8 and the escapes read here stand for ASCII bytes, so these are the bytes of
    /// the string the parser would make; a `\u` escape is left to the parser itself.
    private mutating func appendStringBytes() throws {
        let start = parser.pos
        let before = stored.count
        var i = start + 1
        var runStart = i
        let bytes = parser.bytes
        while true {
            guard i < bytes.count else { throw Refused() }
            let b = bytes[i]
            if b == JSONParser.quote { break }
            guard b >= 0x20 else { throw Refused() }
            guard b == 0x5C else { i += 1; continue }
            guard i + 1 < bytes.count else { throw Refused() }
            let decoded: UInt8
            switch bytes[i + 1] {
            case JSONParser.quote, 0x5C, UInt8(ascii: "/"): decoded = bytes[i + 1]
            case UInt8(ascii: "b"): decoded = 0x08
            case UInt8(ascii: "f"): decoded = 0x0C
            case UInt8(ascii: "n"): decoded = 0x0A
            case UInt8(ascii: "r"): decoded = 0x0D
            case UInt8(ascii: "t"): decoded = 0x09
            default:
                parser.pos = start
                stored.removeSubrange(before...)
                stored.append(contentsOf: try parser.parseString().utf8)
                return
            }
            append(bytes, runStart..<i)
            stored.append(decoded)
            i += 2
            runStart = i
        }
        parser.pos = i + 1
        append(bytes, runStart..<i)
    }

    private mutating func append(_ bytes: [UInt8], _ range: Range<Int>) {
        bytes.withUnsafeBufferPointer { stored.append(UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// A node's ACL array, checked; the same text as the last one read is the same ACL.
    private mutating func nodeACL(index i: Int) throws -> [ACL] {
        parser.skipWhitespace()
        let start = parser.pos
        if let last = lastACL, start + last.count <= parser.bytes.count {
            let same = parser.bytes.withUnsafeBufferPointer { b in
                memcmp(b.baseAddress! + last.start, b.baseAddress! + start, last.count) == 0
            }
            if same {
                parser.pos = start + last.count
                return last.acl
            }
        }
        let entries = try aclEntries()
        // Any problem is left to the general reader, which words it: no message is needed here.
        let acl = try BackupFormat.nodeACL(index: i, path: "", entries: entries, describe: { _ in "" }, fields: { $0 })
        lastACL = (start, parser.pos - start, acl)
        return acl
    }

    private mutating func aclEntries() throws -> [Entry] {
        guard parser.consume(JSONParser.openBracket), !parser.consume(JSONParser.closeBracket) else { throw Refused() }
        var entries: [Entry] = []
        repeat {
            guard parser.consume(JSONParser.openBrace), !parser.consume(JSONParser.closeBrace) else { throw Refused() }
            var scheme, id, perms: String?
            repeat {
                switch try key() {
                case .scheme: try string(&scheme)
                case .id: try string(&id)
                case .perms: try string(&perms)
                default: _ = try parser.parseValue(depth: 5)
                }
            } while parser.consume(JSONParser.comma)
            guard parser.consume(JSONParser.closeBrace) else { throw Refused() }
            entries.append((scheme, id, perms))
        } while parser.consume(JSONParser.comma)
        guard parser.consume(JSONParser.closeBracket) else { throw Refused() }
        return entries
    }

    /// A string value for a key met once; anything else is left to the general reader.
    private mutating func string(_ slot: inout String?) throws {
        parser.skipWhitespace()
        guard slot == nil, parser.peek == JSONParser.quote else { throw Refused() }
        slot = try parser.parseString()
    }
}
