import Foundation
import Synchronization
import XCTest
import ZKTestSupport
@testable import ZooKeeper

/// The one C-call path: a reply frees its request at once (the deadline does not hold it), and
/// the one-shot it resumes takes the first value only.
final class CCallTests: XCTestCase {
    var server: ZooKeeperServer!
    var zk: ZooKeeperClient!
    var base = ""

    override func setUp() async throws {
        server = try SharedServers.standalone()
        // A request timeout far longer than the test: a deadline that kept the request would
        // keep its data for all of it.
        zk = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, connectTimeout: .seconds(10),
                                                              requestTimeout: .seconds(300)))
        base = "/ccalltests-\(UUID().uuidString.prefix(8))"
        try await zk.create(base)
    }

    override func tearDown() async throws {
        await zk?.close()
    }

    /// Bytes that say when they are freed.
    final class Freed: Sendable {
        private let flag = Mutex(false)
        func mark() { flag.withLock { $0 = true } }
        var isFreed: Bool { flag.withLock { $0 } }

        /// `count` bytes whose storage marks this once it is released.
        func data(count: Int) -> Data {
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 1)
            bytes.initializeMemory(as: UInt8.self, repeating: 0x5a, count: count)
            return Data(bytesNoCopy: bytes, count: count, deallocator: .custom { [self] pointer, _ in
                pointer.deallocate()
                mark()
            })
        }

        /// Waits (at most 5 s) for the bytes to be freed; the completion thread may drop its last
        /// reference just after the caller has its answer.
        func freedSoon() async -> Bool {
            for _ in 0..<500 {
                if isFreed { return true }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return isFreed
        }
    }

    private static let large = 600_000

    private func setTracked(_ path: String, _ freed: Freed) async throws -> Int32 {
        try await zk.set(path, data: freed.data(count: Self.large)).dataLength
    }

    private func createTracked(_ path: String, _ freed: Freed) async throws -> String {
        try await zk.create(path, data: freed.data(count: Self.large))
    }

    private func multiTracked(_ path: String, _ freed: Freed) async throws -> [MultiOpResult] {
        try await zk.multi([.set(path, data: freed.data(count: Self.large))])
    }

    func testAnsweredSetAndCreateFreeTheirDataBeforeTheDeadline() async throws {
        let created = Freed()
        let path = try await createTracked("\(base)/large", created)
        XCTAssertEqual(path, "\(base)/large")
        let createFreed = await created.freedSoon()
        XCTAssertTrue(createFreed, "an answered create's data is kept until its deadline")

        let set = Freed()
        let length = try await setTracked(path, set)
        XCTAssertEqual(Int(length), Self.large)
        let setFreed = await set.freedSoon()
        XCTAssertTrue(setFreed, "an answered set's data is kept until its deadline")

        let (data, _) = try await zk.get(path)
        XCTAssertEqual(data, Data(repeating: 0x5a, count: Self.large))
    }

    func testAnsweredMultiFreesItsDataBeforeTheDeadline() async throws {
        let path = "\(base)/m"
        try await zk.create(path)
        let freed = Freed()
        let results = try await multiTracked(path, freed)
        XCTAssertEqual(results.count, 1)
        let multiFreed = await freed.freedSoon()
        XCTAssertTrue(multiFreed, "an answered multi's data is kept until its deadline")
    }

    func testRequestAfterCloseFailsWithClosing() async throws {
        let other = try await ZooKeeperClient.connect(ConnectOptions(connectString: server.connectString, connectTimeout: .seconds(10)))
        await other.close()
        do {
            _ = try await other.exists(base)
            XCTFail("a closed client sent a request")
        } catch let error as ZooKeeperError {
            XCTAssertEqual(error.code, .closing)
        }
        let results = await other.pipeline([.exists(base), .get(base)])
        XCTAssertEqual(results.count, 2)
        for result in results {
            guard case .failure(let error) = result else { XCTFail("a closed client answered"); continue }
            XCTAssertEqual(error.code, .closing)
        }
    }

    func testOneShotKeepsTheFirstValue() async {
        let once = OneShot<Int>()
        XCTAssertNil(once.value)
        XCTAssertTrue(once.resume(1))
        XCTAssertFalse(once.resume(2))
        let first = await once.wait()
        XCTAssertEqual(first, 1)
        XCTAssertEqual(once.value, 1)
    }

    func testOneShotWakesAWaiterAndMeetsItsDeadline() async {
        let answered = OneShot<String>()
        Task.detached {
            try? await Task.sleep(for: .milliseconds(50))
            answered.resume("reply")
        }
        let start = ContinuousClock.now
        let reply = await answered.wait(until: .now + .seconds(30)) { "late" }
        XCTAssertEqual(reply, "reply")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(10))

        let silent = OneShot<String>()
        let late = await silent.wait(until: .now + .milliseconds(100)) { "late" }
        XCTAssertEqual(late, "late")
        XCTAssertFalse(silent.resume("reply"))
    }

    func testOneShotDeadlineDoesNotKeepItAlive() async {
        weak var weakOnce: OneShot<Int>?
        do {
            let once = OneShot<Int>()
            weakOnce = once
            once.resume(at: .now + .seconds(300)) { 0 }
            once.resume(1)
        }
        XCTAssertNil(weakOnce, "a pending deadline keeps its one-shot")
    }
}
