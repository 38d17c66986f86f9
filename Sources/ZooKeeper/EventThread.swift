import Glibc
import Synchronization

/// One plain thread for the process's deadlines and for the descriptors that are read rarely
/// (the signal pipe). It sleeps in poll(2) until the earliest deadline passes or a watched
/// descriptor is readable. It takes the place of dispatch's timers and read sources: their
/// first use starts dispatch's event machinery (an epoll set, its manager queue and a worker
/// thread) in every command, one-shot ones included.
///
/// Bodies run on this thread, one at a time; timers in deadline order (in the order they were
/// scheduled for the same deadline). A body must not block: resuming a one-shot or issuing a C
/// call is fine, anything that may wait starts a thread of its own.
///
/// The thread starts at the first `schedule` or `watch`. Without a thread (none left to start),
/// timers and watches wait in their lists and the next call tries again.
package final class EventThread: Sendable {
    package static let shared = EventThread()

    private struct Watch {
        let fd: Int32
        let body: @Sendable () -> Void
    }

    private struct State {
        var timers = TimerHeap()
        var watches: [UInt64: Watch] = [:]
        var nextID: UInt64 = 0
        var started = false
    }

    private let state = Mutex(State())
    /// Written to when the thread must look at its lists again (an earlier deadline, a watch
    /// added or removed); read and emptied by the thread. -1 if there was no pipe: then the
    /// thread wakes every 10 ms to look.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    private init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    /// Runs `body` on the event thread once `deadline` has passed.
    package func schedule(at deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () -> Void) {
        let (earliest, start) = state.withLock { s -> (Bool, Bool) in
            s.nextID += 1
            s.timers.insert(TimerHeap.Entry(deadline: deadline, order: s.nextID, body: body))
            return (s.timers.first?.order == s.nextID, takeStart(&s))
        }
        if start { startThread() } else if earliest { wake() }
    }

    /// Runs `body` on the event thread whenever `fd` is readable (or at its end, or in error),
    /// until `unwatch` with the id returned. `body` must read what is waiting, or it is called
    /// again at once.
    package func watch(_ fd: Int32, _ body: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, start) = state.withLock { s -> (UInt64, Bool) in
            s.nextID += 1
            s.watches[s.nextID] = Watch(fd: fd, body: body)
            return (s.nextID, takeStart(&s))
        }
        if start { startThread() } else { wake() }
        return id
    }

    /// Stops watching. A body that is running (or was just taken to run) finishes; it is not
    /// called again after that.
    package func unwatch(_ id: UInt64) {
        let removed = state.withLock { $0.watches.removeValue(forKey: id) != nil }
        if removed { wake() }
    }

    /// Whether this call is the one to start the thread (it is marked started at once, so that
    /// only one call starts it).
    private func takeStart(_ s: inout State) -> Bool {
        if s.started { return false }
        s.started = true
        return true
    }

    private func startThread() {
        let started = ZooKeeper.startThread(name: "zkctl.events") { [self] in run() }
        if !started { state.withLock { $0.started = false } }
    }

    private func wake() {
        guard wakeWrite >= 0 else { return }
        var byte: UInt8 = 1
        // A full pipe already holds a wake-up: nothing is lost when this write fails.
        _ = write(wakeWrite, &byte, 1)
    }

    private func drainWakes() {
        guard wakeRead >= 0 else { return }
        var bytes = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &bytes, { read(wakeRead, $0.baseAddress, $0.count) }) > 0 {}
    }

    private func run() -> Never {
        var due: [@Sendable () -> Void] = []
        var polled: [pollfd] = []
        var polledIDs: [UInt64] = []
        while true {
            // The timers that are due run first, outside the lock; then the thread sleeps until
            // the next deadline, a wake-up or a watched descriptor.
            let timeout = state.withLock { s -> Int32 in
                let now = ContinuousClock.now
                while let first = s.timers.first, first.deadline <= now {
                    due.append(s.timers.removeFirst().body)
                }
                if !due.isEmpty { return 0 }
                polled.removeAll(keepingCapacity: true)
                polledIDs.removeAll(keepingCapacity: true)
                for (id, watch) in s.watches {
                    polled.append(pollfd(fd: watch.fd, events: Int16(POLLIN), revents: 0))
                    polledIDs.append(id)
                }
                guard let first = s.timers.first else { return wakeRead >= 0 ? -1 : 10 }
                // Rounded up, so that the thread does not wake just before the deadline.
                let nanoseconds = (first.deadline - now).nanoseconds
                let ms = (nanoseconds + 999_999) / 1_000_000
                return Int32(clamping: wakeRead >= 0 ? ms : min(ms, 10))
            }
            if !due.isEmpty {
                for body in due { body() }
                due.removeAll(keepingCapacity: true)
                continue
            }
            polled.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            let ready = poll(&polled, nfds_t(polled.count), timeout)
            guard ready > 0 else { continue }
            if polled[polled.count - 1].revents != 0 { drainWakes() }
            for (index, id) in polledIDs.enumerated() where polled[index].revents != 0 {
                // POLLNVAL: the descriptor was closed under its watch; a body cannot read it,
                // so the watch ends rather than wake this thread in a loop.
                let closed = polled[index].revents & Int16(POLLNVAL) != 0
                let body = state.withLock { s -> (@Sendable () -> Void)? in
                    if closed {
                        s.watches[id] = nil
                        return nil
                    }
                    return s.watches[id]?.body
                }
                body?()
            }
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds (clamped to Int64).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}

/// A binary min-heap of timers, by deadline, then by the order they were scheduled in.
private struct TimerHeap {
    struct Entry {
        let deadline: ContinuousClock.Instant
        let order: UInt64
        let body: @Sendable () -> Void

        func precedes(_ other: Entry) -> Bool {
            deadline < other.deadline || (deadline == other.deadline && order < other.order)
        }
    }

    private var entries: [Entry] = []

    var first: Entry? { entries.first }

    mutating func insert(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the first entry; the heap must not be empty.
    mutating func removeFirst() -> Entry {
        let first = entries[0]
        let last = entries.removeLast()
        guard !entries.isEmpty else { return first }
        entries[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count, entries[left].precedes(entries[smallest]) { smallest = left }
            if right < entries.count, entries[right].precedes(entries[smallest]) { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
