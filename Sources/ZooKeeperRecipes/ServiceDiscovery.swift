import FoundationEssentials
import ZooKeeper

// Apache Curator's service discovery layout: `<root>/<name>/<id>`, each instance a JSON
// `ServiceInstance` document; the service node is a container.

/// Queries and bulk changes of the instances of one service.
public enum ServiceDiscovery {
    /// Every readable instance of service `name` under `root`, oldest registration first, read
    /// with at most `maxInFlight` requests at once. A missing service node is thrown as
    /// `ZooKeeperError` `.noNode`; a node that vanished meanwhile is left out; one that is not
    /// an instance is left out and told to `skipped` (its path and the `ServiceInstanceError`).
    public static func instances(_ zk: ZooKeeperClient, root: String, name: String, maxInFlight: Int = 64,
                                 skipped: (String, any Error) -> Void = { _, _ in }) async throws -> [(instance: ServiceInstance, stat: Stat)] {
        let servicePath = PathRules.join(root, name)
        let ids = try await zk.children(servicePath).children
        let results = await zk.pipeline(ids.map { Operation.get(PathRules.join(servicePath, $0)) }, maxInFlight: maxInFlight)
        var found: [(instance: ServiceInstance, stat: Stat)] = []
        for (id, result) in zip(ids, results) {
            switch result {
            case .success(let reply):
                do {
                    let instance = try ServiceInstance.parse(reply.data ?? Data(), name: name, id: id)
                    found.append((instance, reply.stat ?? Stat()))
                } catch {
                    skipped(PathRules.join(servicePath, id), error)
                }
            case .failure(let error) where error.code == .noNode:
                continue
            case .failure(let error):
                throw error
            }
        }
        found.sort { a, b in
            let ta = a.instance.registrationTimeUTC ?? 0, tb = b.instance.registrationTimeUTC ?? 0
            return ta != tb ? ta < tb : a.instance.id < b.instance.id
        }
        return found
    }

    /// Deletes instances in `multi` batches under the packet limit. An instance that vanished
    /// meanwhile is dropped from its batch, which is sent again. Returns the ids deleted.
    public static func deleteAll(_ zk: ZooKeeperClient, servicePath: String, ids: [String]) async throws -> [String] {
        // The ids of each transaction, in order.
        var start = 0
        let batches = MultiBatcher.batches(ids.map { MultiOp.delete(PathRules.join(servicePath, $0)) }).map { batch in
            defer { start += batch.count }
            return Array(ids[start..<start + batch.count])
        }
        var removed: [String] = []
        for var batch in batches {
            while !batch.isEmpty {
                do {
                    _ = try await zk.multi(batch.map { .delete(PathRules.join(servicePath, $0)) })
                    removed += batch
                    break
                } catch let error as ZooKeeperError where error.code == .noNode && error.operationIndex != nil {
                    batch.remove(at: error.operationIndex!)
                }
            }
        }
        return removed
    }

    /// Removes a service node left without instances; someone registering meanwhile wins.
    public static func removeIfEmpty(_ zk: ZooKeeperClient, _ servicePath: String) async {
        do {
            if let stat = try await zk.exists(servicePath), stat.numChildren == 0 {
                try await zk.delete(servicePath, version: stat.version)
            }
        } catch {
            // notEmpty, noNode, badVersion: someone else is using it; anything else is harmless.
        }
    }
}

/// Where one instance goes and with which ACL.
public struct ServiceTarget: Sendable {
    /// The services root (Curator's base path), such as `/services`.
    public var root: String
    public var name: String
    public var id: String
    /// The instance node's ACL.
    public var acl: [ACL]
    /// An update sets the instance's ACL too (zkctl: `--acl` was given).
    public var replaceACL: Bool

    public init(root: String, name: String, id: String, acl: [ACL], replaceACL: Bool) {
        self.root = root
        self.name = name
        self.id = id
        self.acl = acl
        self.replaceACL = replaceACL
    }

    /// `<root>/<name>`.
    public var servicePath: String { PathRules.join(root, name) }
    /// `<root>/<name>/<id>`: the instance's node.
    public var path: String { PathRules.join(servicePath, id) }

    /// Writes the instance: creates it (and missing parents), or updates an existing one,
    /// keeping fields other programs added. An ephemeral node of another session with the same
    /// id is replaced, as Curator does: the same id means the same instance. Conflicts with
    /// concurrent writers and connection losses are retried.
    /// Returns the document written.
    public func write(_ registration: ServiceInstance.Registration, with zk: ZooKeeperClient) async throws -> JSONObject {
        let mode: CreateMode = registration.dynamic ? .ephemeral : .persistent
        var attempt = 0
        while true {
            attempt += 1
            do {
                let existing: (data: Data, stat: Stat)?
                do {
                    existing = try await zk.get(path)
                } catch ZooKeeperError.Code.noNode {
                    existing = nil
                }
                if let existing {
                    let old = (try? JSONValue.parse(existing.data))?.objectValue
                    let doc = registration.document(updating: old)
                    let data = Data(JSONValue.object(doc).compact().utf8)
                    let owner = existing.stat.ephemeralOwner
                    let keepsNode = registration.dynamic ? (owner != 0 && owner == zk.sessionID) : owner == 0
                    if keepsNode {
                        try await zk.set(path, data: data, version: existing.stat.version)
                        if replaceACL { try await zk.setACL(path, acl: acl) }
                    } else {
                        _ = try await zk.multi([.delete(path, version: existing.stat.version),
                                                .create(path, data: data, mode: mode, acl: acl)])
                    }
                    return doc
                }
                let doc = registration.document()
                try await ensureServiceNode(zk)
                try await zk.create(path, data: Data(JSONValue.object(doc).compact().utf8), mode: mode, acl: acl)
                return doc
            } catch let error as ZooKeeperError
                where attempt < 5 && [.nodeExists, .noNode, .badVersion].contains(error.code) {
                // (A lost answer is settled by the client itself: an unknown outcome ends here.)
                continue
            }
        }
    }

    /// The root chain as persistent nodes, the service node as a container (removed by the
    /// server once its last instance is gone), all with the open ACL, as Curator creates them.
    public func ensureServiceNode(_ zk: ZooKeeperClient) async throws {
        if try await zk.exists(servicePath) != nil { return }
        if root != "/" { try await zk.createParentChain(root) }
        do {
            try await zk.create(servicePath, mode: .container)
        } catch ZooKeeperError.Code.nodeExists {
        }
    }

    /// Deletes the instance if it is still this session's ephemeral node (someone may have
    /// replaced it), then the service node if it is left empty.
    public func deregisterOwn(with zk: ZooKeeperClient) async throws {
        if let stat = try await zk.exists(path), stat.ephemeralOwner != 0, stat.ephemeralOwner == zk.sessionID {
            try await zk.delete(path, version: stat.version)
        }
        await ServiceDiscovery.removeIfEmpty(zk, servicePath)
    }
}
