import Glibc
import Synchronization
import XCTest
@testable import ZooKeeper

/// The event thread that keeps every deadline and watches the signal pipe.
final class EventThreadTests: XCTestCase {
    /// Waits (at most `limit`) until `done` holds.
    private func waitUntil(_ limit: Duration = .seconds(5), _ done: () -> Bool) -> Bool {
        let end = ContinuousClock.now + limit
        while !done() {
            if ContinuousClock.now > end { return false }
            usleep(2_000)
        }
        return true
    }

    func testTimersRunInDeadlineOrderAndNotBeforeTheirDeadline() {
        let start = ContinuousClock.now
        let ran = Mutex<[(String, Duration)]>([])
        // Two timers share a deadline: they run in the order they were scheduled.
        for (name, ms) in [("a", 120), ("b", 30), ("c", 90), ("d", 30), ("e", 60)] {
            let deadline = start + .milliseconds(ms)
            EventThread.shared.schedule(at: deadline) {
                ran.withLock { $0.append((name, ContinuousClock.now - start)) }
                XCTAssertGreaterThanOrEqual(ContinuousClock.now, deadline, "timer \(name) ran early")
            }
        }
        XCTAssertTrue(waitUntil { ran.withLock { $0.count } == 5 }, "not every timer ran")
        XCTAssertEqual(ran.withLock { $0.map(\.0) }, ["b", "d", "e", "c", "a"])
    }

    func testAnEarlierDeadlineWakesTheThread() {
        // The thread sleeps towards a deadline a minute away; a timer due in 20 ms must not wait
        // for it.
        EventThread.shared.schedule(at: .now + .seconds(60)) {}
        let start = ContinuousClock.now
        let ranAfter = Mutex<Duration?>(nil)
        EventThread.shared.schedule(at: start + .milliseconds(20)) {
            ranAfter.withLock { $0 = ContinuousClock.now - start }
        }
        XCTAssertTrue(waitUntil { ranAfter.withLock { $0 } != nil }, "the 20 ms timer did not run within 5 s")
        XCTAssertLessThan(ranAfter.withLock { $0 } ?? .seconds(99), .seconds(2))
    }

    func testAWatchRunsWhileItsDescriptorIsReadableAndStopsWhenUnwatched() {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        let readFD = fds[0]
        let received = Mutex<[UInt8]>([])
        let id = EventThread.shared.watch(readFD) {
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) == 1 { received.withLock { $0.append(byte) } }
        }
        var one: UInt8 = 1, two: UInt8 = 2
        XCTAssertEqual(write(fds[1], &one, 1), 1)
        XCTAssertTrue(waitUntil { received.withLock { $0 } == [1] }, "the watch did not read the first byte")
        EventThread.shared.unwatch(id)
        XCTAssertEqual(write(fds[1], &two, 1), 1)
        // A timer behind the write: once it has run, the thread has been round its loop since.
        let later = Mutex(false)
        EventThread.shared.schedule(at: .now + .milliseconds(50)) { later.withLock { $0 = true } }
        XCTAssertTrue(waitUntil { later.withLock { $0 } })
        XCTAssertEqual(received.withLock { $0 }, [1], "the watch ran after unwatch")
        var left: UInt8 = 0
        XCTAssertEqual(read(readFD, &left, 1), 1, "the second byte should still be in the pipe")
        XCTAssertEqual(left, 2)
    }
}
