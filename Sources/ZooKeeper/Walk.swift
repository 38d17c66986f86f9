import FoundationEssentials
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
    /// The most nodes `walk` hands to one `visit` call.
    public static let walkChunkSize = 2048

    /// Walks the subtree at `root` breadth-first, each level in chunks of at most `chunkSize`
    /// nodes whose requests are pipelined. `visit` gets the nodes in order (parents' order,
    /// children sorted by name); every call holds nodes of one depth only, and a level's nodes
    /// all come before the next level's. Nodes that vanish during the walk are left out.
    /// `maxDepth` nil means no limit; 0 visits only the root. `exclude` skips a subtree (for
    /// example `/zookeeper`); an excluded child still appears in its parent's `children`.
    ///
    /// Memory: one chunk of nodes (with their data and ACLs), their child names (with `data`,
    /// about `listBudget` of them at a time: a call then may hold fewer nodes than a chunk), and
    /// the names still to visit, packed (a byte more than the name itself), so a wide tree costs
    /// megabytes, not the size of its data. With `data`, children are listed only for nodes whose
    /// stat says they have some, so a leaf costs one request (two with `acl`).
    ///
    /// A node below the root that this session may not read (`notAuthorized` on its data, its
    /// children or its ACL) is left out with its subtree and handed to `unreadable` with the
    /// error, once, before the chunk it belongs to is visited; the walk goes on with the rest.
    /// Without `unreadable`, or for the root itself, the error ends the walk.
    public func walk(_ root: String, maxDepth: Int? = nil, data: Bool = false, acl: Bool = false,
                     maxInFlight: Int = defaultMaxInFlight, chunkSize: Int = walkChunkSize,
                     exclude: @Sendable (String) -> Bool = { _ in false },
                     unreadable: ((String, ZooKeeperError) async throws -> Void)? = nil,
                     visit: ([WalkedNode]) async throws -> Void) async throws {
        // The root is never skipped: a walk of nothing readable is the caller's error.
        let skip: ((String, ZooKeeperError) async throws -> Void)? = unreadable.map { report in
            { path, error in
                if path == root { throw error }
                try await report(path, error)
            }
        }
        var level = PendingNames()
        level.append(root, parentPath: "")
        var depth = 0
        let chunk = max(1, chunkSize)
        while level.count > 0 {
            let list = maxDepth.map { depth < $0 } ?? true
            var next = PendingNames()
            while true {
                var paths: [String] = []
                while paths.count < chunk, let path = level.next() { paths.append(path) }
                if paths.isEmpty { break }
                let (read, refused) = try await readNodes(paths, depth: depth, list: list, data: data, acl: acl,
                                                          maxInFlight: maxInFlight, skipUnreadable: skip != nil)
                for (path, error) in refused { try await skip?(path, error) }
                // With data, children are listed in a second round, a slice of the chunk at a
                // time so that the names held at once stay near `listBudget`.
                var start = read.startIndex
                while start < read.endIndex {
                    var end = start + 1
                    if data && list {
                        var names = Int(read[start].stat.numChildren)
                        while end < read.endIndex, names + Int(read[end].stat.numChildren) <= Self.listBudget {
                            names += Int(read[end].stat.numChildren)
                            end += 1
                        }
                    } else {
                        end = read.endIndex
                    }
                    var nodes = Array(read[start..<end])
                    if data && list {
                        let refusedLists: [(String, ZooKeeperError)]
                        (nodes, refusedLists) = try await listChildren(nodes, maxInFlight: maxInFlight, skipUnreadable: skip != nil)
                        for (path, error) in refusedLists { try await skip?(path, error) }
                    }
                    for node in nodes {
                        for child in node.children where !exclude(PathRules.join(node.path, child)) {
                            next.append(child, parentPath: node.path)
                        }
                    }
                    try await visit(nodes)
                    start = end
                }
            }
            level = next
            depth += 1
        }
    }

    /// About how many child names a walk with data lists at once.
    static let listBudget = 65_536

    /// Reads the nodes at `paths` (one depth) through the pipeline: their data (whose stat tells
    /// whether there are children to list later) or else their children (whose reply carries the
    /// stat), and the ACL. Missing ones are left out; with `skipUnreadable`, so are those this
    /// session may not read, returned with the error.
    private func readNodes(_ paths: [String], depth: Int, list: Bool, data: Bool, acl: Bool,
                           maxInFlight: Int, skipUnreadable: Bool) async throws -> ([WalkedNode], [(String, ZooKeeperError)]) {
        var ops: [Operation] = []
        let stride = acl ? 2 : 1
        ops.reserveCapacity(paths.count * stride)
        for path in paths {
            ops.append(data ? .get(path) : list ? .children(path) : .exists(path))
            if acl { ops.append(.getACL(path)) }
        }
        let results = await pipeline(ops, maxInFlight: maxInFlight)
        var nodes: [WalkedNode] = []
        var refused: [(String, ZooKeeperError)] = []
        nodes.reserveCapacity(paths.count)
        for (i, path) in paths.enumerated() {
            do {
                guard let first = try Self.found(results[i * stride]), let stat = first.stat else { continue }
                var node = WalkedNode(path: path, depth: depth, stat: stat, children: [])
                if data { node.data = first.data } else { node.children = (first.children ?? []).sorted() }
                if acl {
                    guard let r = try Self.found(results[i * stride + 1]) else { continue }
                    node.acl = r.acl
                }
                nodes.append(node)
            } catch let error as ZooKeeperError where skipUnreadable && error.code == .notAuthorized {
                refused.append((path, error))
            }
        }
        return (nodes, refused)
    }

    /// Lists the children of those of `nodes` whose stat says they have some; nodes that have
    /// gone meanwhile are left out, and with `skipUnreadable` those that may not be listed,
    /// returned with the error.
    private func listChildren(_ nodes: [WalkedNode], maxInFlight: Int,
                              skipUnreadable: Bool) async throws -> ([WalkedNode], [(String, ZooKeeperError)]) {
        var nodes = nodes
        let parents = nodes.indices.filter { nodes[$0].stat.numChildren > 0 }
        if parents.isEmpty { return (nodes, []) }
        let listed = await pipeline(parents.map { Operation.children(nodes[$0].path) }, maxInFlight: maxInFlight)
        var gone = Set<Int>()
        var refused: [(String, ZooKeeperError)] = []
        for (index, result) in zip(parents, listed) {
            do {
                if let r = try Self.found(result) { nodes[index].children = (r.children ?? []).sorted() } else { gone.insert(index) }
            } catch let error as ZooKeeperError where skipUnreadable && error.code == .notAuthorized {
                refused.append((nodes[index].path, error))
                gone.insert(index)
            }
        }
        if !gone.isEmpty { nodes = nodes.indices.filter { !gone.contains($0) }.map { nodes[$0] } }
        return (nodes, refused)
    }

    /// A walk's reply: nil when the node has gone, the error otherwise.
    private static func found(_ result: Result<OperationResult, ZooKeeperError>) throws -> OperationResult? {
        switch result {
        case .success(let r): return r
        case .failure(let e) where e.code == .noNode: return nil
        case .failure(let e): throw e
        }
    }
}

/// The paths a walk has still to visit on one level, packed and read once from the front: each
/// parent's path once with how many of its children follow, and the children's names one after
/// the other in one byte buffer, each ended by a NUL (which ZooKeeper forbids in names). A level of
/// a million short names takes a few megabytes.
struct PendingNames {
    private var parents: [(path: String, count: Int)] = []
    private var bytes: [UInt8] = []
    private(set) var count = 0
    // Read position: the parent, the children of it already read, the next name's first byte.
    private var parent = 0
    private var taken = 0
    private var offset = 0

    /// Adds `name` under `parentPath`; children of one parent must be added together. An empty
    /// `parentPath` makes `name` a whole path (the walk's root).
    mutating func append(_ name: String, parentPath: String) {
        if parents.last?.path == parentPath {
            parents[parents.count - 1].count += 1
        } else {
            parents.append((parentPath, 1))
        }
        bytes.append(contentsOf: name.utf8)
        bytes.append(0)
        count += 1
    }

    /// The next path, in the order appended; nil when all have been read.
    mutating func next() -> String? {
        while parent < parents.count, taken == parents[parent].count { parent += 1; taken = 0 }
        guard parent < parents.count else { return nil }
        let end = bytes[offset...].firstIndex(of: 0)!
        let name = String(decoding: bytes[offset..<end], as: UTF8.self)
        offset = end + 1
        taken += 1
        let base = parents[parent].path
        return base.isEmpty ? name : PathRules.join(base, name)
    }
}
