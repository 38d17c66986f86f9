import FoundationEssentials
import ZooKeeper

// MARK: - The semaphore recipe

/// A counting semaphore with Apache Curator's InterProcessSemaphoreV2 layout: at most
/// `maxLeases` holders at once, zkctl and Curator holders counted together.
///
/// Under the semaphore's node `directory`:
/// - `locks`: an InterProcessMutex (`CuratorMutex`) that admits one acquirer at a time;
/// - `leases`: one ephemeral sequential node `_c_<uuid>-lease-<seq>` per lease, held or wanted.
///
/// To acquire: take the mutex, create our lease node, and wait (watching `leases`) until
/// `leases` has at most `maxLeases` children; then release the mutex and keep the lease node.
/// Returning a lease deletes its node. As in Curator, every child of `leases` counts.
public struct CuratorSemaphore: Sendable {
    public let directory: String
    public let maxLeases: Int
    public let acl: [ACL]
    /// What our nodes hold (for people reading the tree: who holds them).
    public let data: Data

    public init(directory: String, maxLeases: Int, acl: [ACL], data: Data) {
        self.directory = directory
        self.maxLeases = maxLeases
        self.acl = acl
        self.data = data
    }

    public var locksPath: String { PathRules.join(directory, "locks") }
    public var leasesPath: String { PathRules.join(directory, "leases") }
    static let leaseMarker = "-lease-"

    /// Waits until this process holds a lease and returns the lease node's path. Without a
    /// deadline it waits for ever; past the deadline it removes its nodes and throws
    /// `LockWaitTimeout`. `waiting` hears of each wait (what is watched and how many are ahead,
    /// or for leases how many are held).
    public func acquire(on zk: ZooKeeperClient, deadline: ContinuousClock.Instant?,
                        waiting: @Sendable (String, Int) -> Void) async throws -> String {
        let mutex = CuratorMutex(directory: locksPath, acl: acl, data: data)
        let lockNode = try await mutex.acquire(on: zk, deadline: deadline, waiting: waiting)
        var lease: String?
        do {
            let prefix = "_c_\(UUID().uuidString.lowercased())\(Self.leaseMarker)"
            var node = try await createLease(zk, prefix: prefix)
            lease = node
            while true {
                let wake = OneShot<WaitEnd>()
                let children = try await zk.children(leasesPath) { event in
                    wake.resume(event.kind == .sessionEnded ? .sessionEnded : .changed)
                }.children
                guard children.contains(lastSegment(node)) else {
                    // Our lease node is gone (someone deleted it): ask again.
                    node = try await createLease(zk, prefix: prefix)
                    lease = node
                    continue
                }
                if children.count <= maxLeases { break }
                if let deadline, ContinuousClock.now >= deadline { throw LockWaitTimeout() }
                waiting(leasesPath, children.count - 1)
                let end = if let deadline { await wake.wait(until: deadline) { .timedOut } } else { await wake.wait() }
                switch end {
                case .changed:
                    continue
                case .timedOut:
                    throw LockWaitTimeout()
                case .sessionEnded:
                    throw ZooKeeperError(zk.state == .expired ? .sessionExpired : .closing, path: leasesPath,
                                         message: "the session ended while waiting for a lease")
                }
            }
        } catch {
            if zk.state.isConnected {
                if let lease { try? await zk.delete(lease) }
                try? await mutex.release(lockNode, on: zk)
            }
            throw error
        }
        try await mutex.release(lockNode, on: zk)
        return lease!
    }

    /// Returns the lease held as `node`: deletes it, which wakes a waiter. A node already gone
    /// is no error.
    public func release(_ node: String, on zk: ZooKeeperClient) async throws {
        do {
            try await zk.delete(node)
        } catch ZooKeeperError.Code.noNode {
        }
    }

    private enum WaitEnd: Sendable { case changed, timedOut, sessionEnded }

    /// Creates our ephemeral sequential lease node, creating `leases` (a container, as Curator's
    /// creatingParentContainersIfNeeded does) when missing. A create whose answer was lost is
    /// settled by looking for our prefix.
    private func createLease(_ zk: ZooKeeperClient, prefix: String) async throws -> String {
        try await createProtectedSequential(zk, under: leasesPath, prefix: prefix, data: data, acl: acl) {
            do {
                _ = try await zk.create(leasesPath, mode: .container, acl: acl)
            } catch ZooKeeperError.Code.nodeExists {
            }
        }
    }

    private func lastSegment(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}
