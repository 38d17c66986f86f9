import FoundationEssentials

// A small, strict JSON model for zkctl.
//
// Why not JSONSerialization / JSONDecoder: they lose key order and reformat numbers. zkctl
// stores configuration in znodes that humans also edit, so a read-modify-write cycle must keep
// the object key order and every number lexeme ("1.0" stays "1.0", "3e5" stays "3e5").
//
// The parser is iterative (an explicit container stack, no recursion), works on UTF-8 bytes,
// never force-unwraps input-derived data and reports errors with a UTF-8 byte offset.

// MARK: - Value

/// A JSON value. Numbers keep the exact lexeme they were written with.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number exactly as written (a valid RFC 8259 number lexeme such as "1.0", "-12", "3e5").
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// Maximum nesting depth (arrays + objects) accepted by the parser.
    public static let maxDepth = 512
}

// MARK: - Convenience

extension JSONValue {
    /// `.string(s)`.
    public init(_ s: String) {
        self = .string(s)
    }

    /// `.number("\(i)")`.
    public static func int(_ i: Int) -> JSONValue {
        .number(String(i))
    }

    /// A number from a `Double` (Swift's shortest round-trip spelling, e.g. "0.1", "5.0", "1e-05").
    /// JSON has no NaN or infinity: non-finite values become `.null`.
    public static func double(_ d: Double) -> JSONValue {
        guard d.isFinite else { return .null }
        return .number("\(d)")
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The number's value when it is an exactly representable integer ("12", "-3", "1.0", "3e5"
    /// all qualify; "1.5" or an out-of-range value do not).
    public var intValue: Int? {
        guard case .number(let lexeme) = self else { return nil }
        return JSONValue.exactInteger(lexeme)
    }

    /// The number as a `Double` (possibly rounded; huge exponents give ±infinity).
    public var doubleValue: Double? {
        guard case .number(let lexeme) = self else { return nil }
        return Double(lexeme)
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// "null", "boolean", "number", "string", "array" or "object" (for messages).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The kind as a sentence names it: "an array", "a string", "null".
    public var typePhrase: String {
        switch self {
        case .null: return "null"
        case .array, .object: return "an \(typeName)"
        default: return "a \(typeName)"
        }
    }

    /// Exact integer value of a JSON number lexeme, or nil when it has a non-zero fractional part
    /// or does not fit in `Int`. Works on the decimal digits, so no floating-point rounding.
    package static func exactInteger(_ lexeme: String) -> Int? {
        if let i = Int(lexeme) { return i }
        var negative = false
        var digits: [UInt8] = []      // integer digits followed by fraction digits
        var pointPosition = 0         // number of integer digits
        var exponent = 0
        var seenPoint = false
        var bytes = Array(lexeme.utf8)[...]
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        }
        var inExponent = false
        var exponentNegative = false
        var exponentDigitsSeen = false
        for b in bytes {
            if inExponent {
                if !exponentDigitsSeen && (b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) {
                    exponentNegative = b == UInt8(ascii: "-")
                    continue
                }
                guard b >= 0x30 && b <= 0x39 else { return nil }
                exponentDigitsSeen = true
                // Saturate: anything this large is far outside Int's range (or zero) anyway.
                if exponent < 1_000_000 { exponent = exponent * 10 + Int(b - 0x30) }
            } else if b == UInt8(ascii: ".") {
                guard !seenPoint else { return nil }
                seenPoint = true
            } else if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                inExponent = true
            } else {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                digits.append(b)
                if !seenPoint { pointPosition += 1 }
            }
        }
        guard !digits.isEmpty, !inExponent || exponentDigitsSeen else { return nil }
        if exponentNegative { exponent = -exponent }
        // Strip leading zeros so the magnitude check below is meaningful.
        while let first = digits.first, first == UInt8(ascii: "0") {
            digits.removeFirst()
            pointPosition -= 1
        }
        if digits.isEmpty { return 0 }
        let point = pointPosition + exponent
        guard point > 0, point <= 19 else { return nil }
        if point < digits.count {
            guard digits[point...].allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
            digits.removeSubrange(point...)
        } else {
            digits.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: point - digits.count))
        }
        let text = (negative ? "-" : "") + String(decoding: digits, as: UTF8.self)
        return Int(text)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

extension JSONValue: CustomStringConvertible {
    /// The compact encoding.
    public var description: String { compact() }
}

// MARK: - Ordered object

/// An insertion-ordered string-keyed map. Setting an existing key keeps its position; setting
/// `nil` removes the key. Equality (and hashing) is order-sensitive.
public struct JSONObject: Sendable, Hashable, Sequence {
    public typealias Element = (key: String, value: JSONValue)

    fileprivate struct Entry: Sendable, Hashable {
        var key: String
        var value: JSONValue
    }

    private var entries: [Entry] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// Builds an object from pairs in order. A repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, JSONValue)]) {
        entries.reserveCapacity(pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index[key] else { return nil }
            return entries[i].value
        }
        set {
            if let newValue {
                if let i = index[key] {
                    entries[i].value = newValue
                } else {
                    index[key] = entries.count
                    entries.append(Entry(key: key, value: newValue))
                }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Removes `key`, returning its old value.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        let old = entries.remove(at: i).value
        for j in i..<entries.count { index[entries[j].key] = j }
        return old
    }

    public var keys: [String] { entries.map(\.key) }
    public var values: [JSONValue] { entries.map(\.value) }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public func contains(key: String) -> Bool { index[key] != nil }

    /// A copy with keys in ascending (code point) order, at this level only.
    public func sortedByKey() -> JSONObject {
        var copy = JSONObject()
        for e in entries.sorted(by: { $0.key < $1.key }) { copy[e.key] = e.value }
        return copy
    }

    public struct Iterator: IteratorProtocol {
        fileprivate var base: IndexingIterator<[Entry]>
        public mutating func next() -> (key: String, value: JSONValue)? {
            guard let e = base.next() else { return nil }
            return (key: e.key, value: e.value)
        }
    }

    public func makeIterator() -> Iterator { Iterator(base: entries.makeIterator()) }

    public var underestimatedCount: Int { entries.count }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.entries == rhs.entries
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }
}

extension JSONObject: CustomStringConvertible {
    public var description: String { JSONValue.object(self).compact() }
}

// MARK: - Paths and merging

/// Thrown by `setValue(_:at:)` when a path component runs into a value that is not an object.
public struct JSONPathError: Error, CustomStringConvertible, Sendable {
    /// The full path that was being set.
    public let path: [String]
    /// The prefix of `path` that names the non-object value (empty = the root value).
    public let conflictingPrefix: [String]
    /// `typeName` of the value found there.
    public let foundType: String

    public init(path: [String], conflictingPrefix: [String], foundType: String) {
        self.path = path
        self.conflictingPrefix = conflictingPrefix
        self.foundType = foundType
    }

    public var description: String {
        let full = JSONPathError.render(path)
        if conflictingPrefix.isEmpty {
            return "cannot set \(full): the root value is \(JSONPathError.article(foundType)), not an object"
        }
        return "cannot set \(full): \(JSONPathError.render(conflictingPrefix)) is "
            + "\(JSONPathError.article(foundType)), not an object"
    }

    static func render(_ path: [String]) -> String {
        "'" + path.joined(separator: ".") + "'"
    }

    private static func article(_ type: String) -> String {
        switch type {
        case "null": return "null"
        case "array", "object": return "an \(type)"
        default: return "a \(type)"
        }
    }
}

extension JSONObject {
    /// Nested lookup through objects; an empty path is not meaningful here and returns nil.
    public func value(at path: [String]) -> JSONValue? {
        guard let first = path.first, let v = self[first] else { return nil }
        return v.value(at: Array(path.dropFirst()))
    }

    /// Sets `v` at `path`, creating missing intermediate objects. Throws `JSONPathError` when an
    /// intermediate value exists but is not an object. An empty path is a no-op.
    public mutating func setValue(_ v: JSONValue, at path: [String]) throws {
        guard !path.isEmpty else { return }
        try JSONObject.set(v, in: &self, path: path, level: 0)
    }

    private static func set(_ v: JSONValue, in obj: inout JSONObject, path: [String], level: Int) throws {
        let key = path[level]
        if level == path.count - 1 {
            obj[key] = v
            return
        }
        var child: JSONObject
        switch obj[key] {
        case nil:
            child = JSONObject()
        case .object(let o)?:
            child = o
        case let other?:
            throw JSONPathError(path: path, conflictingPrefix: Array(path[...level]), foundType: other.typeName)
        }
        try set(v, in: &child, path: path, level: level + 1)
        obj[key] = .object(child)
    }

    /// Deep merge: keys of `other` are applied in order; where both sides hold objects they merge
    /// recursively, otherwise `other`'s value replaces (existing keys keep their position, new keys
    /// are appended).
    public func merging(_ other: JSONObject) -> JSONObject {
        var result = self
        for (k, v) in other {
            if case .object(let mine)? = result[k], case .object(let theirs) = v {
                result[k] = .object(mine.merging(theirs))
            } else {
                result[k] = v
            }
        }
        return result
    }
}

extension JSONValue {
    /// Nested lookup through objects. The empty path returns `self`; nil when a component is
    /// missing or a non-object is in the way.
    public func value(at path: [String]) -> JSONValue? {
        var current = self
        for key in path {
            guard case .object(let o) = current, let next = o[key] else { return nil }
            current = next
        }
        return current
    }

    /// Sets `v` at `path`, creating intermediate objects. The empty path replaces `self`.
    /// Throws `JSONPathError` when `self` or an intermediate value is not an object.
    public mutating func setValue(_ v: JSONValue, at path: [String]) throws {
        guard !path.isEmpty else {
            self = v
            return
        }
        guard case .object(var o) = self else {
            throw JSONPathError(path: path, conflictingPrefix: [], foundType: typeName)
        }
        try o.setValue(v, at: path)
        self = .object(o)
    }

    /// Deep merge of `other` into this value: if `self` is an object the two merge recursively
    /// (see `JSONObject.merging`), otherwise the result is `other`.
    public func merging(_ other: JSONObject) -> JSONValue {
        if case .object(let o) = self { return .object(o.merging(other)) }
        return .object(other)
    }
}

// MARK: - Encoding

extension JSONValue {
    /// Compact encoding without any whitespace: `{"a":1,"b":[true,null]}`.
    public func compact() -> String {
        var out: [UInt8] = []
        JSONValue.write(self, into: &out, indent: nil, level: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Pretty encoding: one member per line, `indent` spaces per level, `": "` after keys,
    /// empty containers as `{}` / `[]`, no trailing newline.
    public func pretty(indent: Int = 2) -> String {
        var out: [UInt8] = []
        JSONValue.write(self, into: &out, indent: max(0, indent), level: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// The JSON string literal for `s` (with quotes), escaped as the encoder does.
    public static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        writeString(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func newline(_ out: inout [UInt8], indent: Int, level: Int) {
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8], indent: Int?, level: Int) {
        switch value {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n):
            out.append(contentsOf: n.utf8)
        case .string(let s):
            writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            if a.isEmpty {
                out.append(UInt8(ascii: "]"))
                return
            }
            for (i, element) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if let indent { newline(&out, indent: indent, level: level + 1) }
                write(element, into: &out, indent: indent, level: level + 1)
            }
            if let indent { newline(&out, indent: indent, level: level) }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            if o.isEmpty {
                out.append(UInt8(ascii: "}"))
                return
            }
            var first = true
            for (k, v) in o {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                if let indent { newline(&out, indent: indent, level: level + 1) }
                writeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(0x20) }
                write(v, into: &out, indent: indent, level: level + 1)
            }
            if let indent { newline(&out, indent: indent, level: level) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x00..<0x20, 0x7F:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0F)])
            default:
                out.append(b)  // includes '/' and every byte of non-ASCII UTF-8 sequences
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Parsing

/// A JSON syntax error. `offset` is the UTF-8 byte offset into the input.
public struct JSONParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public let offset: Int
    public let message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String { "invalid JSON at offset \(offset): \(message)" }
}

extension JSONValue {
    /// Parses exactly one JSON value (RFC 8259, strict), surrounded by optional whitespace.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }

    /// Like `parse(_: String)`; input that is not valid UTF-8 is an error.
    public static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        try parse(bytes: [UInt8](data))
    }

    /// Like `parse(_: Data)`, on bytes already in an array.
    package static func parse(bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        if let bad = JSONParser.firstInvalidUTF8Offset(bytes) {
            let byte = bytes[bad]
            throw JSONParseError(offset: bad, message: "invalid UTF-8 (byte 0x\(String(byte, radix: 16, uppercase: true)))")
        }
        var parser = JSONParser(bytes: bytes)
        return try parser.parseDocument()
    }

    /// True for text that can only have been meant as JSON, so that when it does not parse it is
    /// a mistake to report rather than a bare word to store as a string: after leading
    /// whitespace it starts with `{`, `[` or `"`, or it is one token shaped like a number
    /// (`-`, digits, one `.`, an exponent) such as `1.`, `01` or `1e`. `10.0.0.5`, `1.2.3`,
    /// `2024-01-01`, `1 2` and `-` are bare words; `{"a":` is broken JSON.
    public static func isMeantAsJSON(_ text: String) -> Bool {
        let token = text.unicodeScalars.drop { $0.properties.isWhitespace }.reversed().drop { $0.properties.isWhitespace }.reversed()
        guard let c = token.first else { return false }
        if c == "{" || c == "[" || c == "\"" { return true }
        var rest = token[...]
        func digits() -> Int {
            let n = rest.prefix { ("0"..."9").contains($0) }.count
            rest = rest.dropFirst(n)
            return n
        }
        if rest.first == "-" { rest = rest.dropFirst() }
        var mantissa = digits()
        if rest.first == "." { rest = rest.dropFirst(); mantissa += digits() }
        if mantissa > 0, rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
            _ = digits()
        }
        return rest.isEmpty && mantissa > 0
    }
}

/// Iterative strict JSON parser over UTF-8 bytes. Besides whole documents (`parseDocument`) it
/// serves pull readers such as the export decoder (BackupFormat): they walk the structure they
/// expect with `skipWhitespace`, `consume`, `parseKey`, `parseString` and `parseNumber`, and
/// hand anything else to `parseValue`, so that every JSON rule and error lives here once.
/// Strings are not checked for UTF-8 here: callers check the whole input first
/// (`firstInvalidUTF8Offset`).
package struct JSONParser {
    package let bytes: [UInt8]
    package var pos = 0

    package init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    package static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    package static let comma = UInt8(ascii: ",")
    private static let colon = UInt8(ascii: ":")
    package static let openBrace = UInt8(ascii: "{")
    package static let closeBrace = UInt8(ascii: "}")
    package static let openBracket = UInt8(ascii: "[")
    package static let closeBracket = UInt8(ascii: "]")
    private static let minus = UInt8(ascii: "-")
    private static let plus = UInt8(ascii: "+")
    private static let dot = UInt8(ascii: ".")
    private static let zero = UInt8(ascii: "0")

    /// One open container on the explicit stack.
    private struct Frame {
        var isArray: Bool
        var array: [JSONValue] = []
        var object = JSONObject()
        var pendingKey = ""
    }

    private func fail(_ offset: Int, _ message: String) -> JSONParseError {
        JSONParseError(offset: offset, message: message)
    }

    package var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    /// Skips whitespace, then steps over `byte` when it is next; false (not moved past
    /// anything but whitespace) when something else is.
    package mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard peek == byte else { return false }
        pos += 1
        return true
    }

    package mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// A human description of the byte (character) at `offset`.
    private func describe(_ offset: Int) -> String {
        guard offset < bytes.count else { return "end of input" }
        let b = bytes[offset]
        if b >= 0x21 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
        if b < 0x80 { return "character U+\(JSONParser.hex4(UInt32(b)))" }
        let end = min(bytes.count, offset + 4)
        let decoded = String(decoding: bytes[offset..<end], as: UTF8.self)
        if let scalar = decoded.unicodeScalars.first, scalar != "\u{FFFD}" {
            return "character '\(Character(scalar))' (U+\(JSONParser.hex4(scalar.value)))"
        }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    private static func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return s.count >= 4 ? s : String(repeating: "0", count: 4 - s.count) + s
    }

    /// Error for an unexpected byte (or end of input) where `expected` was wanted.
    private func unexpected(_ expected: String) -> JSONParseError {
        if pos >= bytes.count { return fail(pos, "unexpected end of input, expected \(expected)") }
        return fail(pos, "expected \(expected), found \(describe(pos))")
    }

    package mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        let value = try parseValue()
        skipWhitespace()
        if pos < bytes.count {
            throw fail(pos, "unexpected \(describe(pos)) after the JSON value")
        }
        return value
    }

    /// Parses the one value that starts at `pos` (after whitespace), leaving `pos` just after
    /// it. `depth` is the number of containers already open around it (for `maxDepth`).
    package mutating func parseValue(depth: Int = 0) throws(JSONParseError) -> JSONValue {
        var stack: [Frame] = []
        expectValue: while true {
            skipWhitespace()
            guard let b = peek else { throw fail(pos, "unexpected end of input, expected a JSON value") }
            var value: JSONValue
            switch b {
            case JSONParser.openBrace, JSONParser.openBracket:
                if depth + stack.count >= JSONValue.maxDepth {
                    throw fail(pos, "nesting depth exceeds the maximum of \(JSONValue.maxDepth)")
                }
                let isArray = b == JSONParser.openBracket
                pos += 1
                skipWhitespace()
                if isArray {
                    if peek == JSONParser.closeBracket {
                        pos += 1
                        value = .array([])
                    } else {
                        stack.append(Frame(isArray: true))
                        continue expectValue
                    }
                } else {
                    if peek == JSONParser.closeBrace {
                        pos += 1
                        value = .object(JSONObject())
                    } else {
                        let key = try parseKey(afterComma: false)
                        stack.append(Frame(isArray: false, pendingKey: key))
                        continue expectValue
                    }
                }
            case JSONParser.quote:
                value = .string(try parseString())
            case UInt8(ascii: "t"):
                try parseLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try parseLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try parseLiteral("null")
                value = .null
            case JSONParser.minus, 0x30...0x39:
                value = .number(try parseNumber())
            default:
                throw fail(pos, "unexpected \(describe(pos)), expected a JSON value")
            }

            // A value is complete: hand it to the enclosing containers, closing as many as end here.
            while true {
                guard !stack.isEmpty else { return value }
                let top = stack.count - 1
                if stack[top].isArray {
                    stack[top].array.append(value)
                } else {
                    let key = stack[top].pendingKey
                    stack[top].object[key] = value  // duplicate keys: last wins, first position kept
                }
                skipWhitespace()
                let isArray = stack[top].isArray
                let close = isArray ? JSONParser.closeBracket : JSONParser.closeBrace
                guard let c = peek else {
                    throw fail(pos, "unexpected end of input, expected ',' or '\(isArray ? "]" : "}")'")
                }
                if c == JSONParser.comma {
                    pos += 1
                    if isArray {
                        skipWhitespace()
                        if peek == JSONParser.closeBracket {
                            throw fail(pos, "trailing comma is not allowed, expected a value before ']'")
                        }
                    } else {
                        stack[top].pendingKey = try parseKey(afterComma: true)
                    }
                    continue expectValue
                }
                if c == close {
                    pos += 1
                    let frame = stack.removeLast()
                    value = frame.isArray ? .array(frame.array) : .object(frame.object)
                    continue
                }
                throw fail(pos, "expected ',' or '\(isArray ? "]" : "}")', found \(describe(pos))")
            }
        }
    }

    /// Parses `"key" :` (with whitespace), leaving `pos` after the colon.
    package mutating func parseKey(afterComma: Bool) throws(JSONParseError) -> String {
        skipWhitespace()
        guard peek == JSONParser.quote else {
            if afterComma && peek == JSONParser.closeBrace {
                throw fail(pos, "trailing comma is not allowed, expected a string key before '}'")
            }
            if pos >= bytes.count { throw fail(pos, "unexpected end of input, expected a string key") }
            throw fail(pos, "expected a string key, found \(describe(pos))")
        }
        let key = try parseString()
        skipWhitespace()
        guard peek == JSONParser.colon else { throw unexpected("':' after object key") }
        pos += 1
        return key
    }

    package mutating func parseLiteral(_ word: StaticString) throws(JSONParseError) {
        let start = pos
        let count = word.utf8CodeUnitCount
        let matches = word.withUTF8Buffer { w in
            guard bytes.count - pos >= w.count else { return false }
            for i in 0..<w.count where bytes[pos + i] != w[i] { return false }
            return true
        }
        guard matches else {
            throw fail(start, "invalid literal, expected '\(word)'")
        }
        pos += count
        // "truex" is an error here too, but reported as the generic trailing/expected message.
    }

    /// Parses a number and returns its exact lexeme.
    package mutating func parseNumber() throws(JSONParseError) -> String {
        let start = pos
        if peek == JSONParser.minus { pos += 1 }
        guard let first = peek, JSONParser.isDigit(first) else {
            if pos >= bytes.count { throw fail(pos, "unexpected end of input, expected a digit after '-'") }
            throw fail(pos, "expected a digit after '-', found \(describe(pos))")
        }
        if first == JSONParser.zero {
            pos += 1
            if let next = peek, JSONParser.isDigit(next) {
                throw fail(start, "leading zeros are not allowed in numbers")
            }
        } else {
            while let d = peek, JSONParser.isDigit(d) { pos += 1 }
        }
        if peek == JSONParser.dot {
            pos += 1
            guard let d = peek, JSONParser.isDigit(d) else {
                throw unexpected("a digit after the decimal point")
            }
            while let d = peek, JSONParser.isDigit(d) { pos += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == JSONParser.plus || peek == JSONParser.minus { pos += 1 }
            guard let d = peek, JSONParser.isDigit(d) else {
                throw unexpected("a digit in the exponent")
            }
            while let d = peek, JSONParser.isDigit(d) { pos += 1 }
        }
        return String(decoding: bytes[start..<pos], as: UTF8.self)
    }

    private static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case 0x30...0x39: return UInt32(b - 0x30)
        case 0x41...0x46: return UInt32(b - 0x41 + 10)
        case 0x61...0x66: return UInt32(b - 0x61 + 10)
        default: return nil
        }
    }

    /// Reads the 4 hex digits after `\u` (pos at the backslash), advancing past them.
    private mutating func parseUnicodeEscape() throws(JSONParseError) -> UInt32 {
        let escapeStart = pos
        pos += 2  // "\u"
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard pos < bytes.count else { throw fail(escapeStart, "unterminated \\u escape") }
            guard let h = JSONParser.hexValue(bytes[pos]) else {
                throw fail(escapeStart, "invalid \\u escape: expected 4 hex digits")
            }
            value = value << 4 | h
            pos += 1
        }
        return value
    }

    /// Parses a string literal (pos at the opening quote) and returns its decoded value.
    package mutating func parseString() throws(JSONParseError) -> String {
        let start = pos
        pos += 1
        var buffer: [UInt8] = []
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw fail(start, "unterminated string") }
            let b = bytes[pos]
            if b == JSONParser.quote {
                if buffer.isEmpty {
                    let s = String(decoding: bytes[runStart..<pos], as: UTF8.self)
                    pos += 1
                    return s
                }
                buffer.append(contentsOf: bytes[runStart..<pos])
                pos += 1
                return String(decoding: buffer, as: UTF8.self)
            }
            if b < 0x20 {
                throw fail(pos, "unescaped control character U+\(JSONParser.hex4(UInt32(b))) in string")
            }
            guard b == JSONParser.backslash else {
                pos += 1
                continue
            }
            buffer.append(contentsOf: bytes[runStart..<pos])
            let escapeStart = pos
            guard pos + 1 < bytes.count else { throw fail(start, "unterminated string") }
            let e = bytes[pos + 1]
            switch e {
            case JSONParser.quote, JSONParser.backslash, UInt8(ascii: "/"):
                buffer.append(e)
                pos += 2
            case UInt8(ascii: "b"): buffer.append(0x08); pos += 2
            case UInt8(ascii: "f"): buffer.append(0x0C); pos += 2
            case UInt8(ascii: "n"): buffer.append(0x0A); pos += 2
            case UInt8(ascii: "r"): buffer.append(0x0D); pos += 2
            case UInt8(ascii: "t"): buffer.append(0x09); pos += 2
            case UInt8(ascii: "u"):
                var scalarValue = try parseUnicodeEscape()
                if (0xDC00...0xDFFF).contains(scalarValue) {
                    throw fail(escapeStart, "lone low surrogate \\u\(JSONParser.hex4(scalarValue)) in string")
                }
                if (0xD800...0xDBFF).contains(scalarValue) {
                    guard pos + 1 < bytes.count, bytes[pos] == JSONParser.backslash,
                        bytes[pos + 1] == UInt8(ascii: "u")
                    else {
                        throw fail(escapeStart, "lone high surrogate \\u\(JSONParser.hex4(scalarValue)) in string")
                    }
                    let low = try parseUnicodeEscape()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw fail(escapeStart, "high surrogate \\u\(JSONParser.hex4(scalarValue)) "
                            + "not followed by a low surrogate")
                    }
                    scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(scalarValue) else {
                    throw fail(escapeStart, "invalid \\u escape")
                }
                UTF8.encode(scalar) { buffer.append($0) }
            default:
                throw fail(escapeStart, "invalid escape sequence '\\\(describeEscape(e))' in string")
            }
            runStart = pos
        }
    }

    private func describeEscape(_ b: UInt8) -> String {
        if b >= 0x21 && b < 0x7F { return String(Character(Unicode.Scalar(b))) }
        return "U+" + JSONParser.hex4(UInt32(b))
    }

    /// Offset of the first byte that makes `bytes` invalid UTF-8 (RFC 3629: no overlongs, no
    /// surrogates, nothing above U+10FFFF), or nil when it is valid.
    package static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            // ASCII runs (nearly all of a typical document) eight bytes at a time.
            while i + 8 <= n {
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            guard i < n else { break }
            let b0 = bytes[i]
            if b0 < 0x80 {
                i += 1
                continue
            }
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            default: return i
            }
            guard i + length <= n else { return i }
            guard secondRange.contains(bytes[i + 1]) else { return i }
            for k in 2..<max(2, length) where !(0x80...0xBF).contains(bytes[i + k]) {
                return i
            }
            i += length
        }
        return nil
    }
}
