import FoundationEssentials
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// The pieces of `zkctl config` that are plain logic (unit tested in ConfigUnitTests).
enum ConfigSupport {
    // MARK: Keys

    /// Why `key` cannot be a config key, or nil.
    static func keyProblem(_ key: String, nested: Bool) -> String? {
        // One pass over the bytes for a good printable-ASCII key; any other key, and every key
        // with a problem, goes the long way, which words the answer.
        if key.utf8.withContiguousStorageIfAvailable({ asciiKeyIsGood($0, nested: nested) }) == true { return nil }
        if key.isEmpty { return "a key cannot be empty" }
        let bytes = key.utf8
        let slash = UInt8(ascii: "/")
        // Printable ASCII (most keys) needs no look at the characters.
        if !bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            for scalar in key.unicodeScalars {
                let v = scalar.value
                if v < 0x20 || (0x7f...0x9f).contains(v) { return "a key cannot hold control characters" }
                // ZooKeeper (Java, UTF-16) refuses surrogates, so nothing beyond U+FFFF (emoji).
                if v > 0xffff { return "ZooKeeper does not allow characters beyond U+FFFF (such as emoji) in names" }
            }
        }
        if bytes.contains(slash) {
            guard nested else { return "a key cannot hold '/' (use --nested for nested keys)" }
            if bytes.first == slash || bytes.last == slash { return "a nested key cannot start or end with '/'" }
            for part in bytes.split(separator: slash, omittingEmptySubsequences: false) {
                if part.isEmpty { return "a nested key cannot hold an empty part ('//')" }
                if part.elementsEqual(".".utf8) || part.elementsEqual("..".utf8) { return "a key cannot be '.' or '..'" }
            }
        }
        if key == "." || key == ".." { return "a key cannot be '.' or '..'" }
        return nil
    }

    /// Whether `bytes` are a good key of printable ASCII: not empty, not '.' or '..', and with
    /// '/' only when `nested`, between parts that are neither empty, '.' nor '..'.
    private static func asciiKeyIsGood(_ bytes: UnsafeBufferPointer<UInt8>, nested: Bool) -> Bool {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var length = 0, dots = 0
        for b in bytes {
            guard b >= 0x20 && b < 0x7f else { return false }
            if b == slash {
                guard nested, length > 0, !(dots == length && length <= 2) else { return false }
                length = 0
                dots = 0
                continue
            }
            length += 1
            if b == dot { dots += 1 }
        }
        return length > 0 && !(dots == length && length <= 2)
    }

    /// The znode path of `key`; a bad key is a usage error (exit 64).
    static func path(for key: String, root: String, nested: Bool, command: [String]) throws -> String {
        if let problem = keyProblem(key, nested: nested) {
            throw UsageError("bad key '\(printable(key))': \(problem)", command: command)
        }
        let path = PathRules.join(root, key)
        if let problem = PathRules.problem(with: path) {
            throw UsageError("bad key '\(printable(key))': \(problem)", command: command)
        }
        return path
    }

    /// The key of a znode path under `root`.
    static func key(for path: String, root: String) -> String {
        if root == "/" { return String(path.dropFirst()) }
        guard path.hasPrefix(root + "/") else { return path }
        return String(path.dropFirst(root.count + 1))
    }

    /// A key as one safe line (control characters escaped).
    static func printable(_ key: String) -> String {
        var out = ""
        for scalar in key.unicodeScalars {
            if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) {
                out += "\\x" + paddedHex(scalar.value, width: 2)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    // MARK: Values

    /// A value as typed or read: its JSON when it is valid JSON, else a string, except that text
    /// meant as a JSON object, array or string (starting with `{`, `[` or `"`) must parse. Text
    /// read from a file or stdin loses one trailing newline when it becomes a string. `hint` says
    /// how to store such text anyway.
    static func value(from input: Data, fromArgument: Bool, forceString: Bool, what: String,
                      hint: String = "use --string to store it as text") throws -> JSONValue {
        guard var text = String(data: input, encoding: .utf8) else {
            throw CommandError.badData("\(what) is not valid UTF-8 (use --raw to store bytes as they are)")
        }
        if !forceString {
            do {
                return try JSONValue.parse(text)
            } catch where JSONValue.isMeantAsJSON(text) {
                throw CommandError.badData("\(what) is not valid JSON (\(error)); \(hint)")
            } catch {
                // A bare word, an address, a version or a date: a string.
            }
        }
        if !fromArgument {
            if text.hasSuffix("\r\n") { text.removeLast() } else if text.hasSuffix("\n") { text.removeLast() }
        }
        return .string(text)
    }

    /// What a stored value means: its JSON, or a string for anything else (a base64 object when
    /// the bytes are not even UTF-8).
    static func decode(_ data: Data) -> JSONValue {
        if let value = try? JSONValue.parse(data) { return value }
        return jsonData(data)
    }

    /// The stored form of a value: compact JSON, UTF-8.
    static func encode(_ value: JSONValue) -> Data {
        Data(value.compact().utf8)
    }

    /// Refuses a value that ZooKeeper would not take in one request.
    static func checkSize(key: String, path: String, data: Data, acl: [ACL]) throws {
        let size = ZooKeeperClient.estimatedMultiSize([]) + MultiOp.create(path, data: data, acl: acl).estimatedSize  // of [that create], no array made
        if size > ZooKeeperClient.maxPacketSize {
            let room = data.count - (size - ZooKeeperClient.maxPacketSize)
            throw CommandError.badData("value for '\(printable(key))' is \(data.count) bytes; ZooKeeper takes at most about \(room) bytes in one znode (jute.maxbuffer, 1 MB)")
        }
    }

    // MARK: Writing

    enum Stored: Sendable {
        case json(JSONValue)
        case rawBytes(Data)
        var data: Data {
            switch self {
            case .json(let v): return ConfigSupport.encode(v)
            case .rawBytes(let d): return d
            }
        }
    }

    enum Change: Sendable {
        case replace(Stored)
        case setField(JSONValue)
        case merge(JSONObject)
    }

    /// Applies `change` to the value at `path`: a replacement is written directly; a field set
    /// or merge reads the object, changes it and writes it back with the version it read,
    /// trying again when someone else wrote in between.
    static func write(_ zk: ZooKeeperClient, key: String, path: String, fields: [String], change: Change,
                      ifVersion: Int32?, ifAbsent: Bool, acl: [ACL]) async throws -> (version: Int32, created: Bool) {
        if case .replace(let stored) = change {
            let data = stored.data
            try checkSize(key: key, path: path, data: data, acl: acl)
            if ifAbsent {
                do {
                    try await zk.create(path, data: data, acl: acl, createParents: true)
                    return (0, true)
                } catch ZooKeeperError.Code.nodeExists {
                    throw CommandError.conflict("config key '\(key)' already exists")
                }
            }
            if let ifVersion {
                do {
                    return (try await zk.set(path, data: data, version: ifVersion).version, false)
                } catch ZooKeeperError.Code.badVersion {
                    throw CommandError.conflict("config key '\(key)' does not have version \(ifVersion) (changed by someone else)")
                } catch ZooKeeperError.Code.noNode {
                    throw CommandError.conflict("config key '\(key)' does not exist (expected version \(ifVersion))")
                }
            }
            for attempt in 1...maxAttempts {
                do {
                    return (try await zk.set(path, data: data).version, false)
                } catch ZooKeeperError.Code.noNode {
                    do {
                        try await zk.create(path, data: data, acl: acl, createParents: true)
                        return (0, true)
                    } catch ZooKeeperError.Code.nodeExists {
                        try await pause(attempt)   // created meanwhile: set it
                    }
                }
            }
            throw CommandError.conflict("config key '\(key)' kept changing; gave up after \(maxAttempts) attempts")
        }

        for attempt in 1...maxAttempts {
            var current: JSONValue = .object(JSONObject())
            var stat: Stat? = nil
            do {
                let (data, s) = try await zk.get(path)
                stat = s
                if !data.isEmpty {
                    do { current = try JSONValue.parse(data) } catch {
                        throw CommandError.badData("config key '\(key)' does not hold JSON (\(error)); cannot set a field in it")
                    }
                }
            } catch ZooKeeperError.Code.noNode {
                stat = nil
            }
            if ifAbsent && stat != nil { throw CommandError.conflict("config key '\(key)' already exists") }
            if let ifVersion, stat?.version != ifVersion {
                throw CommandError.conflict(stat == nil ? "config key '\(key)' does not exist (expected version \(ifVersion))"
                                                        : "config key '\(key)' has version \(stat!.version), not \(ifVersion)")
            }
            var updated = current
            do {
                switch change {
                case .setField(let value):
                    try updated.setValue(value, at: fields)
                case .merge(let object):
                    let base = fields.isEmpty ? current : current.value(at: fields)
                    switch base {
                    case nil:
                        try updated.setValue(.object(object), at: fields)
                    case .object(let existing)?:
                        try updated.setValue(.object(existing.merging(object)), at: fields)
                    case let other?:
                        let place = fields.isEmpty ? "the value of '\(key)'" : "field '\(fields.joined(separator: "."))' of '\(key)'"
                        throw CommandError.badData("cannot merge into \(place): it is \(other.typePhrase), not an object")
                    }
                case .replace:
                    break
                }
            } catch let error as JSONPathError {
                throw CommandError.badData("config key '\(key)': \(error)")
            }
            let data = encode(updated)
            try checkSize(key: key, path: path, data: data, acl: acl)
            do {
                if let stat {
                    return (try await zk.set(path, data: data, version: stat.version).version, false)
                }
                try await zk.create(path, data: data, acl: acl, createParents: true)
                return (0, true)
            } catch let error as ZooKeeperError where error.code == .badVersion || error.code == .nodeExists || error.code == .noNode {
                if ifVersion != nil || ifAbsent {
                    throw CommandError.conflict("config key '\(key)' was changed by someone else")
                }
                try await pause(attempt)
            }
        }
        throw CommandError.conflict("config key '\(key)' kept changing; gave up after \(maxAttempts) attempts")
    }

    static let maxAttempts = 200

    /// A short random pause before trying again, so that contenders spread out.
    static func pause(_ attempt: Int) async throws {
        try await Task.sleep(for: .milliseconds(Int.random(in: 1...min(100, 5 + attempt * 5))))
    }

    // MARK: Reading every key

    struct Entry: Sendable {
        var key: String
        var data: Data
        var stat: Stat
    }

    /// Every key under `root`, sorted: every node below it that holds data or has no children
    /// (nodes that only hold nested keys are not keys themselves). Pipelined through `walk`.
    static func readAll(_ zk: ZooKeeperClient, root: String, data: Bool, maxInFlight: Int,
                        counter: ProgressCounter? = nil) async throws -> [Entry] {
        var entries: [Entry] = []
        try await zk.walk(root, data: data, maxInFlight: maxInFlight, exclude: { root == "/" && $0 == "/zookeeper" }) { level in
            counter?.add(level.count)
            for node in level where node.path != root {
                guard node.stat.numChildren == 0 || node.stat.dataLength > 0 else { continue }
                entries.append(Entry(key: key(for: node.path, root: root), data: node.data ?? Data(), stat: node.stat))
            }
        }
        return entries.sorted { $0.key < $1.key }
    }

    // MARK: Export formats

    /// True for a valid POSIX shell variable name.
    static func isShellName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// A key as a shell variable name: upper case, anything but A-Z and 0-9 turned into '_',
    /// a '_' in front of a leading digit.
    static func shellName(_ key: String, prefix: String = "") -> String {
        var name = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A"..."Z", "0"..."9": name.unicodeScalars.append(scalar)
            default: name += "_"
            }
        }
        if prefix.isEmpty, let first = name.unicodeScalars.first, ("0"..."9").contains(first) { name = "_" + name }
        return prefix + name
    }

    /// `'text'` for a POSIX shell, with every `'` written as `'\''`.
    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingEveryScalar("'", with: "'\\''") + "'"
    }

    static func envLines(_ entries: [(String, JSONValue)], prefix: String) throws -> [String] {
        var owners: [String: String] = [:]
        var lines: [String] = []
        for (key, value) in entries {
            let name = shellName(key, prefix: prefix)
            if let other = owners[name] {
                throw CommandError.badData("keys '\(printable(other))' and '\(printable(key))' both become the shell name \(name)")
            }
            owners[name] = key
            let text: String
            if case .string(let s) = value { text = s } else { text = value.compact() }
            if text.contains("\0") {
                throw CommandError.badData("the value of '\(printable(key))' holds a NUL character, which a shell variable cannot")
            }
            lines.append("\(name)=\(shellQuoted(text))")
        }
        return lines
    }

    /// `'text'` for SQL, with every `'` doubled.
    static func sqlQuoted(_ text: String) -> String {
        "'" + text.replacingEveryScalar("'", with: "''") + "'"
    }

    static func sqlLines(_ entries: [(String, JSONValue, Int32)]) -> [String] {
        var lines = [
            "BEGIN;",
            "CREATE TABLE IF NOT EXISTS configurations (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL);",
        ]
        for (key, value, version) in entries {
            lines.append("INSERT INTO configurations (key, value, version) VALUES (\(sqlQuoted(key)), \(sqlQuoted(value.compact())), \(version))"
                         + " ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version;")
        }
        lines.append("COMMIT;")
        return lines
    }

    // MARK: Import

    /// A `config import` input read straight into its keys and the bytes each value is stored
    /// as (`encode`), in the file's order, without the document's JSON tree. Nil for anything
    /// it does not fully understand (not UTF-8, not valid JSON, not an object, a key given twice):
    /// the caller then parses the whole document, which decides and words the answer.
    ///
    /// The values are slices of one buffer that holds them all, one after another: a value is
    /// then no allocation of its own (a `Data` of more than 14 bytes would be two).
    static func decodeImport(_ bytes: [UInt8]) -> [(key: String, data: Data)]? {
        guard JSONParser.firstInvalidUTF8Offset(bytes) == nil else { return nil }
        var parser = JSONParser(bytes: bytes)
        var keys: [String] = []
        // Where each value ends in `stored`.
        var ends: [Int] = []
        var seen = Set<String>()
        // Reserving touches no memory: the stored values are never longer than the input.
        var stored = Data()
        do {
            guard parser.consume(JSONParser.openBrace) else { return nil }
            if !parser.consume(JSONParser.closeBrace) {
                // Values are mostly tens of bytes: room enough for most files from the start.
                keys.reserveCapacity(bytes.count / 64)
                ends.reserveCapacity(bytes.count / 64)
                seen.reserveCapacity(bytes.count / 64)
                stored.reserveCapacity(bytes.count)
                repeat {
                    let key = try parser.parseKey(afterComma: false)
                    // Last one wins in a JSON object: left to the general reader.
                    guard seen.insert(key).inserted else { return nil }
                    keys.append(key)
                    try appendStoredBytes(&parser, to: &stored)
                    ends.append(stored.count)
                } while parser.consume(JSONParser.comma)
                guard parser.consume(JSONParser.closeBrace) else { return nil }
            }
            parser.skipWhitespace()
            guard parser.pos == bytes.count else { return nil }
        } catch {
            return nil
        }
        var entries: [(key: String, data: Data)] = []
        entries.reserveCapacity(keys.count)
        var start = 0
        for (key, end) in zip(keys, ends) {
            entries.append((key, stored[start..<end]))
            start = end
        }
        return entries
    }

    /// Appends the next value's bytes as `encode` writes it. A string that `encode` writes as it
    /// stands (no escape in it, no DEL) is its own text, quotes included.
    private static func appendStoredBytes(_ parser: inout JSONParser, to stored: inout Data) throws(JSONParseError) {
        parser.skipWhitespace()
        if parser.peek == JSONParser.quote {
            let start = parser.pos
            let end: Int? = parser.bytes.withUnsafeBufferPointer { b in
                var i = start + 1
                while i < b.count {
                    let c = b[i]
                    if c == JSONParser.quote {
                        stored.append(UnsafeBufferPointer(rebasing: b[start...i]))
                        return i
                    }
                    if c == 0x5C || c < 0x20 || c == 0x7F { return nil }
                    i += 1
                }
                return nil
            }
            if let end {
                parser.pos = end + 1
                return
            }
        }
        stored.append(encode(try parser.parseValue(depth: 1)))
    }

    struct ImportPlan: Sendable {
        var create: [String] = []
        var update: [String] = []
        var unchanged: [String] = []
        var remove: [String] = []
        /// The writes, in order, cut into transactions as they are planned (`MultiBatcher`).
        var batches: [[MultiOp]] = []
        var writes = 0
    }

    /// Compares the wanted keys with what is stored and lists the operations that make them so:
    /// missing ancestors first (root included), then creates and version-checked sets, then
    /// version-checked deletes (deepest first).
    static func importPlan(_ zk: ZooKeeperClient, root: String, items: [(key: String, path: String, data: Data)],
                           prune: Bool, acl: [ACL], maxInFlight: Int, counter: ProgressCounter? = nil) async throws -> ImportPlan {
        var existing: [String: WalkedNode] = [:]
        try await zk.walk(root, data: true, maxInFlight: maxInFlight, exclude: { root == "/" && $0 == "/zookeeper" }) { level in
            counter?.add(level.count)
            for node in level { existing[node.path] = node }
        }
        var plan = ImportPlan()
        var batcher = MultiBatcher()
        func write(_ op: MultiOp) {
            plan.writes += 1
            if let done = batcher.add(op) { plan.batches.append(done) }
        }
        // Paths that an operation before creates: every new item's, and the intermediate nodes.
        var planned: Set<String> = []
        planned.reserveCapacity(items.count)
        // Intermediate nodes created empty for a key that comes later in the file.
        var madeEmpty: Set<String> = []
        // Missing ancestors of the root, found with one pipelined round of exists.
        if existing[root] == nil {
            var chain: [String] = []
            var cursor: String? = root
            while let p = cursor, p != "/" { chain.append(p); cursor = PathRules.parent(of: p) }
            let results = await zk.pipeline(chain.map { Operation.exists($0) }, maxInFlight: maxInFlight)
            for (p, r) in zip(chain, results).reversed() {
                switch r {
                case .success(let res) where res.stat != nil: continue
                case .success: write(.create(p, acl: acl)); planned.insert(p)
                case .failure(let e): throw e
                }
            }
        }
        // The parent path of the last item, which exists or is planned: siblings come together.
        var lastParent: String? = nil
        for item in items {
            // Intermediate nodes of nested keys.
            // Up to the first one that exists or is planned: its own ancestors are too.
            let sameParent = lastParent.map { parentOf(item.path, is: $0) } ?? false
            if !sameParent {
                var parents: [String] = []
                let parent = PathRules.parent(of: item.path)
                var cursor = parent
                while let p = cursor, p != root, p.hasPrefix(root), existing[p] == nil, !planned.contains(p) {
                    parents.append(p)
                    cursor = PathRules.parent(of: p)
                }
                for p in parents.reversed() {
                    write(.create(p, acl: acl))
                    planned.insert(p)
                    madeEmpty.insert(p)
                }
                lastParent = parent
            }
            if let node = existing[item.path] {
                if node.data ?? Data() == item.data {
                    plan.unchanged.append(item.key)
                } else {
                    plan.update.append(item.key)
                    write(.set(item.path, data: item.data, version: node.stat.version))
                }
            } else if madeEmpty.contains(item.path) {
                // A key after one nested under it: its node is made by then, at version 0.
                plan.create.append(item.key)
                write(.set(item.path, data: item.data, version: 0))
            } else {
                plan.create.append(item.key)
                write(.create(item.path, data: item.data, acl: acl))
                planned.insert(item.path)
            }
        }
        if prune {
            let wanted = Set(items.map(\.path))
            let gone = existing.values.filter { node in
                node.path != root && !wanted.contains(node.path) && node.stat.numChildren == 0
            }.sorted { ($0.depth, $0.path) > ($1.depth, $1.path) }
            for node in gone {
                write(.delete(node.path, version: node.stat.version))
            }
            plan.remove = gone.map { key(for: $0.path, root: root) }.sorted()
        }
        if let last = batcher.finish() { plan.batches.append(last) }
        plan.batches = MultiBatcher.spread(plan.batches)
        return plan
    }

    /// Whether `parent` is the parent path of `path` (compared on the bytes, no string made).
    private static func parentOf(_ path: String, is parent: String) -> Bool {
        let p = path.utf8, q = parent.utf8
        guard let slash = p.lastIndex(of: UInt8(ascii: "/")) else { return false }
        if slash == p.startIndex { return parent == "/" }
        return p[..<slash].elementsEqual(q)
    }

    static func printPlan(_ plan: ImportPlan, output out: Output, applied: Bool) {
        var o = JSONObject()
        o["dryRun"] = .bool(!applied)
        o["create"] = .array(plan.create.map { .string($0) })
        o["update"] = .array(plan.update.map { .string($0) })
        o["unchanged"] = .array(plan.unchanged.map { .string($0) })
        o["remove"] = .array(plan.remove.map { .string($0) })
        out.print(Printed(json: .object(o)) { out in
            if applied {
                out.note("imported: \(plan.create.count) created, \(plan.update.count) updated, \(plan.unchanged.count) unchanged, \(plan.remove.count) removed")
                return
            }
            var rows: [[String]] = []
            rows += plan.create.map { ["create", $0] }
            rows += plan.update.map { ["update", $0] }
            rows += plan.unchanged.map { ["unchanged", $0] }
            rows += plan.remove.map { ["remove", $0] }
            if !rows.isEmpty { out.table(["ACTION", "KEY"], rows) }
        })
    }

}
