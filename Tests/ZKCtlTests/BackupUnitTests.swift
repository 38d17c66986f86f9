import Foundation
import XCTest
import ZooKeeper

@testable import ZKCtl

/// The export format, the zk-shell reader, import planning and tree diff: pure logic, no server.
final class BackupUnitTests: XCTestCase {
    let open = ACL.openUnsafe
    let readOnly = [ACL(permissions: .read, scheme: "world", id: "anyone")]

    func node(_ path: String, _ text: String = "", acl: [ACL]? = nil, type: BackupNodeType = .persistent) -> BackupNode {
        BackupNode(path: path, type: type, data: Data(text.utf8), acl: acl ?? open)
    }

    func document(_ lines: [String], root: String = "/r", extra: String = "") -> Data {
        Data((BackupFormat.header(root: root, exported: Date(timeIntervalSince1970: 0)) + lines.joined(separator: ",\n")
              + "\n]\(extra)}").utf8)
    }

    func readError(_ data: Data, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let s = try BackupFormat.read(data)
            XCTFail("expected an error, read \(s.nodes.count) nodes", file: file, line: line)
            return ""
        } catch {
            return error.message
        }
    }

    // MARK: ephemeralOwner

    func testKindFromEphemeralOwner() {
        XCTAssertEqual(ZnodeKind(ephemeralOwner: 0), .persistent)
        XCTAssertEqual(ZnodeKind(ephemeralOwner: Int64.min), .container)
        XCTAssertEqual(ZnodeKind(ephemeralOwner: Int64(bitPattern: 0xff00_0000_0000_0001)), .ttl(milliseconds: 1))
        XCTAssertEqual(ZnodeKind(ephemeralOwner: Int64(bitPattern: 0xff00_00ff_ffff_ffff)), .ttl(milliseconds: 0xff_ffff_ffff))
        // Extended feature bits other than TTL's: not guessed at.
        XCTAssertEqual(ZnodeKind(ephemeralOwner: Int64(bitPattern: 0xff00_0100_0000_0001)), .ephemeral)
        // Session ids (server id in the high byte).
        XCTAssertEqual(ZnodeKind(ephemeralOwner: 0x0100_0a3b_2c00_0001), .ephemeral)
        XCTAssertEqual(ZnodeKind(ephemeralOwner: Int64(bitPattern: 0x8000_0000_0000_0001)), .ephemeral)
        XCTAssertNil(BackupNodeType(.ephemeral))
        XCTAssertEqual(BackupNodeType(.ttl(milliseconds: 5)), .ttl(milliseconds: 5))
    }

    // MARK: paths

    func testRelativePaths() {
        XCTAssertEqual(BackupFormat.relative("/", to: "/"), "")
        XCTAssertEqual(BackupFormat.relative("/a/b", to: "/"), "a/b")
        XCTAssertEqual(BackupFormat.relative("/a/b", to: "/a"), "b")
        XCTAssertNil(BackupFormat.relative("/ab", to: "/a"))
        XCTAssertEqual(BackupFormat.absolute("", under: "/x"), "/x")
        XCTAssertEqual(BackupFormat.absolute("a/b", under: "/"), "/a/b")
        XCTAssertEqual(BackupFormat.absolute("a/b", under: "/x"), "/x/a/b")
        XCTAssertEqual(BackupFormat.relativeParent("a/b"), "a")
        XCTAssertEqual(BackupFormat.relativeParent("a"), "")
        XCTAssertNil(BackupFormat.relativeParent(""))
        XCTAssertEqual(["b", "a/z", "", "a", "a/b/c", "a/b"].sorted(by: BackupFormat.treeOrder), ["", "a", "a/b", "a/b/c", "a/z", "b"])
    }

    // MARK: writing and reading back

    func testRoundTripOfValues() throws {
        let values: [Data] = [
            Data(), Data("plain".utf8), Data("multi\nline \"quoted\" \\ tab\t".utf8), Data("ünïcödé 日本 🎉".utf8),
            Data([0, 1, 2, 0xff]), Data([0xef, 0xbb, 0xbf]) + Data("bom".utf8), Data([0x00]), Data([0xc3]),
        ]
        var lines = [BackupFormat.nodeLine(node(""))]
        for (i, v) in values.enumerated() {
            lines.append(BackupFormat.nodeLine(BackupNode(path: "n\(i)", type: .persistent, data: v, acl: open)))
        }
        lines.append(BackupFormat.nodeLine(BackupNode(path: "c", type: .container, data: Data(), acl: readOnly)))
        lines.append(BackupFormat.nodeLine(BackupNode(path: "c/t", type: .ttl(milliseconds: 60000), data: Data("x".utf8), acl: open)))
        let doc = document(lines, extra: ",\"nodeCount\":\(lines.count),\"skippedEphemeral\":2")
        let snapshot = try BackupFormat.read(doc)
        XCTAssertEqual(snapshot.source, .zkctlExport)
        XCTAssertEqual(snapshot.root, "/r")
        XCTAssertEqual(snapshot.skippedEphemeral, 2)
        XCTAssertEqual(snapshot.nodes.count, values.count + 3)
        for (i, v) in values.enumerated() { XCTAssertEqual(snapshot.nodes[i + 1].data, v, "value \(i)") }
        XCTAssertEqual(snapshot.nodes[values.count + 1].type, .container)
        XCTAssertEqual(snapshot.nodes[values.count + 1].acl, readOnly)
        XCTAssertEqual(snapshot.nodes[values.count + 2].type, .ttl(milliseconds: 60000))
    }

    func testTextOrBase64() throws {
        XCTAssertTrue(BackupFormat.nodeLine(node("a", "hello")).contains("\"data\":\"hello\""))
        let binary = BackupFormat.nodeLine(BackupNode(path: "b", type: .persistent, data: Data([0xff, 0xfe]), acl: open))
        XCTAssertTrue(binary.contains("\"dataBase64\":\"//4=\""), binary)
        XCTAssertFalse(binary.contains("\"data\":"))
        let ttl = BackupFormat.nodeLine(BackupNode(path: "t", type: .ttl(milliseconds: 5000), data: Data(), acl: open))
        XCTAssertEqual(ttl, #"{"path":"t","type":"ttl","ttl":5000,"data":"","acl":[{"scheme":"world","id":"anyone","perms":"cdrwa"}]}"#)
    }

    func testFooterAndHeaderMakeOneDocument() throws {
        let text = BackupFormat.header(root: "/", exported: Date(timeIntervalSince1970: 1_700_000_000))
            + BackupFormat.nodeLine(node("")) + BackupFormat.footer(nodeCount: 1, skippedEphemeral: 0)
        XCTAssertTrue(text.hasPrefix(#"{"format":"zkctl-export","version":1,"root":"/","exported":"2023-11-14T22:13:20.000Z","nodes":["#), text)
        let s = try BackupFormat.read(Data(text.utf8))
        XCTAssertEqual(s.nodes.map(\.path), [""])
    }

    func testEmptyExportReads() throws {
        let s = try BackupFormat.read(Data(#"{"format":"zkctl-export","version":1,"root":"/e","nodes":[],"skippedEphemeral":1}"#.utf8))
        XCTAssertEqual(s.nodes.count, 0)
        XCTAssertEqual(s.skippedEphemeral, 1)
    }

    // MARK: bad files

    func testTruncatedFileIsRefused() {
        let full = document([BackupFormat.nodeLine(node("")), BackupFormat.nodeLine(node("a", "x"))])
        for cut in [full.count - 1, full.count / 2, 10, 1] {
            let message = readError(full.prefix(cut))
            XCTAssertTrue(message.contains("not valid JSON"), message)
        }
        XCTAssertTrue(readError(Data()).contains("not valid JSON"))
    }

    func testStructuralProblemsAreRefused() {
        let root = BackupFormat.nodeLine(node(""))
        XCTAssertTrue(readError(document([BackupFormat.nodeLine(node("a/b")), root])).contains("must be the root"))
        XCTAssertTrue(readError(document([root, BackupFormat.nodeLine(node("a/b"))])).contains("before its parent"))
        XCTAssertTrue(readError(document([root, BackupFormat.nodeLine(node("a")), BackupFormat.nodeLine(node("a"))])).contains("twice"))
        XCTAssertTrue(readError(document([root, #"{"path":"/abs","acl":[{"scheme":"world","id":"anyone","perms":"r"}]}"#])).contains("relative"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","data":"x"}"#])).contains("acl"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","acl":[]}"#])).contains("empty"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","acl":[{"scheme":"world","id":"anyone","perms":"rx"}]}"#])).contains("bad ACL"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","dataBase64":"!!","acl":[{"scheme":"world","id":"anyone","perms":"r"}]}"#])).contains("base64"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","data":"x","dataBase64":"eA==","acl":[{"scheme":"world","id":"anyone","perms":"r"}]}"#])).contains("not both"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","type":"ttl","acl":[{"scheme":"world","id":"anyone","perms":"r"}]}"#])).contains("ttl"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","type":"ephemeral","acl":[{"scheme":"world","id":"anyone","perms":"r"}]}"#])).contains("unknown type"))
        XCTAssertTrue(readError(document([root, #"{"path":"a\u0001","acl":[{"scheme":"world","id":"anyone","perms":"r"}]}"#])).contains("bad path"))
        XCTAssertTrue(readError(document([root], extra: ",\"nodeCount\":5")).contains("nodeCount"))
        XCTAssertTrue(readError(document([root, #"{"path":"a","acl":[{"scheme":"digest","id":"bob:x","perms":"cdrwa"}]}"#])).contains("hidden by the server"))
        XCTAssertTrue(readError(Data(#"{"format":"zkctl-export","version":2,"root":"/","nodes":[]}"#.utf8)).contains("version 2"))
        XCTAssertTrue(readError(Data(#"{"format":"other","version":1,"root":"/","nodes":[]}"#.utf8)).contains("unknown format"))
        XCTAssertTrue(readError(Data(#"[1,2]"#.utf8)).contains("an array"))
        XCTAssertTrue(readError(Data(#"{"a":1}"#.utf8)).contains("neither"))
    }

    // MARK: zk-shell dumps

    func testZKShellDump() throws {
        // As zk-shell's JSONProxy writes it: a flat object of absolute paths, base64 content
        // (or null), ACLs as {"perms": bits, "id": {"scheme", "id"}}.
        let dump = """
        {
            "/app": {"content": "cm9vdA==", "acls": [{"perms": 31, "id": {"scheme": "world", "id": "anyone"}}]},
            "/app/db/url": {"content": "amRiYzovL2Ri", "acls": [{"perms": 1, "id": {"scheme": "world", "id": "anyone"}}, {"perms": 31, "id": {"scheme": "digest", "id": "ops:abc="}}]},
            "/app/bin": {"content": "AP8=", "acls": []},
            "/app/empty": {"content": null, "acls": [{"id": {"scheme": "ip"}}]}
        }
        """
        let s = try BackupFormat.read(Data(dump.utf8))
        XCTAssertEqual(s.source, .zkShell)
        XCTAssertEqual(s.root, "/app")
        XCTAssertEqual(s.nodes.map(\.path), ["", "bin", "db", "db/url", "empty"])
        XCTAssertEqual(s.nodes[0].data, Data("root".utf8))
        XCTAssertEqual(s.nodes[1].data, Data([0, 0xff]))
        XCTAssertEqual(s.nodes[1].acl, open)  // no entries: zk-shell creates with the open ACL
        XCTAssertTrue(s.nodes[2].isImplied)  // "db" is not in the dump, only implied by db/url
        XCTAssertEqual(s.nodes[3].acl, [ACL(permissions: .read, scheme: "world", id: "anyone"), ACL(permissions: .all, scheme: "digest", id: "ops:abc=")])
        XCTAssertEqual(s.nodes[4].data, Data())
        XCTAssertEqual(s.nodes[4].acl, [ACL(permissions: .all, scheme: "ip", id: "anyone")])
    }

    func testZKShellDumpWithoutCommonRootKey() throws {
        let s = try BackupFormat.read(Data(#"{"/a/x": {"content": "eA==", "acls": []}, "/a/y": {"content": "eQ==", "acls": []}}"#.utf8))
        XCTAssertEqual(s.root, "/a")
        XCTAssertEqual(s.nodes.map(\.path), ["", "x", "y"])
        XCTAssertTrue(s.nodes[0].isImplied)
        let single = try BackupFormat.read(Data(#"{"/only/one": {"content": "eA==", "acls": []}}"#.utf8))
        XCTAssertEqual(single.root, "/only/one")
        XCTAssertEqual(single.nodes.map(\.path), [""])
        XCTAssertTrue(readError(Data(#"{"/a": {"content": "not base64!", "acls": []}}"#.utf8)).contains("base64"))
        XCTAssertTrue(readError(Data(#"{"/a": {"content": "eA==", "acls": [{"perms": 99}]}}"#.utf8)).contains("perms"))
        XCTAssertTrue(readError(Data(#"{"/a": 5}"#.utf8)).contains("not an object"))
    }

    // MARK: ACL comparison

    func testACLComparison() {
        let a = ACL(permissions: .all, scheme: "digest", id: "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=")
        let hidden = ACL(permissions: .all, scheme: "digest", id: "bob:x")
        let r = ACL(permissions: .read, scheme: "world", id: "anyone")
        XCTAssertTrue(BackupFormat.sameACL([a, r], [r, a]))
        XCTAssertTrue(BackupFormat.sameACL([a, r], [r, hidden]))
        XCTAssertFalse(BackupFormat.sameACL([a, r], [r, ACL(permissions: .read, scheme: "digest", id: "bob:x")]))
        XCTAssertFalse(BackupFormat.sameACL([a, r], [r, ACL(permissions: .all, scheme: "digest", id: "eve:x")]))
        XCTAssertFalse(BackupFormat.sameACL([a], [a, r]))
        XCTAssertTrue(BackupFormat.isRedacted(hidden))
        XCTAssertFalse(BackupFormat.isRedacted(a))
    }

    // MARK: planning

    func existing(_ text: String, acl: [ACL]? = nil, version: Int32 = 3) -> ExistingNode {
        ExistingNode(data: Data(text.utf8), acl: acl ?? open, version: version, kind: .persistent)
    }

    func testPlanCreatesSkipsAndConflicts() {
        let nodes = [node("", "r"), node("a", "1"), node("b", "2"), node("c", "3", acl: readOnly)]
        let have: [ExistingNode?] = [existing("r"), nil, existing("other"), existing("3")]
        let plan = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: have, ancestors: [("/p", false)], prune: [],
                                   policy: .fail, identities: ["world:anyone"])
        XCTAssertEqual(plan.actions, [
            .create(path: "/p", data: Data(), type: .persistent, acl: open, finalACL: nil),
            .skip(path: "/t"),
            .create(path: "/t/a", data: Data("1".utf8), type: .persistent, acl: open, finalACL: nil),
            .conflict(path: "/t/b", what: ["data"]),
            .conflict(path: "/t/c", what: ["acl"]),
        ])
        XCTAssertEqual(plan.conflicts.count, 2)
        XCTAssertEqual(plan.created, 2)

        let skip = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: have, ancestors: [], prune: [],
                                   policy: .skipExisting, identities: ["world:anyone"])
        XCTAssertEqual(skip.skipped, 3)
        XCTAssertTrue(skip.conflicts.isEmpty)

        let over = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: have, ancestors: [], prune: [("/t/old", 7)],
                                   policy: .overwrite, identities: ["world:anyone"])
        XCTAssertEqual(over.actions[2], .update(path: "/t/b", data: Data("2".utf8), version: 3, acl: nil, what: ["data"]))
        XCTAssertEqual(over.actions[3], .update(path: "/t/c", data: nil, version: 3, acl: readOnly, what: ["acl"]))
        XCTAssertEqual(over.actions[4], .remove(path: "/t/old", version: 7))
        XCTAssertEqual([over.created, over.updated, over.skipped, over.removed], [1, 2, 1, 1])
    }

    func testRestrictiveParentACLIsAppliedAfterItsChildren() {
        let nodes = [node("", acl: readOnly), node("kid", "x", acl: readOnly)]
        let plan = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: [nil, nil], ancestors: [], prune: [],
                                   policy: .fail, identities: ["world:anyone"])
        let temporary = [ACL(permissions: [.read, .create, .admin], scheme: "world", id: "anyone")]
        XCTAssertEqual(plan.actions[0], .create(path: "/t", data: Data(), type: .persistent, acl: temporary, finalACL: readOnly))
        // A leaf needs no children created under it: its own ACL at once.
        XCTAssertEqual(plan.actions[1], .create(path: "/t/kid", data: Data("x".utf8), type: .persistent, acl: readOnly, finalACL: nil))
        let steps = plan.steps()
        XCTAssertEqual(steps.count, 2)
        XCTAssertEqual(steps.last, .pipelined([.setACL("/t", acl: readOnly, version: -1)]))

        // The session holds the digest identity that may create: no detour.
        let digest = ACL(permissions: .all, scheme: "digest", id: "ops:HASH")
        let mine = ImportPlan.make(nodes: [node("", acl: [digest]), node("kid")], targetRoot: "/t", existing: [nil, nil], ancestors: [],
                                   prune: [], policy: .fail, identities: ["world:anyone", "digest:ops:HASH"])
        XCTAssertEqual(mine.actions[0], .create(path: "/t", data: Data(), type: .persistent, acl: [digest], finalACL: nil))

        // A re-run after the detour was taken but not finished: fix the ACL, no conflict.
        let again = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: [existing("", acl: temporary), existing("x", acl: readOnly)],
                                    ancestors: [], prune: [], policy: .fail, identities: ["world:anyone"])
        XCTAssertEqual(again.actions, [.update(path: "/t", data: nil, version: 3, acl: readOnly, what: ["acl"]), .skip(path: "/t/kid")])
    }

    func testImpliedNodesOnlyNeedToExist() {
        let implied = BackupNode(path: "", type: .persistent, data: nil, acl: nil)
        let plan = ImportPlan.make(nodes: [implied, node("a")], targetRoot: "/t", existing: [existing("anything", acl: readOnly), nil],
                                   ancestors: [], prune: [], policy: .fail, identities: ["world:anyone"])
        XCTAssertEqual(plan.actions.first, .skip(path: "/t"))
        let missing = ImportPlan.make(nodes: [implied], targetRoot: "/t", existing: [nil], ancestors: [], prune: [], policy: .fail,
                                      identities: ["world:anyone"])
        XCTAssertEqual(missing.actions, [.create(path: "/t", data: Data(), type: .persistent, acl: open, finalACL: nil)])
    }

    // MARK: batching

    func testStepsStayUnderThePacketLimit() {
        var nodes = [node("")]
        for i in 0..<3000 { nodes.append(node("n\(i)", String(repeating: "v", count: 900))) }
        let plan = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: Array(repeating: nil, count: nodes.count), ancestors: [],
                                   prune: [], policy: .fail, identities: ["world:anyone"])
        let steps = plan.steps()
        XCTAssertGreaterThan(steps.count, 2)
        var total = 0
        for step in steps {
            guard case .multi(let ops) = step else { return XCTFail("expected only transactions, got \(step)") }
            XCTAssertLessThanOrEqual(ZooKeeperClient.estimatedMultiSize(ops), ZooKeeperClient.maxPacketSize)
            // Several transactions anyway: smaller ones, which the server finishes sooner.
            XCTAssertLessThanOrEqual(ops.count, MultiBatcher.spreadCount)
            total += ops.count
        }
        XCTAssertEqual(total, nodes.count)
        // A small import is one transaction: all or nothing.
        let small = ImportPlan.make(nodes: Array(nodes.prefix(50)), targetRoot: "/t", existing: Array(repeating: nil, count: 50),
                                    ancestors: [], prune: [], policy: .fail, identities: ["world:anyone"])
        XCTAssertEqual(small.steps().count, 1)
        // So is one of more nodes than a spread transaction holds, when it fits in one request.
        let many = [node("")] + (0..<3000).map { node("m\($0)") }
        let whole = ImportPlan.make(nodes: many, targetRoot: "/t", existing: Array(repeating: nil, count: many.count),
                                    ancestors: [], prune: [], policy: .fail, identities: ["world:anyone"])
        XCTAssertEqual(whole.steps().map(\.count), [many.count])
    }

    func testTTLAndContainerCreatesComeBetweenTransactions() {
        let nodes = [node(""), node("t", type: .ttl(milliseconds: 1000)), node("t/kid"), node("c", type: .container), node("z")]
        let plan = ImportPlan.make(nodes: nodes, targetRoot: "/t", existing: Array(repeating: nil, count: nodes.count), ancestors: [],
                                   prune: [("/t/gone/deep", 1), ("/t/gone", 0)], policy: .fail, identities: ["world:anyone"])
        let steps = plan.steps()
        XCTAssertEqual(steps, [
            .multi([.create("/t", data: Data(), mode: .persistent, acl: open)]),
            .pipelined([.create("/t/t", data: Data(), mode: .persistentWithTTL(milliseconds: 1000), acl: open)]),
            .multi([.create("/t/t/kid", data: Data(), mode: .persistent, acl: open)]),
            .pipelined([.create("/t/c", data: Data(), mode: .container, acl: open)]),
            .multi([.create("/t/z", data: Data(), mode: .persistent, acl: open), .delete("/t/gone/deep", version: 1), .delete("/t/gone", version: 0)]),
        ])
    }

    // MARK: diff

    func testTreeDiff() {
        let a = [node("", "r"), node("same", "1"), node("data", "x"), node("acl", "y"), node("gone"), node("typed", type: .container)]
        let b = [node("", "r"), node("same", "1"), node("data", "X"), node("acl", "y", acl: readOnly), node("new"), node("new/kid"),
                 node("typed")]
        XCTAssertEqual(TreeDiff.compare(a, b), [
            .changed("acl", ["acl"]), .changed("data", ["data"]), .removed("gone"), .added("new"), .added("new/kid"),
            .changed("typed", ["type"]),
        ])
        XCTAssertEqual(TreeDiff.compare(a, b, compareTypes: false).count, 5)
        XCTAssertEqual(TreeDiff.compare(a, a), [])
        // An implied node (zk-shell intermediate) matches any node at its path.
        XCTAssertEqual(TreeDiff.compare([BackupNode(path: "", type: .persistent, data: nil, acl: nil)], [node("", "z", acl: readOnly)]), [])
    }
}
