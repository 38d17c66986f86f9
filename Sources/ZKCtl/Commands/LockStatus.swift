import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

// `zkctl lock --status NAME`: who holds a lock (mutex, read/write lock or semaphore) and who
// waits, read from the tree.

extension CommandTable {
    /// One contender as `lock --status` shows it.
    struct LockStatusEntry: Sendable {
        var entry: ContenderEntry
        /// lock, read, write, lease or (for a semaphore's mutex) queue.
        var kind: String
        var holds: Bool
    }

    static func showLockStatus(_ inv: Invocation, name: String, directory: String, max: Int?) async throws -> Int32 {
        let zk = try await inv.connect()
        let children: [String]
        do {
            children = try await zk.children(directory).children
        } catch ZooKeeperError.Code.noNode {
            throw CommandError.notFound("no lock '\(name)' (\(directory) does not exist)")
        }
        let all = CuratorMutex.readWrite(directory: directory, acl: [], data: Data(), write: true).markers
        var shown: [LockStatusEntry] = []
        if children.contains("leases") || (children.contains("locks") && CuratorMutex.ordered(children, markers: all).isEmpty) {
            // A semaphore: the leases are held (the newest may still wait for a free one when
            // more than --max exist), the contenders of its mutex queue for a lease.
            let leases = try await contendersOrEmpty(zk, PathRules.join(directory, "leases"), inv: inv, markers: ["-lease-"])
            for (i, e) in leases.enumerated() {
                shown.append(LockStatusEntry(entry: e, kind: "lease", holds: max.map { i < $0 } ?? true))
            }
            let queue = try await contendersOrEmpty(zk, PathRules.join(directory, "locks"), inv: inv, markers: CuratorMutex.lockMarkers)
            // The first of these is taking (or waiting for) a lease; none holds one yet.
            shown += queue.map { LockStatusEntry(entry: $0, kind: "queue", holds: false) }
        } else {
            let entries = try await readContenders(zk, directory: directory, maxInFlight: inv.maxInFlight) {
                CuratorMutex.ordered($0, markers: all)
            }
            var writerAhead = false
            for (i, e) in entries.enumerated() {
                let kind: String
                if CuratorMutex.sequence(ofContender: e.name, markers: ["__WRIT__"]) != nil { kind = "write" }
                else if CuratorMutex.sequence(ofContender: e.name, markers: ["__READ__", "__rlock__"]) != nil { kind = "read" }
                else { kind = "lock" }
                let holds = kind == "read" ? !writerAhead : i == 0
                if kind != "read" { writerAhead = true }
                shown.append(LockStatusEntry(entry: e, kind: kind, holds: holds))
            }
        }
        // The client address behind each session, where a member's connection list names it.
        let clients = await ephemeralOwners(inv, client: zk, sessions: Set(shown.map(\.entry.stat.ephemeralOwner))).owners
            .mapValues(\.client)
        func json(_ s: LockStatusEntry) -> JSONValue {
            .object(JSONObject([("node", .string(s.entry.path)), ("kind", .string(s.kind)), ("data", .string(s.entry.text)),
                                ("session", .string(sessionText(s.entry.stat.ephemeralOwner))),
                                ("client", clients[s.entry.stat.ephemeralOwner].map { .string($0) } ?? .null),
                                ("since", .number(String(s.entry.stat.ctime)))]))
        }
        let holders = shown.filter(\.holds), waiters = shown.filter { !$0.holds }
        let document = JSONValue.object(JSONObject([("name", .string(name)), ("path", .string(directory)),
                                                    ("holders", .array(holders.map(json))), ("waiters", .array(waiters.map(json)))]))
        inv.output.print(Printed(json: document) { out in
            if shown.isEmpty {
                out.note("lock '\(name)' is free: nobody holds it or waits for it")
                return
            }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            out.table(["ROLE", "KIND", "DATA", "SESSION", "CLIENT", "FOR", "NODE"], (holders + waiters).map { s in
                [s.holds ? "holder" : "waiting", s.kind, s.entry.text.isEmpty ? "-" : s.entry.text,
                 sessionText(s.entry.stat.ephemeralOwner), clients[s.entry.stat.ephemeralOwner] ?? "-",
                 ageText(now - s.entry.stat.ctime), s.entry.name]
            })
        })
        return ExitCode.success
    }

    private static func contendersOrEmpty(_ zk: ZooKeeperClient, _ path: String, inv: Invocation, markers: [String]) async throws -> [ContenderEntry] {
        do {
            return try await readContenders(zk, directory: path, maxInFlight: inv.maxInFlight) { CuratorMutex.ordered($0, markers: markers) }
        } catch ZooKeeperError.Code.noNode {
            return []
        }
    }
}
