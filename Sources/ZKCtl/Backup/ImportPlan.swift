import FoundationEssentials
import ZooKeeper

/// A node as it already exists in the target, read before planning.
struct ExistingNode: Sendable, Hashable {
    var data: Data
    var acl: [ACL]
    var version: Int32
    var kind: ZnodeKind
}

/// What `import` does with the existing nodes that differ from the file.
enum ImportConflictPolicy: Sendable {
    /// Stop before writing anything (exit 75).
    case fail
    /// Replace data and ACL with the file's.
    case overwrite
    /// Leave them as they are.
    case skipExisting
}

/// One decision of the plan, in the order it will be carried out.
enum ImportAction: Sendable, Hashable {
    /// Create `path`. `acl` is what it is created with; `finalACL`, when set, replaces it once
    /// every child is in place (the file's ACL would not let this session create children).
    case create(path: String, data: Data, type: BackupNodeType, acl: [ACL], finalACL: [ACL]?)
    /// Change an existing node; `data` nil keeps the data, `acl` nil keeps the ACL.
    case update(path: String, data: Data?, version: Int32, acl: [ACL]?, what: [String])
    case skip(path: String)
    case conflict(path: String, what: [String])
    case remove(path: String, version: Int32)

    var path: String {
        switch self {
        case .create(let p, _, _, _, _), .update(let p, _, _, _, _), .skip(let p), .conflict(let p, _), .remove(let p, _): return p
        }
    }
}

/// What the import will do, decided from the file and the target's state before any write.
struct ImportPlan: Sendable {
    var actions: [ImportAction] = []

    var created: Int { actions.reduce(0) { if case .create = $1 { return $0 + 1 }; return $0 } }
    var updated: Int { actions.reduce(0) { if case .update = $1 { return $0 + 1 }; return $0 } }
    var skipped: Int { actions.reduce(0) { if case .skip = $1 { return $0 + 1 }; return $0 } }
    var removed: Int { actions.reduce(0) { if case .remove = $1 { return $0 + 1 }; return $0 } }
    var conflicts: [(path: String, what: [String])] {
        actions.compactMap { if case .conflict(let p, let w) = $0 { return (p, w) }; return nil }
    }
    var changesAnything: Bool { actions.contains { if case .skip = $0 { return false }; if case .conflict = $0 { return false }; return true } }

    /// Decides, node by node. `existing[i]` is the target's state of `nodes[i]` (nil: missing);
    /// `ancestors` are the import root's ancestors that must exist (top first) and whether they
    /// do; `prune` are existing nodes under the root that the file does not hold (deepest first).
    /// `identities` are the ACL ids (`world:anyone`, `digest:user:HASH`) this session holds.
    static func make(nodes: [BackupNode], targetRoot: String, existing: [ExistingNode?],
                     ancestors: [(path: String, exists: Bool)], prune: [(path: String, version: Int32)],
                     policy: ImportConflictPolicy, identities: Set<String>) -> ImportPlan {
        var plan = ImportPlan()
        for a in ancestors where !a.exists {
            plan.actions.append(.create(path: a.path, data: Data(), type: .persistent, acl: ACL.openUnsafe, finalACL: nil))
        }
        // The relative paths that have children, made only when a question needs it.
        var parents: Set<String>? = nil
        func hasChildren(_ rel: String) -> Bool {
            if parents == nil {
                var set = Set<String>()
                for n in nodes { if let p = BackupFormat.relativeParent(n.path) { set.insert(p) } }
                parents = set
            }
            return parents!.contains(rel)
        }
        // Whether the last ACL asked about lets this session create children and set the ACL:
        // nodes mostly share one.
        var lastGrant: (acl: [ACL], grants: Bool)? = nil
        func grantsCreateAdmin(_ acl: [ACL]) -> Bool {
            if let last = lastGrant, last.acl == acl { return last.grants }
            let answer = grants(acl, [.create, .admin], to: identities)
            lastGrant = (acl, answer)
            return answer
        }

        for (i, node) in nodes.enumerated() {
            let path = BackupFormat.absolute(node.path, under: targetRoot)
            guard let have = existing[i] else {
                let acl = node.acl ?? ACL.openUnsafe
                var createACL = acl
                var finalACL: [ACL]? = nil
                if !grantsCreateAdmin(acl), hasChildren(node.path) {
                    createACL = temporaryACL(acl)
                    finalACL = acl
                }
                plan.actions.append(.create(path: path, data: node.data ?? Data(), type: node.type, acl: createACL, finalACL: finalACL))
                continue
            }
            // A node the file only implies: it exists, and that is all that is asked of it.
            guard let data = node.data, let acl = node.acl else {
                plan.actions.append(.skip(path: path))
                continue
            }
            let dataDiffers = have.data != data
            let aclDiffers = !BackupFormat.sameACL(have.acl, acl)
            if !dataDiffers && !aclDiffers {
                plan.actions.append(.skip(path: path))
                continue
            }
            // Left by an import that stopped between creating the node and giving it its ACL.
            if !dataDiffers, hasChildren(node.path), BackupFormat.sameACL(have.acl, temporaryACL(acl)) {
                plan.actions.append(.update(path: path, data: nil, version: have.version, acl: acl, what: ["acl"]))
                continue
            }
            let what = (dataDiffers ? ["data"] : []) + (aclDiffers ? ["acl"] : [])
            switch policy {
            case .fail:
                plan.actions.append(.conflict(path: path, what: what))
            case .skipExisting:
                plan.actions.append(.skip(path: path))
            case .overwrite:
                plan.actions.append(.update(path: path, data: dataDiffers ? data : nil, version: have.version,
                                            acl: aclDiffers ? acl : nil, what: what))
            }
        }
        for p in prune {
            plan.actions.append(.remove(path: p.path, version: p.version))
        }
        return plan
    }

    /// Whether `acl` grants every one of `perms` to one of `identities` (a single entry must
    /// hold them all, or entries together: ZooKeeper checks each permission on its own).
    static func grants(_ acl: [ACL], _ perms: Permissions, to identities: Set<String>) -> Bool {
        var granted: Permissions = []
        for entry in acl where identities.contains("\(entry.scheme):\(entry.id)") {
            granted.formUnion(entry.permissions)
        }
        return granted.isSuperset(of: perms)
    }

    /// The ACL a node is created with while its children are still to come: the file's ACL
    /// with create and admin added for world:anyone (admin so the final ACL can be set).
    static func temporaryACL(_ acl: [ACL]) -> [ACL] {
        var result = acl
        if let i = result.firstIndex(where: { $0.scheme == "world" && $0.id == "anyone" }) {
            result[i].permissions.formUnion([.create, .admin])
        } else {
            result.append(ACL(permissions: [.create, .admin], scheme: "world", id: "anyone"))
        }
        return result
    }

    // MARK: Carrying it out

    /// A unit of writing: one transaction, or requests that cannot go in one (TTL and container
    /// creates, ACL changes) sent pipelined, in order.
    enum Step: Sendable, Hashable {
        case multi([MultiOp])
        case pipelined([Operation])

        var count: Int {
            switch self {
            case .multi(let ops): return ops.count
            case .pipelined(let ops): return ops.count
            }
        }
    }

    /// The writes, in order: creates, data changes and removals in transactions sized under
    /// `limit` (of at most `MultiBatcher.spreadCount` operations when there are several), TTL and
    /// container creates between them (after their parents' transaction, pipelined), and ACL
    /// changes last (so that a restrictive ACL never stops a child's create).
    func steps(limit: Int = ZooKeeperClient.maxPacketSize) -> [Step] {
        var steps: [Step] = []
        var batcher = MultiBatcher(limit: limit)
        var singles: [Operation] = []
        var aclChanges: [Operation] = []

        func flushBatch() {
            if let batch = batcher.finish() { steps.append(.multi(batch)) }
        }
        func flushSingles() {
            if !singles.isEmpty { steps.append(.pipelined(singles)) }
            singles = []
        }
        func add(_ op: MultiOp) {
            flushSingles()
            if let full = batcher.add(op) { steps.append(.multi(full)) }
        }

        for action in actions {
            switch action {
            case .create(let path, let data, let type, let acl, let finalACL):
                if type != .persistent {
                    // TTL nodes cannot go in a multi; containers can, but the 3.8 C client
                    // cannot read the server's answer to one (deserialize_multi asserts).
                    flushBatch()
                    singles.append(.create(path, data: data, mode: type.createMode, acl: acl))
                } else {
                    add(.create(path, data: data, mode: type.createMode, acl: acl))
                }
                if let finalACL { aclChanges.append(.setACL(path, acl: finalACL, version: -1)) }
            case .update(let path, let data, let version, let acl, _):
                if let data { add(.set(path, data: data, version: version)) }
                if let acl { aclChanges.append(.setACL(path, acl: acl, version: -1)) }
            case .remove(let path, let version):
                add(.delete(path, version: version))
            case .skip, .conflict:
                continue
            }
        }
        flushBatch()
        flushSingles()
        if !aclChanges.isEmpty { steps.append(.pipelined(aclChanges)) }
        // An import that is one transaction stays one; one of several goes in smaller ones, faster.
        if steps.count(where: { if case .multi = $0 { true } else { false } }) > 1 {
            steps = steps.flatMap { step -> [Step] in
                guard case .multi(let ops) = step else { return [step] }
                return MultiBatcher.chunks(ops).map { .multi($0) }
            }
        }
        return steps
    }
}

/// The differences between two trees, compared by path relative to each one's root.
enum TreeDiff {
    enum Entry: Sendable, Hashable {
        /// Only in the target.
        case added(String)
        /// Only in the source.
        case removed(String)
        /// In both, but different in what is named (`data`, `acl`, `type`).
        case changed(String, [String])

        var path: String {
            switch self {
            case .added(let p), .removed(let p), .changed(let p, _): return p
            }
        }
    }

    /// `compareTypes` only when both sides are files: a server reports containers and TTL nodes
    /// as plain persistent ones, so a live side never knows.
    static func compare(_ source: [BackupNode], _ target: [BackupNode], compareTypes: Bool = true) -> [Entry] {
        var theirs: [String: BackupNode] = [:]
        theirs.reserveCapacity(target.count)
        for n in target { theirs[n.path] = n }
        var entries: [Entry] = []
        var mine = Set<String>()
        mine.reserveCapacity(source.count)
        for a in source {
            mine.insert(a.path)
            guard let b = theirs[a.path] else { entries.append(.removed(a.path)); continue }
            var what: [String] = []
            if let x = a.data, let y = b.data, x != y { what.append("data") }
            if let x = a.acl, let y = b.acl, !BackupFormat.sameACL(x, y) { what.append("acl") }
            if compareTypes, !a.isImplied, !b.isImplied, a.type != b.type { what.append("type") }
            if !what.isEmpty { entries.append(.changed(a.path, what)) }
        }
        for b in target where !mine.contains(b.path) { entries.append(.added(b.path)) }
        return entries.sorted { BackupFormat.treeOrder($0.path, $1.path) }
    }
}
