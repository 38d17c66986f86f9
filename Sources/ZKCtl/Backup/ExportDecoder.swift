import Foundation
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

    private struct Refused: Error {}

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
        if !pathsChecked {
            for node in nodes where PathRules.problem(with: BackupFormat.absolute(node.path, under: header.root)) != nil {
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
        var seen = Set<String>(minimumCapacity: parser.bytes.count / 128)
        nodes.reserveCapacity(parser.bytes.count / 128)
        repeat {
            let node = try exportNode(index: nodes.count)
            try BackupFormat.place(node, index: nodes.count, seen: &seen, root: root)
            nodes.append(node)
        } while parser.consume(JSONParser.comma)
        guard parser.consume(JSONParser.closeBracket) else { throw Refused() }
        return nodes
    }

    /// One ACL entry's fields.
    private typealias Entry = (scheme: String?, id: String?, perms: String?)

    private mutating func exportNode(index i: Int) throws -> BackupNode {
        guard parser.consume(JSONParser.openBrace), !parser.consume(JSONParser.closeBrace) else { throw Refused() }
        var path, type, data, dataBase64: String?
        var ttl: Int?
        var acl: [Entry]?
        repeat {
            let key = try parser.parseKey(afterComma: false)
            switch key {
            case "path": try string(&path)
            case "type": try string(&type)
            case "data": try string(&data)
            case "dataBase64": try string(&dataBase64)
            case "ttl":
                parser.skipWhitespace()
                guard ttl == nil, parser.peek != JSONParser.quote, case .number(let lexeme) = try parser.parseValue(depth: 3),
                      let n = JSONValue.exactInteger(lexeme) else { throw Refused() }
                ttl = n
            case "acl":
                guard acl == nil else { throw Refused() }
                acl = try aclEntries()
            default:
                _ = try parser.parseValue(depth: 3)
            }
        } while parser.consume(JSONParser.comma)
        guard parser.consume(JSONParser.closeBrace) else { throw Refused() }
        return try BackupFormat.exportNode(index: i, path: path, type: type, ttl: ttl, data: data.map(JSONValue.string),
                                           dataBase64: dataBase64.map(JSONValue.string), acl: acl,
                                           describe: { _ in "" }, fields: { $0 })
    }

    private mutating func aclEntries() throws -> [Entry] {
        guard parser.consume(JSONParser.openBracket), !parser.consume(JSONParser.closeBracket) else { throw Refused() }
        var entries: [Entry] = []
        repeat {
            guard parser.consume(JSONParser.openBrace), !parser.consume(JSONParser.closeBrace) else { throw Refused() }
            var scheme, id, perms: String?
            repeat {
                let key = try parser.parseKey(afterComma: false)
                switch key {
                case "scheme": try string(&scheme)
                case "id": try string(&id)
                case "perms": try string(&perms)
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
