import Foundation
import Synchronization

/// One node met by `walk`.
public struct WalkedNode: Sendable, Hashable {
    public var path: String
    /// 0 for the walk's root.
    public var depth: Int
    public var stat: Stat
    /// Sorted child names (empty at the depth limit, where children are not listed).
    public var children: [String]
    /// The data, when asked for.
    public var data: Data?
    /// The ACL, when asked for.
    public var acl: [ACL]?
}

extension ZooKeeperClient {
    /// Walks the subtree at `root` breadth-first, one level at a time, each level's requests
    /// pipelined. `visit` gets each level's nodes in order: parents' order, children sorted by name.
    /// Nodes that vanish during the walk are left out. `maxDepth` nil means no limit; 0 visits only
    /// the root. `exclude` skips a subtree (for example `/zookeeper`).
    public func walk(_ root: String, maxDepth: Int? = nil, data: Bool = false, acl: Bool = false,
                     maxInFlight: Int = defaultMaxInFlight, exclude: @Sendable (String) -> Bool = { _ in false },
                     visit: ([WalkedNode]) async throws -> Void) async throws {
        var level = [root]
        var depth = 0
        while !level.isEmpty {
            let listChildren = maxDepth.map { depth < $0 } ?? true
            // Per node: children (which also gives its stat) or exists at the depth limit, then data and ACL.
            var ops: [Operation] = []
            ops.reserveCapacity(level.count * (1 + (data ? 1 : 0) + (acl ? 1 : 0)))
            for path in level {
                ops.append(listChildren ? .children(path) : .exists(path))
                if data { ops.append(.get(path)) }
                if acl { ops.append(.getACL(path)) }
            }
            let results = await pipeline(ops, maxInFlight: maxInFlight)
            let stride = 1 + (data ? 1 : 0) + (acl ? 1 : 0)
            var nodes: [WalkedNode] = []
            nodes.reserveCapacity(level.count)
            var next: [String] = []
            for (i, path) in level.enumerated() {
                var cursor = i * stride
                func take() throws -> OperationResult? {
                    defer { cursor += 1 }
                    switch results[cursor] {
                    case .success(let r): return r
                    case .failure(let e) where e.code == .noNode: return nil
                    case .failure(let e): throw e
                    }
                }
                guard let first = try take(), let stat = first.stat else { continue }
                let children = (first.children ?? []).sorted()
                var node = WalkedNode(path: path, depth: depth, stat: stat, children: children)
                if data { guard let r = try take() else { continue }; node.data = r.data }
                if acl { guard let r = try take() else { continue }; node.acl = r.acl }
                nodes.append(node)
                for child in children {
                    let childPath = PathRules.join(path, child)
                    if !exclude(childPath) { next.append(childPath) }
                }
            }
            try await visit(nodes)
            level = next
            depth += 1
        }
    }
}
