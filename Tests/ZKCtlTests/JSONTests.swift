import Foundation
import XCTest

@testable import ZKCtl
import ZooKeeper
import ZooKeeperRecipes
import ZKTestSupport

final class JSONTests: XCTestCase {

    // MARK: helpers

    private func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> JSONValue? {
        do {
            return try JSONValue.parse(text)
        } catch {
            XCTFail("unexpected parse error for \(text.debugDescription): \(error)", file: file, line: line)
            return nil
        }
    }

    /// Asserts that parsing fails; returns the error for further checks.
    @discardableResult
    private func parseError(
        _ text: String, containing fragment: String? = nil, offset: Int? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) -> JSONParseError? {
        do {
            let v = try JSONValue.parse(text)
            XCTFail("expected a parse error for \(text.debugDescription), got \(v.compact())", file: file, line: line)
            return nil
        } catch {
            if let fragment {
                XCTAssertTrue(
                    error.message.contains(fragment),
                    "error \(error) for \(text.debugDescription) does not mention \(fragment.debugDescription)",
                    file: file, line: line)
            }
            if let offset {
                XCTAssertEqual(error.offset, offset, "offset for \(text.debugDescription): \(error)", file: file, line: line)
            }
            return error
        }
    }

    private func roundTrip(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let v = parse(text, file: file, line: line) else { return }
        XCTAssertEqual(v.compact(), text, file: file, line: line)
        XCTAssertEqual(try? JSONValue.parse(v.pretty()), v, file: file, line: line)
        XCTAssertEqual(try? JSONValue.parse(v.pretty(indent: 0)), v, file: file, line: line)
    }

    // MARK: parsing and round trips

    func testScalars() {
        XCTAssertEqual(parse("null"), .null)
        XCTAssertEqual(parse("true"), .bool(true))
        XCTAssertEqual(parse("false"), .bool(false))
        XCTAssertEqual(parse("0"), .number("0"))
        XCTAssertEqual(parse("\"hi\""), .string("hi"))
        XCTAssertEqual(parse(" \t\r\n 42 \n"), .number("42"))
        XCTAssertEqual(parse("[]"), .array([]))
        XCTAssertEqual(parse("{}"), .object(JSONObject()))
        XCTAssertEqual(parse("[ ]"), .array([]))
        XCTAssertEqual(parse("{ \n }"), .object(JSONObject()))
    }

    func testRoundTripsCompact() {
        for text in [
            "null", "true", "false", "0", "-0", "1.0", "-12", "3e5", "1E+10", "2.50e-3", "-0.0e0",
            "123456789012345678901234567890", "\"\"", "\"a/b\"", "[]", "{}", "[[[]]]", "[1,[2,[3,{}]]]",
            #"{"a":1,"b":[true,null]}"#,
            #"{"z":{"y":{"x":[1,2,"three",{"four":4.0}]}},"a":false}"#,
            #"{"":"empty key","é":"ünïcødé ✓ 😀"}"#,
        ] {
            roundTrip(text)
        }
    }

    func testKeyOrderPreserved() throws {
        let v = try JSONValue.parse(#"{"zeta": 1, "alpha": 2, "mid": {"b": 1, "a": 2}, "beta": 3}"#)
        XCTAssertEqual(v.objectValue?.keys, ["zeta", "alpha", "mid", "beta"])
        XCTAssertEqual(v.objectValue?["mid"]?.objectValue?.keys, ["b", "a"])
        XCTAssertEqual(v.compact(), #"{"zeta":1,"alpha":2,"mid":{"b":1,"a":2},"beta":3}"#)
    }

    func testNumberLexemesPreserved() throws {
        let v = try JSONValue.parse("[1.0, -12, 3e5, 0.10, 1E-7, -0, 100000000000000000000000]")
        XCTAssertEqual(v.arrayValue, [
            .number("1.0"), .number("-12"), .number("3e5"), .number("0.10"), .number("1E-7"), .number("-0"),
            .number("100000000000000000000000"),
        ])
        XCTAssertEqual(v.compact(), "[1.0,-12,3e5,0.10,1E-7,-0,100000000000000000000000]")
    }

    func testDuplicateKeysLastWinsFirstPosition() throws {
        let v = try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#)
        XCTAssertEqual(v.objectValue?.keys, ["a", "b"])
        XCTAssertEqual(v.compact(), #"{"a":3,"b":2}"#)
    }

    func testStringEscapesDecoded() throws {
        XCTAssertEqual(parse(#""\" \\ \/ \b \f \n \r \t""#), .string("\" \\ / \u{8} \u{C} \n \r \t"))
        XCTAssertEqual(parse(#""\u0041\u00e9\u00E9\u20AC""#), .string("Aéé€"))
        XCTAssertEqual(parse(#""\u0000""#), .string("\u{0}"))
        // Surrogate pairs (upper and lower case hex).
        XCTAssertEqual(parse(#""\ud83d\ude00""#), .string("😀"))
        XCTAssertEqual(parse(#""\uD834\uDD1E x""#), .string("𝄞 x"))
        // Raw (unescaped) non-ASCII passes through.
        XCTAssertEqual(parse("\"日本語 😀\""), .string("日本語 😀"))
        // DEL is not a control character for JSON and may appear raw.
        XCTAssertEqual(parse("\"\u{7F}\""), .string("\u{7F}"))
    }

    func testParseData() throws {
        let v = try JSONValue.parse(Data(#"{"k": ["v", 1]}"#.utf8))
        XCTAssertEqual(v, .object(JSONObject([("k", .array([.string("v"), .number("1")]))])))
        XCTAssertEqual(try JSONValue.parse(Data("\"é😀\"".utf8)), .string("é😀"))
    }

    // MARK: errors

    func testErrorDescription() {
        let e = parseError(#"{"a": 1 "b": 2}"#, containing: "expected ',' or '}'", offset: 8)
        XCTAssertEqual(e?.description.hasPrefix("invalid JSON at offset 8: expected ',' or '}'"), true)
        XCTAssertEqual(
            JSONParseError(offset: 12, message: "expected ',' or '}'").description,
            "invalid JSON at offset 12: expected ',' or '}'")
    }

    func testTrailingCommas() {
        parseError("[1,2,]", containing: "trailing comma", offset: 5)
        parseError(#"{"a":1,}"#, containing: "trailing comma", offset: 7)
        parseError("[,]")
        parseError("{,}")
        parseError("[1,,2]")
    }

    func testLeadingZerosAndBadNumbers() {
        parseError("01", containing: "leading zero", offset: 0)
        parseError("-01", containing: "leading zero", offset: 0)
        parseError("[00]", containing: "leading zero", offset: 1)
        for bad in ["-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-a", "0x10", "1_000", "NaN", "Infinity",
                    "-Infinity", "nan", "1.5.2", "--1"] {
            parseError(bad)
        }
    }

    func testBadLiterals() {
        for bad in ["tru", "truex", "True", "nul", "nulll", "falsey", "undefined", "t", "[true false]"] {
            parseError(bad)
        }
    }

    func testBadEscapes() {
        parseError(#""\x41""#, containing: "invalid escape", offset: 1)
        parseError(#""\'""#, containing: "invalid escape")
        parseError(#""\u12""#, containing: "\\u escape")
        parseError(#""\u12G4""#, containing: "\\u escape")
        parseError(#""\U0041""#, containing: "invalid escape")
        parseError("\"\\", containing: "unterminated")
        parseError(#""\u00"#)
    }

    func testLoneSurrogates() {
        parseError(#""\ud800""#, containing: "lone high surrogate", offset: 1)
        parseError(#""\uDBFF x""#, containing: "lone high surrogate")
        parseError(#""\udc00""#, containing: "lone low surrogate", offset: 1)
        parseError(#""a\uDE00\uD83D""#, containing: "lone low surrogate", offset: 2)
        parseError(#""\ud83d\u0041""#, containing: "not followed by a low surrogate")
        parseError(#""\ud83d\ud83d""#, containing: "not followed by a low surrogate")
        parseError(#""\ud83d\n""#, containing: "lone high surrogate")
    }

    func testControlCharactersInStrings() {
        parseError("\"a\nb\"", containing: "control character U+000A", offset: 2)
        parseError("\"\t\"", containing: "control character")
        parseError("\"\u{0}\"", containing: "control character U+0000")
        parseError("\"\u{1F}\"", containing: "control character U+001F")
    }

    func testUnterminated() {
        parseError("\"abc", containing: "unterminated string", offset: 0)
        parseError(#"{"a": "b"#, containing: "unterminated string", offset: 6)
        parseError("[1, 2", containing: "end of input")
        parseError(#"{"a": 1"#, containing: "end of input")
        parseError(#"{"a""#, containing: "':'")
        parseError(#"{"a":"#, containing: "end of input")
        parseError("[", containing: "end of input")
        parseError("{", containing: "end of input")
    }

    func testTrailingGarbageAndEmpty() {
        parseError("", containing: "end of input", offset: 0)
        parseError("   \n", containing: "end of input", offset: 4)
        parseError("1 2", containing: "after the JSON value", offset: 2)
        parseError("{} {}", containing: "after the JSON value", offset: 3)
        parseError("[1]]", containing: "after the JSON value", offset: 3)
        parseError("null x", offset: 5)
        parseError("1x", offset: 1)
        parseError("\u{FEFF}1", containing: "U+FEFF", offset: 0)  // no BOM skipping: strict
    }

    func testStructuralErrors() {
        parseError(#"{a: 1}"#, containing: "string key", offset: 1)
        parseError(#"{1: 1}"#, containing: "string key")
        parseError(#"{"a" 1}"#, containing: "':'", offset: 5)
        parseError(#"{"a": 1 "b": 2}"#, containing: "expected ',' or '}'", offset: 8)
        parseError("[1 2]", containing: "expected ',' or ']'", offset: 3)
        parseError("[1}", containing: "expected ',' or ']'")
        parseError(#"{"a":1]"#, containing: "expected ',' or '}'")
        parseError("]", containing: "expected a JSON value")
        parseError("// comment\n1")
        parseError("/* c */ 1")
        parseError("[1 /* c */]")
        parseError("'single'")
        parseError("\u{A0}1")  // only JSON whitespace allowed
    }

    func testNestingDepthLimit() {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        XCTAssertNotNil(parse(ok))
        parseError(
            String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
            containing: "nesting depth", offset: 512)
        parseError(String(repeating: "[", count: 10_000), containing: "nesting depth")
        parseError(String(repeating: #"{"a":"#, count: 10_000), containing: "nesting depth")
        parseError(String(repeating: "[{\"k\":", count: 10_000), containing: "nesting depth")
        // Long but shallow input is fine (the parser is iterative either way).
        let wide = "[" + Array(repeating: "{\"a\":[1]}", count: 20_000).joined(separator: ",") + "]"
        XCTAssertEqual(parse(wide)?.arrayValue?.count, 20_000)
    }

    func testInvalidUTF8Data() {
        let cases: [([UInt8], Int)] = [
            ([0x22, 0xFF, 0x22], 1),  // invalid byte
            ([0x22, 0xC3, 0x22], 1),  // truncated 2-byte sequence
            ([0x22, 0xC0, 0xAF, 0x22], 1),  // overlong
            ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),  // UTF-8 encoded surrogate
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),  // above U+10FFFF
            ([0x22, 0x61, 0x80, 0x22], 2),  // stray continuation byte
            ([0x22, 0xE2, 0x82], 1),  // truncated at end of input
            ([0x7B, 0x7D, 0xFE], 2),  // after a complete value
        ]
        for (bytes, offset) in cases {
            do {
                let v = try JSONValue.parse(Data(bytes))
                XCTFail("expected invalid UTF-8 error for \(bytes), got \(v)")
            } catch {
                XCTAssertTrue(error.message.contains("invalid UTF-8"), "\(error)")
                XCTAssertEqual(error.offset, offset, "\(bytes)")
            }
        }
        XCTAssertNil(JSONParser.firstInvalidUTF8Offset(Array("aé€😀\u{10FFFF}\u{FFFF}".utf8)))
    }

    func testNeverCrashesOnGarbage() {
        // A cheap deterministic fuzz: random bytes and mutations of a valid document must either
        // parse or throw; anything that parses must survive an encode/parse round trip.
        var rng = SplitMix(seed: 0x5EED)
        let seed = Array(#"{"a":[1,-2.5e3,"x\u00e9\ud83d\ude00",{"b":null,"c":[true,false]}],"d":"\n"}"#.utf8)
        let alphabet = Array(#"{}[]",:\u0123456789-+.eEtrufalsn "#.utf8) + [0x00, 0x0A, 0xC3, 0xA9, 0xFF, 0xED]
        for i in 0..<4_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = seed
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let pos = Int(rng.next() % UInt64(bytes.count + 1))
                    switch rng.next() % 3 {
                    case 0: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: pos)
                    case 1: if pos < bytes.count { bytes.remove(at: pos) }
                    default: if pos < bytes.count { bytes[pos] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                    }
                }
            } else {
                bytes = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            }
            if let v = try? JSONValue.parse(Data(bytes)) {
                XCTAssertEqual(try? JSONValue.parse(v.compact()), v)
                XCTAssertEqual(try? JSONValue.parse(Data(v.pretty().utf8)), v)
            }
            if let s = String(validating: bytes, as: UTF8.self) {
                XCTAssertEqual((try? JSONValue.parse(s)), (try? JSONValue.parse(Data(bytes))))
            }
        }
    }

    // MARK: isMeantAsJSON

    func testIsMeantAsJSON() {
        let table: [(String, Bool)] = [
            ("{\"a\":1}", true), ("[1]", true), ("\"quoted\"", true), ("  {", true), ("\n\t[", true),
            ("{not json}", true), ("\"open", true),
            ("0", true), ("-1", true), ("3.14", true), (" 1e5 ", true), ("01", true), ("1.", true), ("-1.", true),
            ("1e", true), ("1e+", true), (".5", true), ("-", false),
            ("true", false), ("null", false), ("10.0.0.5", false), ("1.2.3", false), ("2024-01-01", false),
            ("1 2", false), ("123abc", false), ("1e5x", false), ("-x", false), ("--", false),
            ("hello", false), ("", false), ("   ", false), ("'single'", false), ("/path", false),
        ]
        for (text, expected) in table {
            XCTAssertEqual(JSONValue.isMeantAsJSON(text), expected, "isMeantAsJSON(\(text.debugDescription))")
        }
    }

    // MARK: encoding

    func testCompactExact() {
        let v: JSONValue = .object(JSONObject([
            ("a", .int(1)),
            ("b", .array([.bool(true), .null])),
        ]))
        XCTAssertEqual(v.compact(), #"{"a":1,"b":[true,null]}"#)
        XCTAssertEqual(JSONValue.array([]).compact(), "[]")
        XCTAssertEqual(JSONValue.object(JSONObject()).compact(), "{}")
        XCTAssertEqual(JSONValue.string("x").description, #""x""#)
    }

    func testPrettyExact() {
        let v: JSONValue = .object(JSONObject([("a", .int(1)), ("b", .array([.bool(true)]))]))
        XCTAssertEqual(v.pretty(), "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ]\n}")

        let nested: JSONValue = [
            "name": "svc",
            "empty": [:],
            "list": [],
            "deep": ["x": [1, ["y": .null]]],
        ]
        XCTAssertEqual(
            nested.pretty(indent: 4),
            """
            {
                "name": "svc",
                "empty": {},
                "list": [],
                "deep": {
                    "x": [
                        1,
                        {
                            "y": null
                        }
                    ]
                }
            }
            """)
        XCTAssertEqual(nested.pretty(indent: 0), "{\n\"name\": \"svc\",\n\"empty\": {},\n\"list\": [],\n\"deep\": {\n\"x\": [\n1,\n{\n\"y\": null\n}\n]\n}\n}")
        XCTAssertEqual(JSONValue.number("1.50").pretty(), "1.50")
        XCTAssertEqual(JSONValue.string("a").pretty(), "\"a\"")
        XCTAssertEqual(JSONValue.array([]).pretty(), "[]")
        XCTAssertEqual(JSONValue.object(JSONObject()).pretty(), "{}")
    }

    func testStringEscapingOnOutput() {
        XCTAssertEqual(JSONValue.string("\" \\ \n \r \t \u{8} \u{C}").compact(), #""\" \\ \n \r \t \b \f""#)
        XCTAssertEqual(JSONValue.string("\u{0}\u{1}\u{1F}\u{7F}").compact(), #""\u0000\u0001\u001f\u007f""#)
        XCTAssertEqual(JSONValue.string("a/b").compact(), #""a/b""#)
        XCTAssertEqual(JSONValue.string("é 日本 😀 \u{2028}").compact(), "\"é 日本 😀 \u{2028}\"")
        XCTAssertEqual(JSONValue.quoted("k\"ey"), #""k\"ey""#)
        // Keys are escaped the same way.
        XCTAssertEqual(JSONValue.object(JSONObject([("a\nb", .null)])).compact(), #"{"a\nb":null}"#)
        // Every code point below 0x80 survives an encode/parse round trip.
        var all = ""
        all.unicodeScalars.append(contentsOf: (0..<0x80).compactMap { Unicode.Scalar(UInt32($0)) })
        XCTAssertEqual(try? JSONValue.parse(JSONValue.string(all).compact()), .string(all))
    }

    // MARK: JSONObject

    func testJSONObjectBasics() {
        var o = JSONObject()
        XCTAssertTrue(o.isEmpty)
        o["b"] = .int(1)
        o["a"] = .int(2)
        o["c"] = .int(3)
        XCTAssertEqual(o.keys, ["b", "a", "c"])
        XCTAssertEqual(o.count, 3)
        o["b"] = .string("replaced")
        XCTAssertEqual(o.keys, ["b", "a", "c"], "setting an existing key keeps its position")
        XCTAssertEqual(o["b"], .string("replaced"))
        o["a"] = nil
        XCTAssertEqual(o.keys, ["b", "c"])
        XCTAssertNil(o["a"])
        XCTAssertEqual(o["c"], .int(3), "index stays right after a removal")
        o["a"] = .null
        XCTAssertEqual(o.keys, ["b", "c", "a"])
        XCTAssertEqual(o.removeValue(forKey: "b"), .string("replaced"))
        XCTAssertEqual(o.keys, ["c", "a"])
        XCTAssertEqual(o["a"], .null)
        XCTAssertTrue(o.contains(key: "c"))

        var seen: [String] = []
        for (key, value) in o {
            seen.append("\(key)=\(value.compact())")
        }
        XCTAssertEqual(seen, ["c=3", "a=null"])
        XCTAssertEqual(o.map(\.key), ["c", "a"])
        XCTAssertEqual(o.map(\.value), [.int(3), .null])
    }

    func testJSONObjectInitAndEquality() {
        let o = JSONObject([("x", .int(1)), ("y", .int(2)), ("x", .int(3))])
        XCTAssertEqual(o.keys, ["x", "y"])
        XCTAssertEqual(o["x"], .int(3))
        let ab = JSONObject([("a", .int(1)), ("b", .int(2))])
        let ba = JSONObject([("b", .int(2)), ("a", .int(1))])
        XCTAssertNotEqual(ab, ba, "equality is order-sensitive")
        XCTAssertEqual(ba.sortedByKey(), ab)
        XCTAssertEqual(ba.sortedByKey().keys, ["a", "b"])
        XCTAssertEqual(Set([ab, ab, ba]).count, 2)
        let literal: JSONObject = ["a": 1, "b": 2]
        XCTAssertEqual(literal, ab)
    }

    // MARK: convenience

    func testConvenience() {
        XCTAssertEqual(JSONValue("s"), .string("s"))
        XCTAssertEqual(JSONValue.int(-5), .number("-5"))
        XCTAssertEqual(JSONValue.double(1.5), .number("1.5"))
        XCTAssertEqual(JSONValue.double(2), .number("2.0"))
        XCTAssertEqual(JSONValue.double(.nan), .null)
        XCTAssertEqual(JSONValue.double(.infinity), .null)
        for d in [0.1, -3.25, 1e-7, 1e300, .leastNonzeroMagnitude, -0.0, 123456789.125] {
            let v = JSONValue.double(d)
            XCTAssertEqual(try? JSONValue.parse(v.compact()), v)
            XCTAssertEqual(v.doubleValue, d)
        }
        XCTAssertEqual(JSONValue.string("s").stringValue, "s")
        XCTAssertNil(JSONValue.int(1).stringValue)
        XCTAssertEqual(JSONValue.bool(true).boolValue, true)
        XCTAssertNil(JSONValue.null.boolValue)
        XCTAssertEqual(JSONValue.array([.null]).arrayValue, [.null])
        XCTAssertNil(JSONValue.object(JSONObject()).arrayValue)
        XCTAssertEqual(JSONValue.object(JSONObject()).objectValue, JSONObject())
        XCTAssertEqual(JSONValue.null.typeName, "null")
        XCTAssertTrue(JSONValue.null.isNull)
    }

    func testIntValue() {
        let table: [(String, Int?)] = [
            ("0", 0), ("-0", 0), ("12", 12), ("-12", -12), ("1.0", 1), ("1.000", 1), ("3e5", 300_000),
            ("3E+2", 300), ("1000e-3", 1), ("1500e-3", nil), ("-2.5e1", -25), ("0.0", 0), ("0e999999999999", 0),
            ("9223372036854775807", Int.max), ("-9223372036854775808", Int.min),
            ("9223372036854775808", nil), ("1e19", nil), ("1e400", nil), ("1.5", nil), ("1e-1", nil),
            ("0.1", nil), ("123e-2", nil), ("9007199254740993.0", 9_007_199_254_740_993),
            ("92233720368547758070e-1", Int.max), ("1e-999999999999", nil),
        ]
        for (lexeme, expected) in table {
            XCTAssertEqual(JSONValue.number(lexeme).intValue, expected, lexeme)
        }
        XCTAssertNil(JSONValue.string("1").intValue)
    }

    // MARK: paths and merging

    func testValueAtPath() throws {
        let v = try JSONValue.parse(#"{"a": {"b": {"c": 1}, "list": [1]}, "s": "x"}"#)
        XCTAssertEqual(v.value(at: []), v)
        XCTAssertEqual(v.value(at: ["a", "b", "c"]), .int(1))
        XCTAssertEqual(v.value(at: ["a", "b"])?.compact(), #"{"c":1}"#)
        XCTAssertNil(v.value(at: ["a", "missing"]))
        XCTAssertNil(v.value(at: ["s", "x"]))
        XCTAssertNil(v.value(at: ["a", "list", "0"]))
        XCTAssertNil(JSONValue.int(1).value(at: ["a"]))
        XCTAssertEqual(v.objectValue?.value(at: ["a", "b", "c"]), .int(1))
    }

    func testSetValueAtPath() throws {
        var v: JSONValue = ["keep": 1, "a": ["x": 1]]
        try v.setValue(.int(2), at: ["a", "y"])
        try v.setValue("deep", at: ["new", "sub", "leaf"])
        try v.setValue(.int(5), at: ["keep"])
        XCTAssertEqual(v.compact(), #"{"keep":5,"a":{"x":1,"y":2},"new":{"sub":{"leaf":"deep"}}}"#)

        var root = JSONValue.int(1)
        try root.setValue(.bool(true), at: [])
        XCTAssertEqual(root, .bool(true))

        XCTAssertThrowsError(try v.setValue(.null, at: ["keep", "inner"])) { error in
            guard let e = error as? JSONPathError else { return XCTFail("wrong error \(error)") }
            XCTAssertEqual(e.path, ["keep", "inner"])
            XCTAssertEqual(e.conflictingPrefix, ["keep"])
            XCTAssertEqual(e.description, "cannot set 'keep.inner': 'keep' is a number, not an object")
        }
        XCTAssertThrowsError(try v.setValue(.null, at: ["new", "sub", "leaf", "z"])) { error in
            XCTAssertEqual(
                "\(error)", "cannot set 'new.sub.leaf.z': 'new.sub.leaf' is a string, not an object")
        }
        var arr: JSONValue = [1]
        XCTAssertThrowsError(try arr.setValue(.null, at: ["a"])) { error in
            XCTAssertEqual("\(error)", "cannot set 'a': the root value is an array, not an object")
        }
        // A failed set leaves the value unchanged.
        XCTAssertEqual(v.compact(), #"{"keep":5,"a":{"x":1,"y":2},"new":{"sub":{"leaf":"deep"}}}"#)

        var o = JSONObject()
        try o.setValue(.int(1), at: ["p", "q"])
        XCTAssertEqual(JSONValue.object(o).compact(), #"{"p":{"q":1}}"#)
    }

    func testMerging() throws {
        let base = try JSONValue.parse(#"{"a": 1, "o": {"x": 1, "y": {"z": 1}}, "l": [1, 2], "s": "keep"}"#)
        let patch = try JSONValue.parse(#"{"o": {"y": {"w": 2}, "x": null, "n": 3}, "l": [3], "a": {"now": "obj"}, "new": true}"#)
        guard let patchObject = patch.objectValue else { return XCTFail("patch not an object") }
        let merged = base.merging(patchObject)
        XCTAssertEqual(
            merged.compact(),
            #"{"a":{"now":"obj"},"o":{"x":null,"y":{"z":1,"w":2},"n":3},"l":[3],"s":"keep","new":true}"#)
        XCTAssertEqual(JSONValue.int(1).merging(patchObject), patch)
        XCTAssertEqual(base.merging(JSONObject()), base)
    }
}
