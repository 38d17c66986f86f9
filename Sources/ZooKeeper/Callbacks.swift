import CZooKeeper
import FoundationEssentials
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
/// request's completion has run. A request that knows its size up front (a multi) asks for one
/// region of `capacity` bytes, carved in order; what does not fit there gets a block of its own.
final class CBuffers: @unchecked Sendable {
    // Sendable: filled before the request is issued, then only read by the C client, and freed
    // in deinit after the completion dropped the last reference.
    private var blocks: [UnsafeMutableRawPointer] = []
    private var region: UnsafeMutableRawPointer? = nil
    private var used = 0
    private var capacity = 0

    init() {}

    /// One region of `capacity` bytes for the pieces to come (`regionSize` counts them).
    init(capacity: Int) {
        if capacity > 0, let block = malloc(capacity) {
            region = block
            blocks.append(block)
            self.capacity = capacity
        }
    }

    /// The bytes a region needs for a string of `utf8Count` bytes, raw bytes or `count` C values
    /// of `T` (their alignment included).
    static func regionSize(string utf8Count: Int) -> Int { utf8Count + 1 }
    static func regionSize(bytes count: Int) -> Int { max(count, 1) }
    static func regionSize<T>(_ type: T.Type, count: Int) -> Int {
        max(count, 1) * MemoryLayout<T>.stride + MemoryLayout<T>.alignment - 1
    }

    /// `count` bytes aligned to `alignment`, from the region when they fit there, else malloc'd.
    private func take(_ count: Int, alignment: Int) -> UnsafeMutableRawPointer {
        if let region {
            let address = Int(bitPattern: region) + used
            let start = (address + alignment - 1) & ~(alignment - 1)
            let end = start - Int(bitPattern: region) + count
            if end <= capacity {
                used = end
                return region + (start - Int(bitPattern: region))
            }
        }
        let p = malloc(count)!
        blocks.append(p)
        return p
    }

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        var s = s
        return s.withUTF8 { utf8 in
            let p = take(utf8.count + 1, alignment: 1)
            if let base = utf8.baseAddress { p.copyMemory(from: base, byteCount: utf8.count) }
            p.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
            return p.bindMemory(to: CChar.self, capacity: utf8.count + 1)
        }
    }

    func bytes(_ data: Data) -> UnsafeMutablePointer<CChar> {
        let raw = take(max(data.count, 1), alignment: 1)
        data.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { raw.copyMemory(from: base, byteCount: data.count) }
        }
        return raw.bindMemory(to: CChar.self, capacity: max(data.count, 1))
    }

    /// Zeroed, and freed with the rest. Only C structs go here.
    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let size = max(count, 1) * MemoryLayout<T>.stride
        let raw = take(size, alignment: max(MemoryLayout<T>.alignment, 1))
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// The region bytes of `aclVector(acls)`.
    static func regionSize(acl acls: [ACL]) -> Int {
        var size = regionSize(CZooKeeper.ACL.self, count: acls.count) + regionSize(ACL_vector.self, count: 1)
        for a in acls { size += regionSize(string: a.scheme.utf8.count) + regionSize(string: a.id.utf8.count) }
        return size
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
