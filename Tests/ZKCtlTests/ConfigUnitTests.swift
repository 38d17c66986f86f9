import Foundation
import XCTest
import ZooKeeper
import ZKTestSupport
@testable import ZooKeeperRecipes
@testable import ZKCtl

/// The plain logic of `zkctl config`: keys, values, export formats, import batching, and the
/// watch engine's bookkeeping.
final class ConfigUnitTests: XCTestCase {
    // MARK: Keys

    func testKeyRules() {
        XCTAssertNil(ConfigSupport.keyProblem("feature_flags", nested: false))
        XCTAssertNil(ConfigSupport.keyProblem("größe-ключ-鍵", nested: false))
        XCTAssertNil(ConfigSupport.keyProblem("a.b", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem("", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem(".", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem("..", nested: true))
        XCTAssertNotNil(ConfigSupport.keyProblem("a\u{1}b", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem("a\nb", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem("a\u{85}b", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem("key-🔑", nested: false))
        XCTAssertNotNil(ConfigSupport.keyProblem("a/b", nested: false))
        XCTAssertNil(ConfigSupport.keyProblem("a/b", nested: true))
        XCTAssertNotNil(ConfigSupport.keyProblem("/a", nested: true))
        XCTAssertNotNil(ConfigSupport.keyProblem("a/", nested: true))
        XCTAssertNotNil(ConfigSupport.keyProblem("a//b", nested: true))
        XCTAssertNotNil(ConfigSupport.keyProblem("a/../b", nested: true))
        XCTAssertNotNil(ConfigSupport.keyProblem("a/./b", nested: true))
        // Checked on the bytes for ASCII keys, on the characters otherwise: the same answers.
        XCTAssertEqual(ConfigSupport.keyProblem("a\u{7f}b", nested: false), "a key cannot hold control characters")
        XCTAssertEqual(ConfigSupport.keyProblem("é/\u{1}", nested: true), "a key cannot hold control characters")
        XCTAssertNil(ConfigSupport.keyProblem("größe/ключ", nested: true))
        XCTAssertEqual(ConfigSupport.keyProblem("größe/../x", nested: true), "a key cannot be '.' or '..'")
        XCTAssertEqual(ConfigSupport.keyProblem("ключ/", nested: true), "a nested key cannot start or end with '/'")
        XCTAssertEqual(ConfigSupport.keyProblem("..", nested: false), "a key cannot be '.' or '..'")
    }

    /// Short keys of a few characters against the key rules written out plainly.
    func testKeyRulesOnManyShortKeys() {
        let alphabet: [String] = ["a", ".", "/", " ", "~", "\u{1}", "\u{7f}", "é", "😀"]
        func good(_ key: String, nested: Bool) -> Bool {
            if key.isEmpty || key == "." || key == ".." { return false }
            for u in key.unicodeScalars where u.value < 0x20 || (0x7f...0x9f).contains(u.value) || u.value > 0xffff { return false }
            guard key.contains("/") else { return true }
            guard nested else { return false }
            return key.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
        }
        var random = SplitMix(seed: 22)
        for _ in 0..<20_000 {
            let key = (0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random)! }.joined()
            for nested in [false, true] {
                XCTAssertEqual(ConfigSupport.keyProblem(key, nested: nested) == nil, good(key, nested: nested), "\(key.debugDescription) nested: \(nested)")
            }
        }
    }

    func testKeyPaths() throws {
        XCTAssertEqual(try ConfigSupport.path(for: "k", root: "/config", nested: false, command: []), "/config/k")
        XCTAssertEqual(try ConfigSupport.path(for: "k", root: "/", nested: false, command: []), "/k")
        XCTAssertEqual(try ConfigSupport.path(for: "a/b", root: "/c", nested: true, command: []), "/c/a/b")
        XCTAssertThrowsError(try ConfigSupport.path(for: "a/b", root: "/c", nested: false, command: ["config", "set"])) { error in
            XCTAssertEqual(ExitCode.code(for: error), ExitCode.usage)
        }
        XCTAssertEqual(ConfigSupport.key(for: "/config/k", root: "/config"), "k")
        XCTAssertEqual(ConfigSupport.key(for: "/config/a/b", root: "/config"), "a/b")
        XCTAssertEqual(ConfigSupport.key(for: "/k", root: "/"), "k")
        XCTAssertEqual(ConfigSupport.printable("a\u{1}b"), "a\\x01b")
    }

    // MARK: Values

    func value(_ text: String, argument: Bool = true, string: Bool = false) throws -> JSONValue {
        try ConfigSupport.value(from: Data(text.utf8), fromArgument: argument, forceString: string, what: "value")
    }

    func testValueInterpretation() throws {
        XCTAssertEqual(try value("test_value"), .string("test_value"))
        XCTAssertEqual(try value("\"test_value\""), .string("test_value"))
        XCTAssertEqual(try value("42"), .number("42"))
        XCTAssertEqual(try value("-1.50"), .number("-1.50"))
        XCTAssertEqual(try value("true"), .bool(true))
        XCTAssertEqual(try value("null"), .null)
        XCTAssertEqual(try value("trueish"), .string("trueish"))
        XCTAssertEqual(try value(#"{"new_ui": true}"#), .object(JSONObject([("new_ui", .bool(true))])))
        XCTAssertEqual(try value("hello world"), .string("hello world"))
        XCTAssertEqual(try value("{x", string: true), .string("{x"))
        XCTAssertEqual(try value("42", string: true), .string("42"))
        XCTAssertEqual(try value("-"), .string("-"))
        XCTAssertEqual(try value("10.0.0.5"), .string("10.0.0.5"))
        for bad in ["{x", "[1,", "\"open", "1.", "01", "{\"a\":1} trailing"] {
            XCTAssertThrowsError(try value(bad), bad) { error in
                XCTAssertEqual(ExitCode.code(for: error), ExitCode.badData, bad)
            }
        }
        // Text read from a file loses one trailing newline; an argument keeps everything.
        XCTAssertEqual(try value("line\n", argument: false), .string("line"))
        XCTAssertEqual(try value("line\n\n", argument: false), .string("line\n"))
        XCTAssertEqual(try value("line\n", argument: true), .string("line\n"))
        XCTAssertEqual(try value("[1,2]\n", argument: false), .array([.number("1"), .number("2")]))
        XCTAssertThrowsError(try ConfigSupport.value(from: Data([0xff, 0xfe]), fromArgument: false, forceString: false, what: "v")) { error in
            XCTAssertEqual(ExitCode.code(for: error), ExitCode.badData)
        }
    }

    func testDecodeAndEncode() {
        XCTAssertEqual(ConfigSupport.decode(Data(#"{"a": 1.0}"#.utf8)), .object(JSONObject([("a", .number("1.0"))])))
        XCTAssertEqual(ConfigSupport.decode(Data("plain text".utf8)), .string("plain text"))
        XCTAssertEqual(ConfigSupport.decode(Data()), .string(""))
        XCTAssertEqual(ConfigSupport.decode(Data([0xff, 0x00])), .object(JSONObject([("base64", .string("/wA="))])))
        XCTAssertEqual(String(decoding: ConfigSupport.encode(.object(JSONObject([("b", .number("2")), ("a", .string("é"))]))), as: UTF8.self),
                       #"{"b":2,"a":"é"}"#)
    }

    /// The direct reader of `config import` input gives what the whole-document parse and
    /// `encode` give, or gives way.
    func testImportInputIsReadLikeTheParsedDocument() throws {
        let agreeing = [
            #"{}"#,
            #" { "a" : "x" , "b/c":"y\"z" , "d": 1.50 , "e": [1, {"f": null}], "g": true, "h": "é\u00e9", "i": "\u007f" } "#,
            #"{"a":"tab\there","b":"/slash/","c":""}"#,
        ]
        for text in agreeing {
            let direct = try XCTUnwrap(ConfigSupport.decodeImport(Array(text.utf8)), text)
            guard case .object(let o) = try JSONValue.parse(text) else { return XCTFail(text) }
            XCTAssertEqual(direct.map(\.key), o.map(\.key), text)
            XCTAssertEqual(direct.map(\.data), o.map { ConfigSupport.encode($0.value) }, text)
        }
        XCTAssertEqual(ConfigSupport.decodeImport(Array(#"{"a":"x"}"#.utf8))?.first?.data, Data(#""x""#.utf8))
        // Not an object, not JSON, a key twice (the last one counts), trailing text.
        for text in [#"[1]"#, #"{"a":}"#, #"{"a":"x","a":"y"}"#, #"{"a":"x"} x"#, #"{"a":"x""#] {
            XCTAssertNil(ConfigSupport.decodeImport(Array(text.utf8)), text)
        }
    }

    func testSizeLimit() {
        XCTAssertNoThrow(try ConfigSupport.checkSize(key: "k", path: "/config/k", data: Data(count: 500_000), acl: ACL.openUnsafe))
        XCTAssertThrowsError(try ConfigSupport.checkSize(key: "k", path: "/config/k", data: Data(count: 1_100_000), acl: ACL.openUnsafe)) { error in
            XCTAssertEqual(ExitCode.code(for: error), ExitCode.badData)
            XCTAssertTrue(ExitCode.message(for: error).contains("1100000 bytes"), ExitCode.message(for: error))
        }
    }

    // MARK: Export formats

    func testShellNames() {
        XCTAssertEqual(ConfigSupport.shellName("feature_flags"), "FEATURE_FLAGS")
        XCTAssertEqual(ConfigSupport.shellName("feature-flags.v2"), "FEATURE_FLAGS_V2")
        XCTAssertEqual(ConfigSupport.shellName("1st"), "_1ST")
        XCTAssertEqual(ConfigSupport.shellName("größe"), "GR__E")
        XCTAssertEqual(ConfigSupport.shellName("1st", prefix: "APP_"), "APP_1ST")
        XCTAssertTrue(ConfigSupport.isShellName("APP_"))
        XCTAssertFalse(ConfigSupport.isShellName("1A"))
        XCTAssertFalse(ConfigSupport.isShellName("A-B"))
    }

    func testShellQuoting() throws {
        XCTAssertEqual(ConfigSupport.shellQuoted("it's"), #"'it'\''s'"#)
        XCTAssertEqual(ConfigSupport.shellQuoted("$HOME `x`"), "'$HOME `x`'")
        let lines = try ConfigSupport.envLines([("a", .string("x y")), ("b", .object(JSONObject([("k", .bool(true))])))], prefix: "")
        XCTAssertEqual(lines, ["A='x y'", #"B='{"k":true}'"#])
        XCTAssertThrowsError(try ConfigSupport.envLines([("a-b", .number("1")), ("a_b", .number("2"))], prefix: "")) { error in
            XCTAssertEqual(ExitCode.code(for: error), ExitCode.badData)
        }
        XCTAssertThrowsError(try ConfigSupport.envLines([("a", .string("x\0y"))], prefix: ""))
    }

    func testSQL() {
        XCTAssertEqual(ConfigSupport.sqlQuoted("it's"), "'it''s'")
        let lines = ConfigSupport.sqlLines([("k'", .string("v'"), 3)])
        XCTAssertEqual(lines.first, "BEGIN;")
        XCTAssertEqual(lines.last, "COMMIT;")
        XCTAssertTrue(lines[1].hasPrefix("CREATE TABLE IF NOT EXISTS configurations (key"))
        XCTAssertEqual(lines[2], #"INSERT INTO configurations (key, value, version) VALUES ('k''', '"v''"', 3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version;"#)
    }

    // MARK: Import batches

    func testBatchesStayUnderThePacketLimit() {
        let big = Data(count: 400_000)
        let ops: [MultiOp] = (0..<5).map { .create("/c/k\($0)", data: big) } + [.delete("/c/old", version: 1)]
        let batches = MultiBatcher.batches(ops)
        XCTAssertEqual(batches.count, 3)
        XCTAssertEqual(batches.flatMap { $0 }, ops)
        for b in batches { XCTAssertLessThanOrEqual(ZooKeeperClient.estimatedMultiSize(b), ZooKeeperClient.maxPacketSize) }
        XCTAssertEqual(MultiBatcher.batches([.create("/c/a"), .create("/c/b")]).count, 1)
        XCTAssertEqual(MultiBatcher.batches([]).count, 0)
    }

    // MARK: Watch engine bookkeeping

    func stat(_ czxid: Int64, _ mzxid: Int64, _ version: Int32) -> Stat {
        Stat(czxid: czxid, mzxid: mzxid, version: version)
    }

    func testDiffKinds() {
        typealias S = WatchEngineState
        XCTAssertEqual(S.diff(before: nil, after: nil, data: nil, path: "/a", parent: nil, initial: true), [])
        XCTAssertEqual(S.diff(before: nil, after: stat(1, 1, 0), data: Data("1".utf8), path: "/a", parent: nil, initial: true).map(\.kind), [.initial])
        XCTAssertEqual(S.diff(before: nil, after: stat(1, 1, 0), data: nil, path: "/a", parent: nil, initial: false).map(\.kind), [.created])
        XCTAssertEqual(S.diff(before: stat(1, 1, 0), after: nil, data: nil, path: "/a", parent: nil, initial: false).map(\.kind), [.removed])
        XCTAssertEqual(S.diff(before: stat(1, 1, 0), after: stat(1, 5, 1), data: nil, path: "/a", parent: nil, initial: false).map(\.kind), [.changed])
        XCTAssertEqual(S.diff(before: stat(1, 5, 1), after: stat(1, 5, 1), data: nil, path: "/a", parent: nil, initial: false), [])
        // Removed and created again while we did not look.
        XCTAssertEqual(S.diff(before: stat(1, 5, 1), after: stat(9, 9, 0), data: nil, path: "/a", parent: nil, initial: false).map(\.kind),
                       [.removed, .created])
        XCTAssertEqual(S.diff(before: stat(1, 1, 0), after: stat(1, 5, 1), data: nil, path: "/a", parent: nil, initial: false,
                              existenceOnly: true), [])
    }

    func testEngineFollowsChildren() {
        var e = WatchEngineState(spec: WatchSpec(parents: ["/c"]))
        var plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/c"])
        XCTAssertTrue(plans[0].armData && plans[0].armChildren && plans[0].followChildren && !plans[0].readData)
        // The parent exists with two children: nothing reported for it, two children to read.
        var read = NodeRead(path: "/c", stat: stat(1, 1, 0), children: ["b", "a"], armedData: true, armedChildren: true)
        XCTAssertEqual(e.apply(read, for: plans[0], initial: true), [])
        plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/c/a", "/c/b"])
        XCTAssertTrue(plans.allSatisfy { $0.readData && $0.armData && !$0.followChildren })
        var changes = e.apply(NodeRead(path: "/c/a", stat: stat(2, 2, 0), data: Data("1".utf8), armedData: true), for: plans[0], initial: true)
        changes += e.apply(NodeRead(path: "/c/b", stat: stat(3, 3, 0), data: Data("2".utf8), armedData: true), for: plans[1], initial: true)
        XCTAssertEqual(changes.map(\.kind), [.initial, .initial])
        XCTAssertEqual(changes.map(\.parent), ["/c", "/c"])
        XCTAssertFalse(e.hasDirty)

        // A data watch fires: only that node is read again, without arming the children watch.
        e.fired("/c/a", .data)
        plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/c/a"])
        XCTAssertTrue(plans[0].armData)
        changes = e.apply(NodeRead(path: "/c/a", stat: stat(2, 7, 1), data: Data("5".utf8), armedData: true), for: plans[0], initial: false)
        XCTAssertEqual(changes, [NodeChange(kind: .changed, path: "/c/a", data: Data("5".utf8), stat: stat(2, 7, 1), parent: "/c")])

        // The children watch fires: b went, d came.
        e.fired("/c", .children)
        plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/c"])
        XCTAssertFalse(plans[0].armData)
        XCTAssertTrue(plans[0].armChildren)
        read = NodeRead(path: "/c", stat: stat(1, 1, 0), children: ["a", "d"], armedChildren: true)
        changes = e.apply(read, for: plans[0], initial: false)
        XCTAssertEqual(changes.map(\.kind), [.removed])
        XCTAssertEqual(changes.map(\.path), ["/c/b"])
        plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/c/d"])
        changes = e.apply(NodeRead(path: "/c/d", stat: stat(8, 8, 0), data: Data(), armedData: true), for: plans[0], initial: false)
        XCTAssertEqual(changes.map(\.kind), [.created])

        // A reconnect re-reads everything but re-arms nothing; a new session re-arms everything.
        e.markAllDirty(disarm: false)
        plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/c", "/c/a", "/c/d"])
        XCTAssertFalse(plans.contains { $0.armData || $0.armChildren })
        e.markAllDirty(disarm: true)
        plans = e.takeDirty()
        XCTAssertTrue(plans.allSatisfy(\.armData))
    }

    func testEngineExplicitPathComesAndGoes() {
        var e = WatchEngineState(spec: WatchSpec(paths: ["/c/flag"]))
        var plans = e.takeDirty()
        // Missing at the start: no event; the existence watch is armed.
        XCTAssertEqual(e.apply(NodeRead(path: "/c/flag", armedData: true), for: plans[0], initial: true), [])
        e.fired("/c/flag", .data)
        plans = e.takeDirty()
        var changes = e.apply(NodeRead(path: "/c/flag", stat: stat(4, 4, 0), data: Data("true".utf8), armedData: true), for: plans[0], initial: false)
        XCTAssertEqual(changes.map(\.kind), [.created])
        XCTAssertNil(changes[0].parent)
        e.fired("/c/flag", .data)
        plans = e.takeDirty()
        changes = e.apply(NodeRead(path: "/c/flag", armedData: true), for: plans[0], initial: false)
        XCTAssertEqual(changes.map(\.kind), [.removed])
        XCTAssertNil(changes[0].data)
    }

    func testEngineRecursiveDropsSubtree() {
        var e = WatchEngineState(spec: WatchSpec(parents: ["/r"], recursive: true))
        var plans = e.takeDirty()
        _ = e.apply(NodeRead(path: "/r", stat: stat(1, 1, 0), children: ["a"], armedData: true, armedChildren: true), for: plans[0], initial: true)
        plans = e.takeDirty()
        XCTAssertTrue(plans[0].followChildren)
        _ = e.apply(NodeRead(path: "/r/a", stat: stat(2, 2, 0), data: Data(), children: ["x"], armedData: true, armedChildren: true), for: plans[0], initial: true)
        plans = e.takeDirty()
        XCTAssertEqual(plans.map(\.path), ["/r/a/x"])
        _ = e.apply(NodeRead(path: "/r/a/x", stat: stat(3, 3, 0), data: Data(), children: [], armedData: true, armedChildren: true), for: plans[0], initial: true)
        // /r loses a (and so a/x): both are reported removed, deepest first.
        e.fired("/r", .children)
        plans = e.takeDirty()
        let changes = e.apply(NodeRead(path: "/r", stat: stat(1, 1, 0), children: [], armedChildren: true), for: plans[0], initial: false)
        XCTAssertEqual(changes.map(\.path), ["/r/a/x", "/r/a"])
        XCTAssertEqual(changes.map(\.kind), [.removed, .removed])
        XCTAssertEqual(e.nodes.keys.sorted(), ["/r"])
    }
}
