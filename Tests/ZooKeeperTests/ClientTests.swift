import Foundation
import Synchronization
import XCTest
import ZKTestSupport
@testable import ZooKeeper

/// The client against a real standalone ZooKeeper 3.8 server started by the test harness.
final class ClientTests: XCTestCase {
    var server: ZooKeeperServer!
    var zk: ZooKeeperClient!
    var base = ""

    override func setUp() async throws {
        server = try SharedServers.standalone()
        zk = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, connectTimeout: .seconds(10)))
        base = "/clienttests-\(UUID().uuidString.prefix(8))"
        try await zk.create(base)
    }

    override func tearDown() async throws {
        await zk?.close()
    }

    func testRoundTripKeepsExactBytes() async throws {
        var binary = Data((0...255).map { UInt8($0) })
        binary.append(contentsOf: [0, 0, 0xff, 0xfe])
        let large = Data((0..<900_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let values: [(String, Data)] = [("empty", Data()), ("text", Data("héllo wörld\n".utf8)), ("binary", binary), ("large", large)]
        for (name, value) in values {
            let path = "\(base)/\(name)"
            let created = try await zk.create(path, data: value)
            XCTAssertEqual(created, path)
            let (data, stat) = try await zk.get(path)
            XCTAssertEqual(data, value, name)
            XCTAssertEqual(Int(stat.dataLength), value.count, name)
            XCTAssertEqual(stat.version, 0)
            let changed = value + Data("!".utf8)
            let newStat = try await zk.set(path, data: changed, version: 0)
            XCTAssertEqual(newStat.version, 1)
            let (again, _) = try await zk.get(path)
            XCTAssertEqual(again, changed, name)
            try await zk.delete(path, version: 1)
            let gone = try await zk.exists(path)
            XCTAssertNil(gone)
        }
    }

    func testVersionConflictIsBadVersion() async throws {
        let path = "\(base)/v"
        try await zk.create(path, data: Data("a".utf8))
        try await zk.set(path, data: Data("b".utf8), version: 0)
        do {
            try await zk.set(path, data: Data("c".utf8), version: 0)
            XCTFail("a stale version was accepted")
        } catch let error as ZooKeeperError {
            XCTAssertEqual(error.code, .badVersion)
            XCTAssertEqual(error.path, path)
        }
        do {
            try await zk.delete(path, version: 7)
            XCTFail("a stale delete was accepted")
        } catch ZooKeeperError.Code.badVersion {}
        let value1 = try await zk.get(path).data
        XCTAssertEqual(value1, Data("b".utf8))
    }

    func testCreateExistingIsNodeExistsAndMissingIsNoNode() async throws {
        let path = "\(base)/dup"
        try await zk.create(path)
        do { try await zk.create(path); XCTFail("created twice") } catch ZooKeeperError.Code.nodeExists {}
        do { _ = try await zk.get("\(base)/missing"); XCTFail("got a missing node") } catch ZooKeeperError.Code.noNode {}
        do { try await zk.create("\(base)/a/b/c"); XCTFail("created without parents") } catch ZooKeeperError.Code.noNode {}
        try await zk.create("\(base)/a/b/c", data: Data("x".utf8), createParents: true)
        let value2 = try await zk.get("\(base)/a/b/c").data
        XCTAssertEqual(value2, Data("x".utf8))
    }

    func testInvalidPathIsRefusedBeforeSending() async throws {
        for bad in ["relative", "/a//b", "/a/", "/a/../b", "/a\u{1}b", "/smile-\u{1F600}", "/a\u{FFF5}"] {
            do { _ = try await zk.exists(bad); XCTFail("accepted \(bad)") } catch ZooKeeperError.Code.invalidPath {}
        }
    }

    func testOversizedValueIsRefusedClearly() async throws {
        let path = "\(base)/big"
        do {
            try await zk.create(path, data: Data(count: 1_100_000))
            XCTFail("an oversized value was sent")
        } catch let error as ZooKeeperError {
            XCTAssertEqual(error.code, .requestTooLarge)
            XCTAssertTrue(error.message.contains("limit"), error.message)
        }
        // The session is still fine.
        XCTAssertEqual(zk.state, .connected)
        let value3 = try await zk.exists(path)
        XCTAssertNil(value3)
    }

    func testEphemeralNodesVanishWhenTheSessionCloses() async throws {
        let other = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString))
        let path = "\(base)/eph"
        try await other.create(path, data: Data("e".utf8), mode: .ephemeral)
        let stat = try await zk.exists(path)
        XCTAssertEqual(stat?.ephemeralOwner, other.sessionID)
        XCTAssertNotEqual(other.sessionID, 0)
        await other.close()
        XCTAssertEqual(other.state, .closed)
        let after = try await zk.exists(path)
        XCTAssertNil(after, "the ephemeral node outlived its session")
        // A closed client refuses work instead of touching a freed handle.
        do { _ = try await other.exists("/"); XCTFail("closed client worked") } catch ZooKeeperError.Code.closing {}
    }

    func testSequentialNamesIncrease() async throws {
        var names: [String] = []
        for _ in 0..<5 {
            names.append(try await zk.create("\(base)/seq-", mode: .persistentSequential))
        }
        XCTAssertEqual(names, names.sorted())
        XCTAssertEqual(Set(names).count, 5)
        for name in names {
            XCTAssertTrue(name.hasPrefix("\(base)/seq-"))
            XCTAssertEqual(name.count, "\(base)/seq-".count + 10, "sequence suffix is 10 digits")
        }
    }

    func testContainerAndTTLNodes() async throws {
        try await zk.create("\(base)/container", mode: .container)
        let ttlPath = try await zk.create("\(base)/ttl", mode: .persistentWithTTL(milliseconds: 60_000))
        XCTAssertEqual(ttlPath, "\(base)/ttl")
        let value4 = try await zk.exists("\(base)/container")
        XCTAssertNotNil(value4)
    }

    func testMultiRefusesContainerAndTTLCreatesBeforeSending() async throws {
        for mode in [CreateMode.container, .persistentWithTTL(milliseconds: 5000)] {
            do {
                _ = try await zk.multi([.create("\(base)/c", mode: mode)])
                XCTFail("\(mode) went into a multi")
            } catch ZooKeeperError.Code.badArguments {}
        }
        let stat = try await zk.exists("\(base)/c")
        XCTAssertNil(stat)
        XCTAssertEqual(zk.state, .connected)
    }

    func testBatchesInFlightApplyInOrderAndStopAfterAFailure() async throws {
        // Each batch creates the parents of the next, so any reordering would fail with noNode.
        let root = "\(base)/batches"
        var batches: [[MultiOp]] = []
        var path = root
        for level in 0..<6 {
            batches.append([.create(path, data: Data("\(level)".utf8))])
            path += "/l\(level)"
        }
        let results = await zk.multi(batches: batches, maxInFlight: 3)
        XCTAssertEqual(results.count, 6)
        for result in results { XCTAssertNoThrow(try result.get()) }
        let (deepest, _) = try await zk.get(root + (0..<5).map { "/l\($0)" }.joined())
        XCTAssertEqual(deepest, Data("5".utf8))

        // With four in flight, the batches after a failing one are already sent (the fifth once
        // the first has answered), but the server applies none of them: each starts with checks
        // of what the one before leaves, here `b` (`l0` was there already).
        let after = await zk.multi(batches: [[.create("\(root)/a")], [.create("\(root)/b"), .create("\(root)/l0")],
                                             [.create("\(root)/c")], [.create("\(root)/d")], [.create("\(root)/e")]],
                                   maxInFlight: 4)
        XCTAssertEqual(after.count, 5)
        XCTAssertNoThrow(try after[0].get())
        XCTAssertThrowsError(try after[1].get()) {
            XCTAssertEqual(($0 as? ZooKeeperError)?.code, .nodeExists)
            XCTAssertEqual(($0 as? ZooKeeperError)?.path, "\(root)/l0")
            XCTAssertEqual(($0 as? ZooKeeperError)?.operationIndex, 1)
        }
        for late in after[2...] {
            XCTAssertThrowsError(try late.get()) { XCTAssertEqual(($0 as? ZooKeeperError)?.message, "not applied: an earlier transaction failed") }
        }
        for name in ["b", "c", "d", "e"] {
            let stat = try await zk.exists("\(root)/\(name)")
            XCTAssertNil(stat, name)
        }

        // A batch refused by its check although the one before was applied (here the session
        // may not read the node it checks) is sent again and applied, and so is the one after.
        var told: [Int] = []
        let hidden = [ACL(permissions: .all, scheme: "digest", id: "nobody:x")]
        let unreadable = await zk.multi(batches: [[.create("\(root)/f", acl: hidden)], [.create("\(root)/g", acl: hidden)],
                                                  [.create("\(root)/h")]],
                                        maxInFlight: 4, stop: { false }, applied: { told.append($0) })
        XCTAssertEqual(unreadable.count, 3)
        for result in unreadable { XCTAssertNoThrow(try result.get()) }
        XCTAssertEqual(told, [0, 1, 2])
        for name in ["f", "g", "h"] {
            let stat = try await zk.exists("\(root)/\(name)")
            XCTAssertNotNil(stat, name)
        }

        // A batch refused before sending ends the run where it stands.
        let refused = await zk.multi(batches: [[.create("\(root)/k")], [.create("\(root)/l", mode: .container)], [.create("\(root)/m")]])
        XCTAssertEqual(refused.count, 2)
        XCTAssertNoThrow(try refused[0].get())
        XCTAssertThrowsError(try refused[1].get()) { XCTAssertEqual(($0 as? ZooKeeperError)?.code, .badArguments) }
        let m = try await zk.exists("\(root)/m")
        XCTAssertNil(m)
    }

    func testFullBatchesStillTakeTheGuardOfTheOneBefore() {
        // Small creates fill a batch to within a few bytes of the limit; paths grow longer
        // halfway, so the checks of a batch of long paths come in front of the next one.
        let ops: [MultiOp] = (0..<40_000).map { i in
            let path = i < 20_000 ? "/t/a\(i % 100)/b\(i)" : "/t/a-rather-longer-directory-name-\(i % 100)/b\(i)"
            return .create(path, data: Data(repeating: 0x78, count: 50))
        }
        let batches = MultiBatcher.batches(ops)
        XCTAssertGreaterThan(batches.count, 4)
        XCTAssertEqual(batches.flatMap { $0 }, ops)
        for (before, batch) in zip(batches, batches.dropFirst()) {
            let checks = ZooKeeperClient.guardChecks(after: before)
            XCTAssertEqual(checks.count, 2)
            XCTAssertLessThanOrEqual(ZooKeeperClient.estimatedMultiSize(checks + batch), ZooKeeperClient.maxPacketSize)
        }
    }

    func testSpreadKeepsOneTransactionWholeAndCutsSeveralSmaller() {
        // 5,000 small creates fit in one transaction: that one stays all or nothing.
        let fits: [MultiOp] = (0..<5_000).map { .create("/t/k\($0)") }
        XCTAssertEqual(MultiBatcher.spread(MultiBatcher.batches(fits)), [fits])
        // 40,000 do not: the batches are cut at 1,000 operations, in order, each with the
        // checks of the one before still under the limit.
        let ops: [MultiOp] = (0..<40_000).map { .create("/t/a\($0 % 100)/b\($0)", data: Data(repeating: 0x78, count: 50)) }
        let cut = MultiBatcher.batches(ops)
        XCTAssertGreaterThan(cut.count, 1)
        let spread = MultiBatcher.spread(cut)
        XCTAssertEqual(spread.flatMap { $0 }, ops)
        XCTAssertEqual(spread.map(\.count).max(), MultiBatcher.spreadCount)
        XCTAssertGreaterThanOrEqual(spread.count, ops.count / MultiBatcher.spreadCount)
        for (before, batch) in zip(spread, spread.dropFirst()) {
            let checks = ZooKeeperClient.guardChecks(after: before)
            XCTAssertLessThanOrEqual(ZooKeeperClient.estimatedMultiSize(checks + batch), ZooKeeperClient.maxPacketSize)
        }
        XCTAssertEqual(MultiBatcher.chunks(Array(ops.prefix(10)), count: 4).map(\.count), [4, 4, 2])
        XCTAssertEqual(MultiBatcher.spread([]), [])
    }

    func testMultiIsAllOrNothing() async throws {
        try await zk.create("\(base)/m1", data: Data("one".utf8))
        do {
            _ = try await zk.multi([
                .create("\(base)/m2", data: Data("two".utf8)),
                .set("\(base)/m1", data: Data("changed".utf8)),
                .delete("\(base)/does-not-exist"),
            ])
            XCTFail("a failing multi succeeded")
        } catch let error as ZooKeeperError {
            XCTAssertEqual(error.code, .noNode)
            XCTAssertEqual(error.operationIndex, 2)
            XCTAssertEqual(error.path, "\(base)/does-not-exist")
        }
        let value5 = try await zk.exists("\(base)/m2")
        XCTAssertNil(value5)
        let value6 = try await zk.get("\(base)/m1").data
        XCTAssertEqual(value6, Data("one".utf8))

        let results = try await zk.multi([
            .check("\(base)/m1", version: 0),
            .create("\(base)/m2", data: Data("two".utf8)),
            .set("\(base)/m1", data: Data("changed".utf8)),
            .create("\(base)/s-", mode: .persistentSequential),
        ])
        XCTAssertEqual(results.count, 4)
        XCTAssertEqual(results[0], .checked)
        XCTAssertEqual(results[1], .created("\(base)/m2"))
        if case .set(let stat) = results[2] { XCTAssertEqual(stat.version, 1) } else { XCTFail("\(results[2])") }
        if case .created(let p) = results[3] { XCTAssertTrue(p.hasPrefix("\(base)/s-0")) } else { XCTFail("\(results[3])") }
    }

    func testDataAndChildWatchesFireOnce() async throws {
        let path = "\(base)/watched"
        try await zk.create(path, data: Data("0".utf8))
        let dataEvents = Mutex<[WatchEvent]>([])
        let childEvents = Mutex<[WatchEvent]>([])
        _ = try await zk.get(path) { event in dataEvents.withLock { $0.append(event) } }
        _ = try await zk.children(path) { event in childEvents.withLock { $0.append(event) } }

        try await zk.set(path, data: Data("1".utf8))
        try await zk.set(path, data: Data("2".utf8))
        try await zk.create("\(path)/c1")
        try await zk.create("\(path)/c2")
        try await zk.sync(path)
        try await waitUntil { dataEvents.withLock { $0.count } >= 1 && childEvents.withLock { $0.count } >= 1 }
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(dataEvents.withLock { $0 }, [WatchEvent(kind: .dataChanged, path: path)])
        XCTAssertEqual(childEvents.withLock { $0 }, [WatchEvent(kind: .childrenChanged, path: path)])
    }

    func testExistsWatchSeesCreation() async throws {
        let path = "\(base)/later"
        let events = Mutex<[WatchEvent]>([])
        let stat = try await zk.exists(path) { e in events.withLock { $0.append(e) } }
        XCTAssertNil(stat)
        try await zk.create(path)
        try await waitUntil { !events.withLock { $0 }.isEmpty }
        XCTAssertEqual(events.withLock { $0 }, [WatchEvent(kind: .created, path: path)])
    }

    func testDigestACLRefusesOthersAndAllowsTheOwner() async throws {
        let credential = "alice:s3cret-\(UUID().uuidString.prefix(4))"
        let owner = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, digestCredentials: [credential]))
        let path = "\(base)/private"
        try await owner.create(path, data: Data("secret".utf8), acl: [ACL.digest(credential)])
        let value7 = try await owner.get(path).data
        XCTAssertEqual(value7, Data("secret".utf8))
        let (acl, _) = try await owner.getACL(path)
        XCTAssertEqual(acl, [ACL(permissions: .all, scheme: "digest", id: ACL.digestID(forCredential: credential))])
        do { _ = try await zk.get(path); XCTFail("read without credentials") } catch ZooKeeperError.Code.notAuthorized {}

        let stranger = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, digestCredentials: ["mallory:guess"]))
        do { _ = try await stranger.get(path); XCTFail("read with wrong credentials") } catch ZooKeeperError.Code.notAuthorized {}
        await stranger.close()
        await owner.close()
    }

    func testDigestIDMatchesZooKeeper() {
        // The value ZooKeeper's own DigestAuthenticationProvider.generateDigest gives for super:test.
        XCTAssertEqual(ACL.digestID(forCredential: "super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
    }

    func testNothingListeningIsUnavailableWithinTheDeadline() async throws {
        let port = try freeLoopbackPort()
        let started = ContinuousClock.now
        do {
            _ = try await ZooKeeperClient.connect(ConnectOptions(connectString: "127.0.0.1:\(port)", connectTimeout: .seconds(2)))
            XCTFail("connected to nothing")
        } catch let error as ZooKeeperError {
            XCTAssertEqual(error.code, .unavailable)
            XCTAssertTrue(error.message.contains("127.0.0.1:\(port)"), error.message)
        }
        let elapsed = ContinuousClock.now - started
        XCTAssertLessThan(elapsed, .seconds(5))
    }

    func testPipelineReads10000Znodes() async throws {
        let root = "\(base)/many"
        try await zk.create(root)
        // Create in multi batches, then read back pipelined.
        var ops: [MultiOp] = []
        for i in 0..<10_000 {
            ops.append(.create("\(root)/n\(i)", data: Data("value-\(i)".utf8)))
            if ops.count == 1000 { _ = try await zk.multi(ops); ops = [] }
        }
        let (children, stat) = try await zk.children(root)
        XCTAssertEqual(children.count, 10_000)
        XCTAssertEqual(stat.numChildren, 10_000)
        let paths = (0..<10_000).map { "\(root)/n\($0)" }
        let results = await zk.pipeline(paths.map { Operation.get($0) }, maxInFlight: 128)
        XCTAssertEqual(results.count, 10_000)
        for (i, result) in results.enumerated() {
            guard case .success(let r) = result else { XCTFail("\(paths[i]): \(result)"); return }
            XCTAssertEqual(r.data, Data("value-\(i)".utf8))
        }
        // A pipeline with failures keeps order and reports each.
        let mixed = await zk.pipeline([.get("\(root)/n1"), .get("\(root)/nope"), .exists("\(root)/nope"), .get("\(root)/n2")])
        XCTAssertEqual(try mixed[0].get().data, Data("value-1".utf8))
        XCTAssertThrowsError(try mixed[1].get()) { XCTAssertEqual(($0 as? ZooKeeperError)?.code, .noNode) }
        XCTAssertEqual(try mixed[2].get(), .stat(nil))
        XCTAssertEqual(try mixed[3].get().data, Data("value-2".utf8))
    }

    func testWalkVisitsLevelsInChunksInOrder() async throws {
        // root → a, b, c (b has 12 children, c one with a child of its own); values and an ACL
        // that differs from the rest on one node.
        let root = "\(base)/walk"
        var ops: [MultiOp] = [.create(root, data: Data("r".utf8))]
        for name in ["c", "a", "b"] { ops.append(.create("\(root)/\(name)", data: Data(name.utf8))) }
        for i in 0..<12 { ops.append(.create("\(root)/b/k\(i)", data: Data("k\(i)".utf8))) }
        ops.append(.create("\(root)/c/x", data: Data()))
        ops.append(.create("\(root)/c/x/deep", data: Data("d".utf8), acl: [ACL(permissions: .read, scheme: "world", id: "anyone")]))
        _ = try await zk.multi(ops)

        let keys = (0..<12).map { "k\($0)" }.sorted()
        let expected: [(String, Int, [String])] =
            [(root, 0, ["a", "b", "c"]), ("\(root)/a", 1, []), ("\(root)/b", 1, keys), ("\(root)/c", 1, ["x"])]
            + keys.map { ("\(root)/b/\($0)", 2, []) } + [("\(root)/c/x", 2, ["deep"]), ("\(root)/c/x/deep", 3, [])]
        for (data, acl) in [(false, false), (true, false), (true, true)] {
            var calls: [[WalkedNode]] = []
            try await zk.walk(root, data: data, acl: acl, maxInFlight: 4, chunkSize: 5) { calls.append($0) }
            let nodes = calls.flatMap { $0 }
            XCTAssertEqual(nodes.map(\.path), expected.map(\.0), "data \(data) acl \(acl)")
            XCTAssertEqual(nodes.map(\.depth), expected.map(\.1))
            XCTAssertEqual(nodes.map(\.children), expected.map(\.2))
            XCTAssertEqual(nodes.map { Int($0.stat.numChildren) }, expected.map { $0.2.count })
            // Each call holds at most a chunk, all of one depth: 1, 3, then 13 as 5+5+3, then 1.
            XCTAssertEqual(calls.map(\.count), [1, 3, 5, 5, 3, 1])
            XCTAssertTrue(calls.allSatisfy { Set($0.map(\.depth)).count == 1 })
            if data {
                XCTAssertEqual(nodes.map { String(decoding: $0.data ?? Data("?".utf8), as: UTF8.self) },
                               ["r", "a", "b", "c"] + keys + ["", "d"])
            } else {
                XCTAssertTrue(nodes.allSatisfy { $0.data == nil })
            }
            XCTAssertEqual(nodes.last?.acl.map { $0.map(\.permissions) }, acl ? [.read] : nil)
            XCTAssertEqual(nodes.first?.acl, acl ? ACL.openUnsafe : nil)
        }

        // A depth limit lists nothing at the last level; an excluded child is not visited but is
        // still among its parent's children.
        var limited: [WalkedNode] = []
        try await zk.walk(root, maxDepth: 1, data: true, exclude: { $0.hasSuffix("/b") }) { limited += $0 }
        XCTAssertEqual(limited.map(\.path), [root, "\(root)/a", "\(root)/c"])
        XCTAssertEqual(limited.map(\.children), [["a", "b", "c"], [], []])

        var none: [WalkedNode] = []
        try await zk.walk("\(root)/missing", data: true) { none += $0 }
        XCTAssertTrue(none.isEmpty)
    }

    func testWalkGoesPastUnreadableNodesWhenAskedTo() async throws {
        let credential = "walker:s3cret-\(UUID().uuidString.prefix(4))"
        let owner = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, digestCredentials: [credential]))
        let root = "\(base)/guarded"
        for p in [root, "\(root)/a", "\(root)/z"] { try await zk.create(p) }
        try await owner.create("\(root)/m", acl: [ACL.digest(credential)])
        try await owner.create("\(root)/m/child")
        try await zk.create("\(root)/z/leaf")

        for (data, acl) in [(false, false), (true, false), (true, true)] {
            // Without a handler the refusal ends the walk, as before.
            do {
                try await zk.walk(root, data: data, acl: acl) { _ in }
                XCTFail("the walk went past an unreadable node without being asked to")
            } catch ZooKeeperError.Code.notAuthorized {}

            var visited: [String] = []
            var refused: [String] = []
            try await zk.walk(root, data: data, acl: acl, unreadable: { path, error in
                XCTAssertEqual(error.code, .notAuthorized)
                refused.append(path)
            }) { visited += $0.map(\.path) }
            XCTAssertEqual(refused, ["\(root)/m"], "data \(data), acl \(acl)")
            XCTAssertEqual(visited, [root, "\(root)/a", "\(root)/z", "\(root)/z/leaf"], "data \(data), acl \(acl)")
        }

        // An unreadable root is still an error at once.
        do {
            try await zk.walk("\(root)/m", data: true, unreadable: { _, _ in XCTFail("the root was skipped") }) { _ in }
            XCTFail("an unreadable root was walked")
        } catch ZooKeeperError.Code.notAuthorized {}
        try await owner.delete("\(root)/m/child")
        try await owner.delete("\(root)/m")
        await owner.close()
    }

    func testStateStreamReportsClose() async throws {
        let other = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString))
        let updates = other.stateUpdates()
        await other.close()
        var seen: [SessionState] = []
        for await s in updates { seen.append(s) }
        XCTAssertEqual(seen.last, .closed)
    }

    func testNoClientLogReachesStderr() async throws {
        let captured = try await captureStderr {
            let port = try freeLoopbackPort()
            _ = try? await ZooKeeperClient.connect(ConnectOptions(connectString: "127.0.0.1:\(port)", connectTimeout: .milliseconds(800)))
            let c = try await ZooKeeperClient.connect(ConnectOptions(connectString: self.server.connectString))
            _ = try? await c.get("/no/such/node")
            await c.close()
        }
        XCTAssertEqual(captured, "", "the C client wrote to stderr")
    }
}

/// Polls `condition` until it holds, for at most `timeout`.
func waitUntil(timeout: Duration = .seconds(10), _ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { throw ZooKeeperError(.operationTimeout, message: "condition not met in time") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A loopback port with nothing listening on it (bound, then released).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
        }
    }
    guard ok else { throw ZooKeeperError(.systemError, message: "cannot find a free port") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Runs `body` with file descriptor 2 pointed at a temporary file, and returns what was written.
func captureStderr(_ body: () async throws -> Void) async throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: url.path, contents: nil)
    let fd = open(url.path, O_WRONLY)
    let saved = dup(2)
    fflush(nil)
    dup2(fd, 2)
    close(fd)
    do {
        try await body()
    } catch {
        fflush(nil); dup2(saved, 2); close(saved)
        throw error
    }
    fflush(nil)
    dup2(saved, 2)
    close(saved)
    defer { try? FileManager.default.removeItem(at: url) }
    return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
}
