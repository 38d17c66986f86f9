import Foundation
import Synchronization
import XCTest
import ZKTestSupport
import ZooKeeper
import ZooKeeperRecipes

/// The recipes library used directly, as a Swift program other than zkctl would, against a real
/// standalone server: no argv, no output, only the library's API.
final class RecipesTests: XCTestCase {
    var server: ZooKeeperServer!
    var clients: [ZooKeeperClient] = []
    var base = ""

    override func setUp() async throws {
        server = try SharedServers.standalone()
        let zk = try await connect()
        base = "/recipes-\(UUID().uuidString.prefix(8))"
        try await zk.create(base)
    }

    override func tearDown() async throws {
        for zk in clients { await zk.close() }
        clients = []
    }

    func connect() async throws -> ZooKeeperClient {
        let zk = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, connectTimeout: .seconds(10)))
        clients.append(zk)
        return zk
    }

    func testLockIsExclusiveAndASecondContenderWaitsForTheRelease() async throws {
        let first = try await connect(), second = try await connect()
        let directory = "\(base)/locks/job"
        let mutexA = CuratorMutex(directory: directory, acl: ACL.openUnsafe, data: Data("a".utf8))
        let mutexB = CuratorMutex(directory: directory, acl: ACL.openUnsafe, data: Data("b".utf8))

        let held = try await mutexA.acquire(on: first, deadline: nil) { _, _ in XCTFail("a free lock made A wait") }
        XCTAssertTrue(held.hasPrefix("\(directory)/_c_"), held)
        XCTAssertNotNil(CuratorMutex.sequence(ofContender: String(held.split(separator: "/").last!)))

        // While A holds it, B gives up at its deadline and leaves no contender node behind.
        do {
            _ = try await mutexB.acquire(on: second, deadline: .now + .milliseconds(300)) { _, _ in }
            XCTFail("B acquired a held lock")
        } catch is LockWaitTimeout {
        }
        let afterTimeout = try await first.children(directory).children
        XCTAssertEqual(afterTimeout.map { "\(directory)/\($0)" }, [held])

        // B waits, watching A's node, and gets the lock once A releases it.
        let waits = Mutex<[(String, Int)]>([])
        let waiting = Task {
            try await mutexB.acquire(on: second, deadline: .now + .seconds(20)) { ahead, count in
                waits.withLock { $0.append((ahead, count)) }
            }
        }
        for _ in 0..<200 where waits.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(20)) }
        let seen = waits.withLock { $0 }
        XCTAssertEqual(seen.first?.0, held)
        XCTAssertEqual(seen.first?.1, 1)
        try await mutexA.release(held, on: first)
        let bNode = try await waiting.value
        XCTAssertNotEqual(bNode, held)
        let now = try await first.children(directory).children
        XCTAssertEqual(CuratorMutex.ordered(now).first.map { "\(directory)/\($0)" }, bNode)
        let bData = try await first.get(bNode).data
        XCTAssertEqual(bData, Data("b".utf8))
        try await mutexB.release(bNode, on: second)
        try await mutexB.release(bNode, on: second)   // already released: no error
        let left = try await first.exists(bNode)
        XCTAssertNil(left)
    }

    func testReadersShareAndAWriterWaitsForThemInOneOrder() async throws {
        let a = try await connect(), b = try await connect(), c = try await connect()
        let directory = "\(base)/locks/rw"
        let readerA = CuratorMutex.readWrite(directory: directory, acl: ACL.openUnsafe, data: Data("a".utf8), write: false)
        let readerB = CuratorMutex.readWrite(directory: directory, acl: ACL.openUnsafe, data: Data("b".utf8), write: false)
        let writer = CuratorMutex.readWrite(directory: directory, acl: ACL.openUnsafe, data: Data("w".utf8), write: true)
        let first = try await readerA.acquire(on: a, deadline: nil) { _, _ in XCTFail("a free lock made a reader wait") }
        XCTAssertTrue(first.contains("-__READ__"), first)
        let second = try await readerB.acquire(on: b, deadline: nil) { _, _ in XCTFail("a reader waited for a reader") }
        do {
            _ = try await writer.acquire(on: c, deadline: .now + .milliseconds(300)) { _, _ in }
            XCTFail("the writer got in while readers held the lock")
        } catch is LockWaitTimeout {
        }
        try await readerA.release(first, on: a)
        try await readerB.release(second, on: b)
        let written = try await writer.acquire(on: c, deadline: .now + .seconds(10)) { _, _ in }
        XCTAssertTrue(written.contains("-__WRIT__"), written)
        // A reader behind a writer waits; kazoo's names sort with ours by sequence number.
        do {
            _ = try await readerA.acquire(on: a, deadline: .now + .milliseconds(300)) { _, _ in }
            XCTFail("a reader got in past a writer")
        } catch is LockWaitTimeout {
        }
        XCTAssertEqual(CuratorMutex.ordered(["x__rlock__0000000007", "_c_1-__WRIT__0000000003", "y__lock__0000000005", "other"],
                                            markers: writer.markers),
                       ["_c_1-__WRIT__0000000003", "y__lock__0000000005", "x__rlock__0000000007"])
        XCTAssertTrue(CuratorMutex.isWriter("y__lock__0000000005"))
        XCTAssertFalse(CuratorMutex.isWriter("x__rlock__0000000007"))
        try await writer.release(written, on: c)
    }

    func testSemaphoreAdmitsUpToItsLeases() async throws {
        let zks = [try await connect(), try await connect(), try await connect()]
        let semaphore = CuratorSemaphore(directory: "\(base)/locks/pool", maxLeases: 2, acl: ACL.openUnsafe, data: Data("s".utf8))
        let one = try await semaphore.acquire(on: zks[0], deadline: nil) { _, _ in }
        let two = try await semaphore.acquire(on: zks[1], deadline: nil) { _, _ in }
        XCTAssertTrue(one.hasPrefix("\(base)/locks/pool/leases/_c_") && one.contains("-lease-"), one)
        do {
            _ = try await semaphore.acquire(on: zks[2], deadline: .now + .milliseconds(300)) { _, _ in }
            XCTFail("a third lease of two")
        } catch is LockWaitTimeout {
        }
        let leases = try await zks[0].children(semaphore.leasesPath).children
        XCTAssertEqual(leases.count, 2, "the timed-out taker left its lease node: \(leases)")
        let locks = try await zks[0].children(semaphore.locksPath).children
        XCTAssertEqual(locks, [], "the mutex is given back")
        try await semaphore.release(one, on: zks[0])
        let three = try await semaphore.acquire(on: zks[2], deadline: .now + .seconds(10)) { _, _ in }
        try await semaphore.release(two, on: zks[1])
        try await semaphore.release(three, on: zks[2])
    }

    func testNodeWatcherReportsTheNodeThenItsChange() async throws {
        let zk = try await connect()
        let path = "\(base)/watched"
        try await zk.create(path, data: Data("one".utf8))
        let changes = Mutex<[NodeChange]>([])
        let watcher = NodeWatcher(spec: WatchSpec(paths: [path]), connect: { zk })
        // Bounded: should the change never be seen, closing the client ends `run`.
        let guardTask = Task {
            try await Task.sleep(for: .seconds(20))
            await zk.close()
        }
        defer { guardTask.cancel() }
        let end = try await watcher.run({ change in
            changes.withLock { $0.append(change) }
            return change.kind == .changed ? .stop : .proceed
        }, onReady: {
            Task { _ = try await zk.set(path, data: Data("two".utf8)) }
        })
        XCTAssertEqual(end, .stopped)
        let seen = changes.withLock { $0 }
        XCTAssertEqual(seen.map(\.kind), [.initial, .changed])
        XCTAssertEqual(seen.map(\.path), [path, path])
        XCTAssertEqual(seen.map(\.data), [Data("one".utf8), Data("two".utf8)])
        XCTAssertEqual(seen.last?.stat?.version, 1)
    }

    func testServiceInstanceIsWrittenAndReadBackInCuratorsJSON() async throws {
        let zk = try await connect()
        let path = "\(base)/services/backend/i-1"
        let registration = ServiceInstance.Registration(
            name: "backend", id: "i-1", address: "10.0.0.5", port: 8080, sslPort: 8443, scheme: nil,
            metadata: JSONObject([("zone", .string("a"))]), dynamic: true, registrationTimeUTC: 1_700_000_000_000)
        let target = ServiceTarget(root: "\(base)/services", name: "backend", id: "i-1", acl: ACL.openUnsafe, replaceACL: false)
        XCTAssertEqual(target.path, path)
        _ = try await target.write(registration, with: zk)
        let stat = try await zk.exists(path)
        XCTAssertEqual(stat?.ephemeralOwner, zk.sessionID)

        let (data, _) = try await zk.get(path)
        guard case .object(let doc)? = try? JSONValue.parse(data) else { return XCTFail("not a JSON object") }
        XCTAssertEqual(doc.keys, ["name", "id", "address", "port", "sslPort", "payload", "registrationTimeUTC",
                                  "serviceType", "uriSpec", "enabled"])
        XCTAssertEqual(doc["serviceType"], .string("DYNAMIC"))
        XCTAssertEqual(doc["payload"]?.objectValue?["@class"], .string(ServiceInstance.springPayloadClass))
        XCTAssertEqual(doc["uriSpec"]?.compact(),
                       #"{"parts":[{"value":"http://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]}"#)

        let instance = try ServiceInstance.parse(data, name: "backend", id: "i-1")
        XCTAssertEqual(instance.address, "10.0.0.5")
        XCTAssertEqual(instance.port, 8080)
        XCTAssertEqual(instance.sslPort, 8443)
        XCTAssertEqual(instance.registrationTimeUTC, 1_700_000_000_000)
        XCTAssertTrue(instance.isDynamic)
        XCTAssertTrue(instance.enabled)
        XCTAssertEqual(instance.metadata["zone"], .string("a"))
        XCTAssertEqual(instance.url, "http://10.0.0.5:8080")

        // Discovery finds it, and leaves out (telling why) a node that is not an instance.
        try await zk.create("\(base)/services/backend/junk", data: Data("[1]".utf8))
        var skipped: [String] = []
        let found = try await ServiceDiscovery.instances(zk, root: "\(base)/services", name: "backend") { path, _ in skipped.append(path) }
        XCTAssertEqual(found.map(\.instance.id), ["i-1"])
        XCTAssertEqual(skipped, ["\(base)/services/backend/junk"])
        try await zk.delete("\(base)/services/backend/junk")
        try await target.deregisterOwn(with: zk)
        let serviceNode = try await zk.exists(target.servicePath)
        XCTAssertNil(serviceNode, "the empty service node was left behind")

        XCTAssertThrowsError(try ServiceInstance.parse(Data("[1]".utf8), name: "backend", id: "x")) { error in
            XCTAssertEqual("\(error)", "not a service instance: the data is a JSON array, not an object")
        }
    }

    func testRunOnceClaimIsTakenOnceAndItsRecordConcludesTheRun() async throws {
        let zk = try await connect()
        let path = "\(base)/tasks/report/k1"
        func record(_ runID: String) -> Data {
            Data(JSONValue.object(RunOnce.record(task: "report", key: "k1", period: (3_600_000, 2), command: "report.sh",
                                                 runID: runID)).compact().utf8)
        }
        guard case .ours = try await RunOnce.claim(zk, path: path, data: record("r1"), acl: ACL.openUnsafe, runID: "r1") else {
            return XCTFail("the first claim was not ours")
        }
        guard case .taken(let other?) = try await RunOnce.claim(zk, path: path, data: record("r2"), acl: ACL.openUnsafe, runID: "r2") else {
            return XCTFail("a second claim of the same key was not refused with the first record")
        }
        XCTAssertEqual(other["runId"], .string("r1"))
        XCTAssertEqual(other.keys, ["task", "key", "period", "periodStart", "host", "pid", "command", "start", "end",
                                    "exitCode", "runId"])
        XCTAssertEqual(other["period"], .string("3600s"))
        XCTAssertEqual(other["periodStart"], .string("1970-01-01T02:00:00.000Z"))
        XCTAssertEqual(other["end"], .null)

        let warnings = Mutex<[String]>([])
        let first = try JSONValue.parse(record("r1")).objectValue!
        let recorder = RunOnceRecorder(client: zk, path: path, record: first, runID: "r1", reconnect: { zk },
                                       warn: { line in warnings.withLock { $0.append(line) } })
        await recorder.finish(JSONObject([("exitCode", .int(0))]))
        await recorder.forget()   // concluded once: this does nothing
        let doneData = try await zk.get(path).data
        let done = try JSONValue.parse(doneData).objectValue!
        XCTAssertEqual(done["exitCode"], .int(0))
        XCTAssertNotNil(done["end"]?.stringValue.flatMap(isoMilliseconds))
        XCTAssertEqual(warnings.withLock { $0 }, [])

        // A run that does not count gives its claim back.
        let path2 = "\(base)/tasks/report/k2"
        _ = try await RunOnce.claim(zk, path: path2, data: record("r3"), acl: ACL.openUnsafe, runID: "r3")
        let failed = RunOnceRecorder(client: zk, path: path2, record: try JSONValue.parse(record("r3")).objectValue!,
                                     runID: "r3", reconnect: { zk }, warn: { line in warnings.withLock { $0.append(line) } })
        await failed.forget()
        let gone = try await zk.exists(path2)
        XCTAssertNil(gone)
        XCTAssertEqual(warnings.withLock { $0 }, [])
    }
}
