import CZooKeeper
import Foundation
import Synchronization

// The C client calls these free functions on its one completion thread. Each recovers its
// `ReplyBox` through `Unmanaged`, copies what the C pointers show (they are valid only during
// the call) and hands a Swift value on. Nothing here blocks.

/// The context of one asynchronous C call. Retained once when the call is issued and released
/// by the completion, or at once when the call fails synchronously.
final class ReplyBox: @unchecked Sendable {
    // Sendable: every field is set once in init and only read afterwards.
    let deliver: @Sendable (Int32, OperationResult) -> Void
    /// C buffers that must live until the completion runs (multi ops, ACL vectors).
    let keepAlive: AnyObject?
    /// Where the retained pointer is listed while the C client holds it.
    let pending: PendingReplies

    init(pending: PendingReplies, keepAlive: AnyObject? = nil, _ deliver: @escaping @Sendable (Int32, OperationResult) -> Void) {
        self.deliver = deliver
        self.keepAlive = keepAlive
        self.pending = pending
    }

    /// Retains the box for the C client and lists it as pending.
    func retainedPointer() -> UnsafeRawPointer {
        let pointer = UnsafeRawPointer(Unmanaged.passRetained(self).toOpaque())
        pending.insert(pointer)
        return pointer
    }

    /// Balances `retainedPointer()` when the C call failed and the completion will never run.
    static func releaseUnused(_ pointer: UnsafeRawPointer) {
        let box = Unmanaged<ReplyBox>.fromOpaque(pointer).takeRetainedValue()
        box.pending.remove(pointer)
    }

    static func take(_ pointer: UnsafeRawPointer?) -> ReplyBox? {
        guard let pointer else { return nil }
        let box = Unmanaged<ReplyBox>.fromOpaque(pointer).takeRetainedValue()
        box.pending.remove(pointer)
        return box
    }
}

/// The replies the C client still owes. A request still unanswered when the handle is closed
/// never gets its completion, so after `zookeeper_close` the rest are failed with `closing` and
/// released here: nothing leaks, and no waiter is left hanging.
final class PendingReplies: Sendable {
    private let pointers = Mutex<Set<UInt>>([])

    func insert(_ pointer: UnsafeRawPointer) { _ = pointers.withLock { $0.insert(UInt(bitPattern: pointer)) } }
    func remove(_ pointer: UnsafeRawPointer) { _ = pointers.withLock { $0.remove(UInt(bitPattern: pointer)) } }

    /// Only once no completion can run any more.
    func failAll() {
        let left = pointers.withLock { p -> Set<UInt> in defer { p = [] }; return p }
        for bits in left {
            guard let pointer = UnsafeRawPointer(bitPattern: bits) else { continue }
            Unmanaged<ReplyBox>.fromOpaque(pointer).takeRetainedValue().deliver(ZCLOSING.rawValue, .none)
        }
    }
}

func copyStrings(_ v: UnsafePointer<String_vector>?) -> [String] {
    guard let v, let items = v.pointee.data else { return [] }
    var out: [String] = []
    out.reserveCapacity(Int(v.pointee.count))
    for i in 0..<Int(v.pointee.count) {
        if let s = items[i] { out.append(String(cString: s)) }
    }
    return out
}

func copyACLs(_ v: UnsafePointer<ACL_vector>?) -> [ACL] {
    guard let v, let items = v.pointee.data else { return [] }
    return (0..<Int(v.pointee.count)).map { i in
        let a = items[i]
        return ACL(permissions: Permissions(rawValue: a.perms),
                   scheme: a.id.scheme.map { String(cString: $0) } ?? "",
                   id: a.id.id.map { String(cString: $0) } ?? "")
    }
}

func copyData(_ value: UnsafePointer<CChar>?, _ length: Int32) -> Data {
    guard let value, length > 0 else { return Data() }
    return Data(bytes: value, count: Int(length))
}

let voidCompletion: void_completion_t = { rc, context in
    ReplyBox.take(context)?.deliver(rc, .none)
}

let statCompletion: stat_completion_t = { rc, stat, context in
    ReplyBox.take(context)?.deliver(rc, .stat(stat.map { Stat($0.pointee) }))
}

let dataCompletion: data_completion_t = { rc, value, length, stat, context in
    let box = ReplyBox.take(context)
    guard rc == ZOK.rawValue else { box?.deliver(rc, .none); return }
    box?.deliver(rc, .data(copyData(value, length), stat.map { Stat($0.pointee) } ?? Stat()))
}

let childrenCompletion: strings_stat_completion_t = { rc, strings, stat, context in
    let box = ReplyBox.take(context)
    guard rc == ZOK.rawValue else { box?.deliver(rc, .none); return }
    box?.deliver(rc, .children(copyStrings(strings), stat.map { Stat($0.pointee) }))
}

let stringCompletion: string_completion_t = { rc, value, context in
    ReplyBox.take(context)?.deliver(rc, .string(value.map { String(cString: $0) } ?? ""))
}

let createCompletion: string_stat_completion_t = { rc, value, stat, context in
    ReplyBox.take(context)?.deliver(rc, .created(value.map { String(cString: $0) } ?? "", stat.map { Stat($0.pointee) }))
}

let aclCompletion: acl_completion_t = { rc, acl, stat, context in
    let box = ReplyBox.take(context)
    guard rc == ZOK.rawValue else { box?.deliver(rc, .none); return }
    box?.deliver(rc, .acl(copyACLs(acl), stat.map { Stat($0.pointee) } ?? Stat()))
}

/// Resumes a continuation exactly once, whichever comes first: the reply or a deadline.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ result: Result<T, any Error>) {
        let c = continuation.withLock { c -> CheckedContinuation<T, any Error>? in
            defer { c = nil }
            return c
        }
        c?.resume(with: result)
    }
}

/// C allocations for one request (paths, data, ACL vectors, multi ops), freed together when the
/// request's completion has run.
final class CBuffers: @unchecked Sendable {
    // Sendable: filled before the request is issued, then only read by the C client, and freed
    // in deinit after the completion dropped the last reference.
    private var blocks: [UnsafeMutableRawPointer] = []

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    func bytes(_ data: Data) -> UnsafeMutablePointer<CChar> {
        let raw = malloc(max(data.count, 1))!
        data.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { raw.copyMemory(from: base, byteCount: data.count) }
        }
        blocks.append(raw)
        return raw.bindMemory(to: CChar.self, capacity: max(data.count, 1))
    }

    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        // calloc: zeroed, and freed with free() like every other block here. Only C structs go here.
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func aclVector(_ acls: [ACL]) -> UnsafeMutablePointer<ACL_vector> {
        let items = allocate(CZooKeeper.ACL.self, count: acls.count)
        for (i, a) in acls.enumerated() {
            items[i].perms = a.permissions.rawValue
            items[i].id.scheme = string(a.scheme)
            items[i].id.id = string(a.id)
        }
        let vector = allocate(ACL_vector.self, count: 1)
        vector.pointee.count = Int32(acls.count)
        vector.pointee.data = items
        return vector
    }

    deinit {
        for b in blocks { free(b) }
    }
}
