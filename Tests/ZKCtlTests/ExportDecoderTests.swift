import Foundation
import XCTest
import ZooKeeper
import ZooKeeperRecipes
import ZKTestSupport

@testable import ZKCtl

/// The direct export decoder (`ExportDecoder`) against the general reader (`BackupFormat.readTree`):
/// it must read any layout to the same snapshot, and give way on everything the general reader
/// refuses, so that `BackupFormat.read` refuses it with the same message.
final class ExportDecoderTests: XCTestCase {
    let acl = #"[{"scheme":"world","id":"anyone","perms":"cdrwa"}]"#

    func nodeLines(_ root: String = "/r") -> [String] {
        [
            BackupFormat.nodeLine(BackupNode(path: "", type: .persistent, data: Data(), acl: ACL.openUnsafe)),
            BackupFormat.nodeLine(BackupNode(path: "a", type: .persistent, data: Data("{\"port\": 8080}\n\u{1}é".utf8),
                                             acl: [ACL(permissions: .read, scheme: "world", id: "anyone"),
                                                   ACL(permissions: .all, scheme: "digest", id: "ops:T0rvh0Y6Yn/JHNTdjTyvzDRvkJw=")])),
            BackupFormat.nodeLine(BackupNode(path: "a/b", type: .container, data: Data([0, 0xff]), acl: ACL.openUnsafe)),
            BackupFormat.nodeLine(BackupNode(path: "c", type: .ttl(milliseconds: 3_600_000), data: Data("warm".utf8), acl: ACL.openUnsafe)),
        ]
    }

    func exportText() -> String {
        BackupFormat.header(root: "/r", exported: Date(timeIntervalSince1970: 0)) + nodeLines().joined(separator: ",\n")
            + BackupFormat.footer(nodeCount: 4, skippedEphemeral: 2)
    }

    func same(_ a: BackupSnapshot, _ b: BackupSnapshot, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.source, b.source, file: file, line: line)
        XCTAssertEqual(a.root, b.root, file: file, line: line)
        XCTAssertEqual(a.nodes, b.nodes, file: file, line: line)
        XCTAssertEqual(a.skippedEphemeral, b.skippedEphemeral, file: file, line: line)
    }

    /// The decoder reads `text` itself, to what the general reader makes of it.
    func assertDecodes(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(text.utf8)
        guard let direct = ExportDecoder.decode(bytes) else { return XCTFail("the decoder gave way on \(text)", file: file, line: line) }
        do { same(direct, try BackupFormat.readTree(bytes), file: file, line: line) } catch {
            XCTFail("the general reader refused what the decoder read: \(error.message)", file: file, line: line)
        }
    }

    /// Whatever the decoder says about `bytes` agrees with the general reader.
    func assertAgrees(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let direct = ExportDecoder.decode(bytes)
        do {
            let general = try BackupFormat.readTree(bytes)
            if let direct { same(direct, general, file: file, line: line) }
        } catch {
            XCTAssertNil(direct, "decoded what the general reader refuses (\(error.message)): \(String(decoding: bytes, as: UTF8.self))",
                         file: file, line: line)
        }
    }

    func message(_ text: String) -> String { message(Array(text.utf8)) }

    func message(_ bytes: [UInt8]) -> String {
        do {
            let s = try BackupFormat.read(bytes: bytes)
            XCTFail("expected an error, read \(s.nodes.count) nodes")
            return ""
        } catch {
            return error.message
        }
    }

    func testWhatExportWritesIsDecodedDirectly() throws {
        assertDecodes(exportText())
        let s = try XCTUnwrap(ExportDecoder.decode(Array(exportText().utf8)))
        XCTAssertEqual(s.nodes.map(\.path), ["", "a", "a/b", "c"])
        XCTAssertEqual(s.skippedEphemeral, 2)
        XCTAssertEqual(s.nodes[2].data, Data([0, 0xff]))
        XCTAssertEqual(s.nodes[3].type, .ttl(milliseconds: 3_600_000))
        assertDecodes(#"{"format":"zkctl-export","version":1,"root":"/","nodes":[]}"#)
    }

    func testAnyLayoutIsDecodedDirectly() throws {
        let tree = try JSONValue.parse(exportText())
        assertDecodes(tree.pretty())  // pretty-printed
        assertDecodes(" \n\t" + tree.compact() + " \r\n")
        // Top-level keys, node keys and ACL entry keys in reverse order: root after nodes.
        func reversed(_ v: JSONValue) -> JSONValue {
            switch v {
            case .object(let o): return .object(JSONObject(o.reversed().map { ($0.key, reversed($0.value)) }))
            case .array(let a): return .array(a.map(reversed))
            default: return v
            }
        }
        let backwards = reversed(tree).pretty()
        XCTAssertTrue(backwards.hasPrefix("{\n  \"skippedEphemeral\""), backwards)
        assertDecodes(backwards)
        // Whitespace around every token.
        assertDecodes(#" { "nodes" : [ { "acl" : [ { "perms" : "r" , "id" : "anyone" , "scheme" : "world" } ] , "path" : "" } ] , "root" : "/x" , "version" : 1 , "format" : "zkctl-export" } "#)
        // Numbers the general reader takes as integers.
        assertDecodes(#"{"format":"zkctl-export","version":1.0,"root":"/x","nodes":[{"path":"","type":"ttl","ttl":36e2,"acl":\#(acl)}],"nodeCount":1e0}"#)
    }

    /// ACLs that repeat, change and come back; data with every short escape, a \u escape and
    /// non-ASCII text; keys written with escapes.
    func testRepeatedACLsEscapesAndEscapedKeys() throws {
        let other = #"[{"scheme":"world","id":"anyone","perms":"r"}]"#
        let spaced = #"[ {"scheme":"world","id":"anyone","perms":"cdrwa"} ]"#
        let nodes = [
            #"{"path":"","acl":\#(acl)}"#,
            #"{"path":"a","data":"\"q\" \\ \/ \b\f\n\r\t","acl":\#(acl)}"#,
            #"{"path":"b","data":"\u00e9\u0041 é","acl":\#(other)}"#,
            #"{"path":"c","data":"plain","acl":\#(acl)}"#,
            #"{"p\u0061th":"d","d\u0061ta":"x","\u0061cl":\#(spaced)}"#,
            #"{"path":"e","acl":\#(other)}"#,
        ]
        let text = #"{"format":"zkctl-export","version":1,"root":"/r","nodes":["# + nodes.joined(separator: ",") + "]}"
        assertDecodes(text)
        let s = try XCTUnwrap(ExportDecoder.decode(Array(text.utf8)))
        XCTAssertEqual(s.nodes.map(\.path), ["", "a", "b", "c", "d", "e"])
        XCTAssertEqual(s.nodes[1].data, Data("\"q\" \\ / \u{8}\u{c}\n\r\t".utf8))
        XCTAssertEqual(s.nodes[2].data, Data("éA é".utf8))
        XCTAssertEqual(s.nodes[2].acl, [ACL(permissions: .read, scheme: "world", id: "anyone")])
        XCTAssertEqual(s.nodes[3].acl, ACL.openUnsafe)
        XCTAssertEqual(s.nodes[4].data, Data("x".utf8))
        XCTAssertEqual(s.nodes[4].acl, ACL.openUnsafe)
        XCTAssertEqual(s.nodes[5].acl, s.nodes[2].acl)
        // A repeated ACL text that a bad one follows is still refused with the reader's message.
        let bad = #"{"format":"zkctl-export","version":1,"root":"/r","nodes":[{"path":"","acl":\#(acl)},{"path":"a","acl":\#(acl)},{"path":"b","acl":[{"scheme":"world","id":"anyone","perms":"z"}]}]}"#
        XCTAssertNil(ExportDecoder.decode(Array(bad.utf8)))
        XCTAssertEqual(message(bad), #"node 2 ('b'): bad ACL entry {"scheme":"world","id":"anyone","perms":"z"} (expected {"scheme","id","perms":"cdrwa"})"#)
    }

    func testUnknownKeysAreIgnored() {
        assertDecodes(#"{"comment":{"deep":[1,2,{"x":null}]},"format":"zkctl-export","version":1,"root":"/x","later":true,"nodes":[{"path":"","owner":"me","acl":[{"scheme":"world","id":"anyone","perms":"r","note":[1]}],"mtime":5}],"extra":"x"}"#)
    }

    func testEveryOtherDocumentGoesToTheGeneralReader() {
        let zkShell = #"{"/a": {"content": "eA==", "acls": []}}"#
        XCTAssertNil(ExportDecoder.decode(Array(zkShell.utf8)))
        let base = #"{"format":"zkctl-export","version":1,"root":"/x","nodes":[{"path":"","acl":\#(acl)}]"#
        for doc in [
            base + #","root":"/y"}"#,  // a repeated key: the last counts
            #"{"format":"zkctl-export","version":1,"root":"/x","nodes":[{"path":"","path":"","acl":\#(acl)}]}"#,
            #"{"format":"zkctl-export","version":1,"root":"/x","nodes":[{"path":"","type":5,"acl":\#(acl)}]}"#,  // a non-string type reads as persistent
            #"{"format":"zkctl-export","version":1,"root":"/x","nodes":[{"path":"","ttl":"x","acl":\#(acl)}]}"#,
        ] {
            XCTAssertNil(ExportDecoder.decode(Array(doc.utf8)), doc)
            assertAgrees(Array(doc.utf8))
        }
        XCTAssertNoThrow(try BackupFormat.read(bytes: Array((base + #","root":"/y"}"#).utf8)))
    }

    /// Every message of the export reader, word for word as before the decoder existed.
    func testErrorMessagesAreUnchanged() {
        let head = #"{"format":"zkctl-export","version":1,"root":"/r","nodes":["#
        let root = #"{"path":"","acl":\#(acl)}"#
        func nodes(_ more: String, tail: String = "") -> String { head + root + "," + more + "]" + tail + "}" }
        let cases: [(String, String)] = [
            ("[1,2]", "expected a JSON object (a zkctl export or a zk-shell dump), found an array"),
            ("5", "expected a JSON object (a zkctl export or a zk-shell dump), found a number"),
            (#"{"a":1}"#, #"neither a zkctl export (no "format" field) nor a zk-shell dump (keys are not znode paths)"#),
            (#"{"format":"other","version":1,"root":"/","nodes":[]}"#, #"unknown format "other"; expected "zkctl-export""#),
            (#"{"format":1,"nodes":[]}"#, #"unknown format 1; expected "zkctl-export""#),
            (#"{"format":"zkctl-export","version":"1","root":"/","nodes":[]}"#, #"missing or non-integer "version""#),
            (#"{"format":"zkctl-export","version":2,"root":"/","nodes":[]}"#, "export format version 2 is not supported (this zkctl reads version 1)"),
            (#"{"format":"zkctl-export","version":1,"nodes":[]}"#, #"missing "root""#),
            (#"{"format":"zkctl-export","version":1,"root":"x","nodes":[]}"#, "bad root 'x': \(PathRules.problem(with: "x") ?? "")"),
            (#"{"format":"zkctl-export","version":1,"root":"/"}"#, #"missing "nodes" array"#),
            (#"{"format":"zkctl-export","version":1,"root":"/","nodes":{}}"#, #"missing "nodes" array"#),
            (#"{"format":"zkctl-export","version":1,"root":"/","nodes":[],"skippedEphemeral":-1}"#, #""skippedEphemeral" must be a whole number"#),
            (head + root + #"],"nodeCount":5}"#, #""nodeCount" says 5 but the file holds 1 nodes"#),
            (head + #"{"path":"a","acl":\#(acl)}]}"#, #"node 0 must be the root (path ""), found 'a'"#),
            (nodes(#"{"path":"a","acl":\#(acl)},{"path":"a","acl":\#(acl)}"#), "node 2: 'a' appears twice"),
            (nodes(#"{"path":"a/b","acl":\#(acl)}"#), "node 1: 'a/b' comes before its parent (parents must come first)"),
            (nodes(#"{"path":"a\u0001","acl":\#(acl)}"#), "node 1: bad path 'a\u{1}': \(PathRules.problem(with: "/r/a\u{1}") ?? "")"),
            (nodes("7"), "node 1: expected an object"),
            (nodes(#"{"acl":\#(acl)}"#), #"node 1: missing "path""#),
            (nodes(#"{"path":"/abs","acl":\#(acl)}"#), "node 1: path '/abs' must be relative to the root (no leading or trailing '/')"),
            (nodes(#"{"path":"a","type":"ttl","ttl":0,"acl":\#(acl)}"#), #"node 1 ('a'): a ttl node needs "ttl", milliseconds from 1 to 1099511627775"#),
            (nodes(#"{"path":"a","type":"ephemeral","acl":\#(acl)}"#), "node 1 ('a'): unknown type 'ephemeral' (persistent, container or ttl)"),
            (nodes(#"{"path":"a","data":5,"acl":\#(acl)}"#), #"node 1 ('a'): "data" must be a string"#),
            (nodes(#"{"path":"a","dataBase64":"!!","acl":\#(acl)}"#), #"node 1 ('a'): "dataBase64" is not valid base64"#),
            (nodes(#"{"path":"a","data":"x","dataBase64":"eA==","acl":\#(acl)}"#), #"node 1 ('a'): give "data" or "dataBase64", not both"#),
            (nodes(#"{"path":"a"}"#), #"node 1 ('a'): missing "acl" array"#),
            (nodes(#"{"path":"a","acl":[]}"#), #"node 1 ('a'): empty "acl" (ZooKeeper refuses it)"#),
            (nodes(#"{"path":"a","acl":[{"scheme":"world","id":"anyone","perms":"rx"}]}"#),
             #"node 1 ('a'): bad ACL entry {"scheme":"world","id":"anyone","perms":"rx"} (expected {"scheme","id","perms":"cdrwa"})"#),
            (nodes(#"{"path":"a","acl":[{"scheme":"world","id":"anyone","perms":"r"},"x"]}"#),
             #"node 1 ('a'): bad ACL entry "x" (expected {"scheme","id","perms":"cdrwa"})"#),
            (nodes(#"{"path":"a","acl":[{"scheme":"digest","id":"bob:x","perms":"cdrwa"}]}"#),
             "node 1 ('a'): ACL entry digest:bob:x was hidden by the server when exported (the exporting session had no admin permission there); export again with --auth as a user that has it"),
            // The top-level checks come first, wherever the fields are.
            (#"{"nodes":[{"path":"a","acl":[]}],"format":"zkctl-export","version":3,"root":"/"}"#, "export format version 3 is not supported (this zkctl reads version 1)"),
            (#"{"nodes":[{"path":"","acl":\#(acl)},{"path":"a\u0001","acl":\#(acl)},{"path":"b/c","acl":\#(acl)}],"format":"zkctl-export","version":1,"root":"/"}"#,
             "node 1: bad path 'a\u{1}': \(PathRules.problem(with: "/a\u{1}") ?? "")"),
            // JSON errors anywhere come before everything else.
            (nodes(#"{"path":"a/b","acl":\#(acl)}"#, tail: ",]"), "not valid JSON at byte \(nodes(#"{"path":"a/b","acl":\#(acl)}"#).utf8.count): expected a string key, found character ']'"),
            (#"{"format":"zkctl-export","version":2,"root":"/","nodes":[],"x":"\#u{FFFF}"#,
             "not valid JSON at byte \(#"{"format":"zkctl-export","version":2,"root":"/","nodes":[],"x":"#.utf8.count): unterminated string"),
        ]
        for (doc, expected) in cases {
            XCTAssertEqual(message(doc), expected, doc)
            assertAgrees(Array(doc.utf8))
        }
        var bad = Array(#"{"format":"zkctl-export","version":1,"root":"/","nodes":[],"x":"ab"}"#.utf8)
        bad[bad.count - 3] = 0xff
        XCTAssertEqual(message(bad), "not valid JSON at byte \(bad.count - 3): invalid UTF-8 (byte 0xFF)")
        XCTAssertNil(ExportDecoder.decode(bad))
    }

    func testTruncatedFileIsRefusedAtItsEnd() {
        let full = Array(exportText().utf8)
        for cut in stride(from: 0, to: full.count, by: 7) {
            let part = Array(full.prefix(cut))
            XCTAssertNil(ExportDecoder.decode(part))
            do {
                _ = try BackupFormat.read(bytes: part)
                XCTFail("read a file cut at \(cut)")
            } catch {
                XCTAssertTrue(error.message.hasPrefix("not valid JSON at byte "), error.message)
                XCTAssertTrue(error.message.hasSuffix(" (the file ends early: truncated?)") || cut == 0 || error.message.contains("unterminated"), error.message)
            }
        }
    }

    /// Cut, doubled, dropped and replaced bytes of a real export: the decoder and the general
    /// reader always agree.
    func testMutationsAgreeWithTheGeneralReader() {
        let full = Array(exportText().utf8)
        var rng = SplitMix(seed: 0x5eed)
        let replacements = Array(#"{}[],:"\ 0123456789-+.eEtrufalsn/xé"#.utf8) + [0xff, 0x00]
        for _ in 0..<3000 {
            var doc = full
            for _ in 0...Int(rng.next() % 3) {
                let i = Int(rng.next() % UInt64(doc.count))
                switch rng.next() % 4 {
                case 0: doc.remove(at: i)
                case 1: doc.insert(doc[i], at: i)
                case 2: doc[i] = replacements[Int(rng.next() % UInt64(replacements.count))]
                default: doc.insert(replacements[Int(rng.next() % UInt64(replacements.count))], at: i)
                }
            }
            assertAgrees(doc)
        }
    }
}
