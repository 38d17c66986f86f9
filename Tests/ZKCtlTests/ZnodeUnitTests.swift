import Foundation
import XCTest
import ZooKeeper
import ZooKeeperRecipes
import ZKTestSupport
@testable import ZKCtl

/// The pure parts of the znode commands: value sources, create modes, protected paths, multi
/// batching, stat text and the digest command's input.
final class ZnodeUnitTests: XCTestCase {
    /// Paths of a few characters (ASCII and not) against the rules written out plainly: valid
    /// exactly when they hold; `relativeIsValid` agrees with the check of the joined path.
    func testPathRulesOnManyShortPaths() {
        let alphabet: [String] = ["/", ".", "a", "b", " ", "\u{0}", "\u{1}", "\u{1f}", "\u{7f}", "~", "é", "\u{85}", "😀"]
        func valid(_ path: String) -> Bool {
            guard path.hasPrefix("/") else { return false }
            if path == "/" { return true }
            let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            for part in parts {
                if part.isEmpty || part == "." || part == ".." { return false }
                for u in part.unicodeScalars {
                    let v = u.value
                    if v < 0x20 || (0x7f...0x9f).contains(v) || (0xd800...0xf8ff).contains(v) || v >= 0xfff0 { return false }
                }
            }
            return true
        }
        var random = SplitMix(seed: 22)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...7, using: &random)
            let path = (0..<length).map { _ in alphabet.randomElement(using: &random)! }.joined()
            XCTAssertEqual(PathRules.problem(with: path) == nil, valid(path), path.debugDescription)
            if !path.isEmpty {
                XCTAssertEqual(PathRules.relativeIsValid(path), PathRules.problem(with: "/" + path) == nil, path.debugDescription)
            }
        }
        XCTAssertEqual(PathRules.problem(with: "/a/../b"), "relative segment '..'")
        XCTAssertEqual(PathRules.problem(with: "/a//b"), "empty segment ('//')")
        XCTAssertEqual(PathRules.problem(with: "/a/"), "a path must not end with '/'")
        XCTAssertEqual(PathRules.problem(with: "/a\u{7f}"), "control character")
    }

    func testValueSource() throws {
        XCTAssertEqual(try CommandTable.valueSource(argument: "v", file: nil, required: true, command: ["set"]), .text("v"))
        XCTAssertEqual(try CommandTable.valueSource(argument: nil, file: "f", required: true, command: ["set"]), .file("f"))
        XCTAssertEqual(try CommandTable.valueSource(argument: nil, file: nil, required: false, command: ["create"]), .text(""))
        XCTAssertThrowsError(try CommandTable.valueSource(argument: nil, file: nil, required: true, command: ["set"])) { error in
            XCTAssertEqual(error as? UsageError, UsageError("missing VALUE (or --file FILE)", command: ["set"]))
        }
        XCTAssertThrowsError(try CommandTable.valueSource(argument: "v", file: "f", required: false, command: ["create"])) { error in
            XCTAssertEqual((error as? UsageError)?.commandPath, ["create"])
        }
        XCTAssertEqual(try CommandTable.ValueSource.text("grüße").read(), Data("grüße".utf8))
        XCTAssertThrowsError(try CommandTable.ValueSource.file("/nonexistent/zkctl").read()) { error in
            XCTAssertEqual(ExitCode.code(for: error), ExitCode.noInput)
        }
    }

    func testCreateModes() throws {
        XCTAssertEqual(try CommandTable.createMode(sequential: false, container: false, ttl: nil), .persistent)
        XCTAssertEqual(try CommandTable.createMode(sequential: true, container: false, ttl: nil), .persistentSequential)
        XCTAssertEqual(try CommandTable.createMode(sequential: false, container: true, ttl: nil), .container)
        XCTAssertEqual(try CommandTable.createMode(sequential: false, container: false, ttl: .seconds(90)), .persistentWithTTL(milliseconds: 90_000))
        XCTAssertEqual(try CommandTable.createMode(sequential: true, container: false, ttl: .milliseconds(5)), .persistentSequentialWithTTL(milliseconds: 5))
        for (sequential, container, ttl) in [(false, true, Duration.seconds(1)), (true, true, nil), (false, false, .zero)] as [(Bool, Bool, Duration?)] {
            XCTAssertThrowsError(try CommandTable.createMode(sequential: sequential, container: container, ttl: ttl)) { error in
                XCTAssertEqual(ExitCode.code(for: error), ExitCode.usage)
            }
        }
    }

    func testProtectedPaths() {
        XCTAssertNotNil(CommandTable.protectedPathProblem("/"))
        XCTAssertNotNil(CommandTable.protectedPathProblem("/zookeeper"))
        XCTAssertNotNil(CommandTable.protectedPathProblem("/zookeeper/config"))
        XCTAssertNil(CommandTable.protectedPathProblem("/zookeeperish"))
        XCTAssertNil(CommandTable.protectedPathProblem("/app/zookeeper"))
    }

    func testMultiBatchesStayUnderTheLimitAndKeepOrder() {
        let ops = (0..<30_000).map { MultiOp.delete("/some/rather/long/path/for/batching/node-\($0)") }
        let batches = MultiBatcher.batches(ops, maxCount: CommandTable.maxDeleteBatch)
        XCTAssertGreaterThan(batches.count, 1)
        XCTAssertEqual(batches.flatMap { $0 }, ops)
        for batch in batches {
            XCTAssertLessThanOrEqual(ZooKeeperClient.estimatedMultiSize(batch), ZooKeeperClient.maxPacketSize)
            XCTAssertLessThanOrEqual(batch.count, 5000)
        }
        // Large values: each batch holds what fits.
        let big = (0..<10).map { MultiOp.create("/n\($0)", data: Data(count: 300_000)) }
        let bigBatches = MultiBatcher.batches(big, maxCount: CommandTable.maxDeleteBatch)
        XCTAssertEqual(bigBatches.map(\.count), [3, 3, 3, 1])
        XCTAssertEqual(MultiBatcher.batches([]).count, 0)
        // A small count cap.
        XCTAssertEqual(MultiBatcher.batches(Array(ops.prefix(10)), maxCount: 4).map(\.count), [4, 4, 2])
    }

    func testStatTextUsesTheJSONNamesAlignedAndHex() {
        let stat = Stat(czxid: 0x1a, mzxid: 0x2b, ctime: 0, mtime: 1_700_000_000_123, version: 3, cversion: 4, aversion: 5,
                        ephemeralOwner: 0x100_0000_abcd, dataLength: 42, numChildren: 7, pzxid: 0x3c)
        let lines = CommandTable.statText(stat)
        XCTAssertEqual(lines, [
            "czxid           0x1a",
            "mzxid           0x2b",
            "pzxid           0x3c",
            "ctime           1970-01-01T00:00:00.000Z",
            "mtime           2023-11-14T22:13:20.123Z",
            "version         3",
            "cversion        4",
            "aversion        5",
            "ephemeralOwner  0x1000000abcd",
            "dataLength      42",
            "numChildren     7",
        ])
        // A negative owner (as containers use internally) prints as its unsigned bits.
        XCTAssertEqual(CommandTable.statFields(Stat(ephemeralOwner: Int64.min)).first { $0.0 == "ephemeralOwner" }?.1, "0x8000000000000000")
        let json = CommandTable.statJSON(path: "/a", stat)
        XCTAssertEqual(json.objectValue?.keys, ["path", "stat"])
        XCTAssertEqual(json.objectValue?["stat"]?.objectValue?["version"], .int(3))
        XCTAssertEqual(json.objectValue?["stat"]?.objectValue?["aversion"], .int(5))
    }

    func testDigestInput() throws {
        XCTAssertEqual(try CommandTable.digestCredential(fromStdin: "u:p\n"), "u:p")
        XCTAssertEqual(try CommandTable.digestCredential(fromStdin: "u:p\r\n"), "u:p")
        XCTAssertEqual(try CommandTable.digestCredential(fromStdin: "u: spaced p "), "u: spaced p ")
        XCTAssertThrowsError(try CommandTable.digestCredential(fromStdin: "")) { XCTAssertEqual(ExitCode.code(for: $0), ExitCode.badData) }
        XCTAssertThrowsError(try CommandTable.digestCredential(fromStdin: "a:b\nc:d")) { XCTAssertEqual(ExitCode.code(for: $0), ExitCode.badData) }
        XCTAssertThrowsError(try CommandTable.digestCredential(fromStdin: "a:b\r\nc:d\r\n")) { XCTAssertEqual(ExitCode.code(for: $0), ExitCode.badData) }
        XCTAssertThrowsError(try CommandTable.digestCredential(fromStdin: "\n")) { XCTAssertEqual(ExitCode.code(for: $0), ExitCode.badData) }
        XCTAssertNil(CommandTable.credentialProblem("user:pass"))
        XCTAssertNil(CommandTable.credentialProblem("user:"))
        XCTAssertNotNil(CommandTable.credentialProblem("userpass"))
        XCTAssertNotNil(CommandTable.credentialProblem(":pass"))
        // Never quotes the password.
        XCTAssertFalse(CommandTable.credentialProblem(":secret")?.contains("secret") ?? true)
        XCTAssertEqual(ACL.digestID(forCredential: "super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
    }

    func testWatchSpecsAndLines() {
        XCTAssertEqual(CommandTable.watchSpec(path: "/a", children: false, recursive: false), WatchSpec(paths: ["/a"]))
        XCTAssertEqual(CommandTable.watchSpec(path: "/a", children: true, recursive: false),
                       WatchSpec(paths: ["/a"], parents: ["/a"], recursive: false, childData: false))
        XCTAssertEqual(CommandTable.watchSpec(path: "/a", children: true, recursive: true),
                       WatchSpec(paths: ["/a"], parents: ["/a"], recursive: true, childData: true))
        XCTAssertEqual(CommandTable.watchSpec(path: "/a", children: false, recursive: true),
                       WatchSpec(paths: ["/a"], parents: ["/a"], recursive: true, childData: true))

        let stat = Stat(version: 2, dataLength: 5)
        XCTAssertEqual(CommandTable.watchLine(NodeChange(kind: .changed, path: "/a", data: Data("hello".utf8), stat: stat)), "changed /a = hello")
        XCTAssertEqual(CommandTable.watchLine(NodeChange(kind: .initial, path: "/a", data: Data("x\ny\r\nz\\".utf8), stat: stat)),
                       "initial /a = x\\ny\\r\\nz\\\\")
        XCTAssertEqual(CommandTable.watchLine(NodeChange(kind: .created, path: "/a", data: Data(), stat: stat)), "created /a = ")
        XCTAssertEqual(CommandTable.watchLine(NodeChange(kind: .created, path: "/a/child", stat: stat, parent: "/a")), "created /a/child")
        XCTAssertEqual(CommandTable.watchLine(NodeChange(kind: .removed, path: "/a")), "removed /a")
        XCTAssertEqual(CommandTable.watchLine(NodeChange(kind: .changed, path: "/b", data: Data([0xff, 0x00]), stat: stat)),
                       "changed /b = <2 bytes, not UTF-8; use -o json>")

        XCTAssertEqual(CommandTable.watchJSON(NodeChange(kind: .removed, path: "/a")).compact(), #"{"event":"removed","path":"/a"}"#)
        let changed = CommandTable.watchJSON(NodeChange(kind: .changed, path: "/a", data: Data([0xff]), stat: stat)).objectValue
        XCTAssertEqual(changed?.keys, ["event", "path", "data", "stat"])
        XCTAssertEqual(changed?["data"], .object(JSONObject([("base64", .string("/w=="))])))
        XCTAssertEqual(changed?["stat"]?.objectValue?["version"], .int(2))
        XCTAssertEqual(CommandTable.watchJSON(NodeChange(kind: .created, path: "/a/c", stat: stat, parent: "/a")).objectValue?.keys,
                       ["event", "path", "stat"])
    }

    func testEveryZnodeCommandIsDocumented() {
        func check(_ spec: CommandSpec) {
            if !spec.subcommands.isEmpty { spec.subcommands.forEach(check); return }
            XCTAssertFalse(spec.summary.isEmpty, spec.name)
            XCTAssertFalse(spec.description.isEmpty, spec.name)
            XCTAssertFalse(spec.examples.isEmpty, spec.name)
            XCTAssertFalse(spec.jsonOutput.isEmpty, spec.name)
            XCTAssertNotNil(spec.handler, spec.name)
            for example in spec.examples { XCTAssertTrue(example.hasPrefix("zkctl ") || example.contains("zkctl "), example) }
        }
        (CommandTable.znodeCommands + CommandTable.toolCommands).forEach(check)
        let globals = Set(CommandTable.globalOptions.map(\.long))
        for spec in CommandTable.znodeCommands + CommandTable.toolCommands + CommandTable.aclCommand.subcommands {
            for option in spec.options { XCTAssertFalse(globals.contains(option.long), "\(spec.name) --\(option.long)") }
        }
    }
}
