import CZooKeeper
import Foundation
import Synchronization

// The C client calls these free functions, with the exact C signatures, on its one completion
// thread. Each recovers its `ReplyBox` through `Unmanaged` (`ReplyBox.take`, which balances the
// retain of `ZooKeeperClient.callC`), copies what the C pointers show (they are valid only during
// the call) and hands a Swift value on. Nothing here blocks.

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
