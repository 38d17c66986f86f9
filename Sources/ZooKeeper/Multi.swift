import CZooKeeper
import Foundation

/// One operation of an all-or-nothing `multi` transaction.
public enum MultiOp: Sendable, Hashable {
    case create(String, data: Data = Data(), mode: CreateMode = .persistent, acl: [ACL] = ACL.openUnsafe)
    case set(String, data: Data, version: Int32 = -1)
    case delete(String, version: Int32 = -1)
    /// Fails the transaction unless the node has this version.
    case check(String, version: Int32)

    public var path: String {
        switch self {
        case .create(let p, _, _, _), .set(let p, _, _), .delete(let p, _), .check(let p, _): return p
        }
    }

    /// A generous estimate of the operation's size inside a multi request.
    public var estimatedSize: Int {
        let base = 48 + path.utf8.count
        switch self {
        case .create(_, let data, _, let acl): return base + data.count + aclSize(acl)
        case .set(_, let data, _): return base + data.count
        case .delete, .check: return base
        }
    }
}

/// What one operation of a successful `multi` did.
public enum MultiOpResult: Sendable, Hashable {
    case created(String)
    case set(Stat)
    case deleted
    case checked
}

extension ZooKeeperClient {
    /// The size estimate of a whole multi request; compare with `maxPacketSize` to batch.
    public static func estimatedMultiSize(_ ops: [MultiOp]) -> Int {
        ops.reduce(64) { $0 + $1.estimatedSize }
    }

    /// Runs `ops` as one transaction: all succeed or none does. On failure the error carries the
    /// failing operation's code, path and index.
    public func multi(_ ops: [MultiOp]) async throws -> [MultiOpResult] {
        if ops.isEmpty { return [] }
        for op in ops {
            // The 3.8.0 C client cannot read the reply to a container or TTL create inside a multi
            // (it asserts and aborts the process after the server committed), so refuse them here.
            if case .create(_, _, let mode, _) = op, mode.ttl != nil || mode == .container {
                throw ZooKeeperError(.badArguments, path: op.path, message: "container and TTL nodes cannot be created in a multi")
            }
            if let problem = PathRules.problem(with: op.path) {
                throw ZooKeeperError(.invalidPath, path: op.path, message: problem)
            }
        }
        let size = Self.estimatedMultiSize(ops)
        if size > Self.maxPacketSize {
            throw ZooKeeperError(.requestTooLarge, path: ops.first?.path,
                                 message: "transaction of about \(size) bytes is over the server's limit of \(Self.maxPacketSize) bytes")
        }
        let deadline = ContinuousClock.now + requestTimeout
        let count = ops.count
        let buffers = CBuffers()
        let cOps = buffers.allocate(zoo_op_t.self, count: count)
        let cResults = buffers.allocate(zoo_op_result_t.self, count: count)
        for (i, op) in ops.enumerated() {
            let slot = cOps + i
            switch op {
            case .create(let path, let data, let mode, let acl):
                let capacity = path.utf8.count + 32
                zoo_create_op_init(slot, buffers.string(path), buffers.bytes(data), Int32(data.count),
                                   buffers.aclVector(acl), mode.flags, buffers.allocate(CChar.self, count: capacity), Int32(capacity))
            case .set(let path, let data, let version):
                zoo_set_op_init(slot, buffers.string(path), buffers.bytes(data), Int32(data.count), version,
                                buffers.allocate(CZooKeeper.Stat.self, count: 1))
            case .delete(let path, let version):
                zoo_delete_op_init(slot, buffers.string(path), version)
            case .check(let path, let version):
                zoo_check_op_init(slot, buffers.string(path), version)
            }
        }
        let rc: Int32 = try await withCheckedThrowingContinuation { continuation in
            let once = ResumeOnce<Int32>(continuation)
            let box = ReplyBox(pending: core.pending, keepAlive: buffers) { rc, _ in once.resume(.success(rc)) }
            let context = box.retainedPointer()
            let sync = withHandle { zh in zoo_amulti(zh, Int32(count), cOps, cResults, voidCompletion, context) } ?? ZCLOSING.rawValue
            if sync != ZOK.rawValue {
                ReplyBox.releaseUnused(context)
                once.resume(.success(sync))
                return
            }
            schedule(after: deadline - .now) {
                once.resume(.failure(ZooKeeperError(.operationTimeout, path: ops.first?.path, message: "no answer within \(self.requestTimeout.milliseconds) ms")))
            }
        }
        // The box (and so the buffers) is released once the completion ran, but `buffers` is
        // still held here, so the results can be read.
        return try withExtendedLifetime(buffers) {
            if rc != ZOK.rawValue {
                // The failing op carries the real code; the others say "runtime inconsistency".
                for i in 0..<count {
                    let err = cResults[i].err
                    if err != ZOK.rawValue && err != ZRUNTIMEINCONSISTENCY.rawValue {
                        throw ZooKeeperError(rc: err, path: ops[i].path, operationIndex: i)
                    }
                }
                throw ZooKeeperError(rc: rc, path: nil)
            }
            return ops.enumerated().map { i, op in
                switch op {
                case .create: return .created(cResults[i].value.map { String(cString: $0) } ?? op.path)
                case .set: return .set(cResults[i].stat.map { Stat($0.pointee) } ?? Stat())
                case .delete: return .deleted
                case .check: return .checked
                }
            }
        }
    }
}

extension ZooKeeperError {
    init(rc: Int32, path: String?, operationIndex: Int?) {
        self.init(Code(rawValue: rc), path: path, operationIndex: operationIndex)
    }
}
