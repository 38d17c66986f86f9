import Glibc

/// Starts `body` on a detached thread of its own (what Foundation's `Thread.detachNewThread`
/// did); `name`, when given, is the thread's name as `ps -L` and gdb show it (15 bytes at most).
/// Returns false, without running `body`, when the system gives no thread.
@discardableResult
package func startThread(name: String? = nil, _ body: @escaping @Sendable () -> Void) -> Bool {
    let context = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let started = pthread_create(&thread, &attributes, runThreadBody, context)
    if started != 0 {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        return false
    }
    return true
}

private final class ThreadBody: Sendable {
    let name: String?
    let body: @Sendable () -> Void
    init(name: String?, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

private func runThreadBody(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    let thread = Unmanaged<ThreadBody>.fromOpaque(context).takeRetainedValue()
    if let name = thread.name { nameThisThread(name) }
    thread.body()
    return nil
}

/// Names the calling thread (what pthread_setname_np does, which Glibc's module does not show).
private func nameThisThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// A plain mutex that may be held across blocking calls (NSLock's place): `lock()` waits,
/// `unlock()` by the thread that locked it.
package final class BlockingLock: @unchecked Sendable {
    // @unchecked: the pthread mutex is the synchronisation; it lives at a fixed address for the
    // lock's whole life (allocated once, freed in deinit).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
}
