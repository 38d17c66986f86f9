import FoundationEssentials
import ZooKeeper
import ZooKeeperRecipes

// `zkctl elect`: run a command only while this process is the leader, in Apache Curator's
// LeaderLatch layout; `elect NAME --status` shows the leader and the candidates.

extension CommandTable {
    static let electionCommands: [CommandSpec] = [electCommand]

    enum ElectOptions {
        static let id = Option<String?>("id", value: "ID", help: "the participant id written in our node, which Curator's getLeader() shows (default host:pid)")
        static let status = Option<Bool>(flag: "status", help: "show the leader and the candidates instead of running anything")
    }

    static let electCommand = CommandSpec(
        "elect", summary: "run a command only while this process is the elected leader",
        description: """
        Joins the leader election NAME under the elections root (default /elections) and runs
        CMD once this process is the leader, for as long as it stays the leader; when CMD exits
        zkctl leaves the election (the next candidate becomes leader) and exits with CMD's exit
        code (128+N when signal N ended it; 127 when CMD is not found).

        The election is Apache Curator's LeaderLatch recipe: each participant creates an
        ephemeral sequential node <elections-root>/NAME/_c_<uuid>-latch-<seq> holding its id
        (--id, default host:pid; Curator's Participant.getId() shows it), and the participant
        whose node has the lowest sequence number is the leader; every other one watches only the
        node just ahead of it. So zkctl and Curator LeaderLatch participants of the same path
        elect one leader among them.

        Leadership ends by the lease rule of 'zkctl help lock': while CMD runs zkctl asks the
        servers for a sign of life every T/10, and once they have not answered for 2/3 T - grace
        (T the session timeout), CMD gets SIGTERM, SIGKILL at 2/3 T, and zkctl exits 75, so CMD
        is dead before the session could expire and another participant take over. The same
        happens when the session expires or our node is deleted. Signals reach CMD as for lock
        (see 'zkctl help lock'). --wait bounds the wait for leadership (exit 75 when it passes).

        CMD inherits stdin, stdout and stderr and finds its node in ZKCTL_ELECTION_PATH.

        --status prints the participants in order, the leader first, with their id (the node's
        data), session and how long they have been candidates; exit 1 when the election's node
        does not exist.
        """,
        examples: [
            "zkctl elect scheduler -- ./run-scheduler.sh",
            "zkctl elect scheduler --id \"$(hostname)\" --wait 1m -- ./run-scheduler.sh",
            "zkctl elect scheduler --status",
        ],
        arguments: [ArgumentSpec("NAME", help: "the election's name under the elections root (may contain '/')")],
        options: [
            ElectOptions.id.spec,
            ElectOptions.status.spec,
            LockOptions.wait.spec,
            graceOption.spec,
            Common.aclOption.spec,
        ],
        takesCommand: true, commandRequired: false,
        jsonOutput: """
        with --status: {"name", "path", "leader": ID or null, "participants": [{"id", "node",
        "leader", "session", "since"}]} (session as a hex string, since in ms since the epoch);
        otherwise nothing: stdout is CMD's
        """,
        handler: runElect)

    @Sendable static func runElect(_ inv: Invocation) async throws -> Int32 {
        let name = inv.argument(0) ?? ""
        let command = inv.command
        let directory = try namedPath(root: inv.settings.electionsRoot.value, name: name, what: "election name", command: ["elect"])
        if inv[ElectOptions.status] {
            guard command.isEmpty else {
                throw UsageError("--status runs nothing; drop '-- \(command.joined(separator: " "))'", command: ["elect"])
            }
            return try await showElection(inv, name: name, directory: directory)
        }
        guard !command.isEmpty else {
            throw UsageError("missing '-- CMD [ARGS...]', the command to run while leader (or --status)", command: ["elect"])
        }
        let id = inv[ElectOptions.id] ?? lockHolderIdentity()
        if id.isEmpty { throw UsageError("bad --id '': it must not be empty", command: ["elect"]) }
        let acl = try Common.acl(for: inv)
        let requested = try leaseTerms(inv, sessionTimeout: inv.settings.connectOptions.sessionTimeout, command: ["elect"])
        let supervisor = ChildSupervisor(inv, grace: requested.grace)
        let latch = CuratorMutex(directory: directory, acl: acl, data: Data(id.utf8), markers: CuratorMutex.latchMarkers)
        return try await holdLock(inv, name: name, recipe: .mutex(latch), wait: inv[LockOptions.wait], command: command,
                                  supervisor: supervisor, label: "leadership of '\(name)'",
                                  pathVariable: "ZKCTL_ELECTION_PATH", commandName: "elect")
    }

    static func showElection(_ inv: Invocation, name: String, directory: String) async throws -> Int32 {
        let zk = try await inv.connect()
        let entries: [ContenderEntry]
        do {
            entries = try await readContenders(zk, directory: directory, maxInFlight: inv.maxInFlight) {
                CuratorMutex.ordered($0, markers: CuratorMutex.latchMarkers)
            }
        } catch ZooKeeperError.Code.noNode {
            throw CommandError.notFound("no election '\(name)' (\(directory) does not exist)")
        }
        let leader = entries.first.map { $0.text }
        let participants: [JSONValue] = entries.enumerated().map { index, e in
            .object(JSONObject([("id", .string(e.text)), ("node", .string(e.path)), ("leader", .bool(index == 0)),
                                ("session", .string(sessionText(e.stat.ephemeralOwner))), ("since", .number(String(e.stat.ctime)))]))
        }
        let json = JSONValue.object(JSONObject([("name", .string(name)), ("path", .string(directory)),
                                                ("leader", leader.map { .string($0) } ?? .null), ("participants", .array(participants))]))
        inv.output.print(Printed(json: json) { out in
            if entries.isEmpty {
                out.note("election '\(name)' has no participants")
                return
            }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            out.table(["ROLE", "ID", "SESSION", "FOR", "NODE"], entries.enumerated().map { index, e in
                [index == 0 ? "leader" : "candidate", e.text, sessionText(e.stat.ephemeralOwner), ageText(now - e.stat.ctime), e.name]
            })
        })
        return ExitCode.success
    }

    /// One contender node of a lock, semaphore or election, with its data and stat.
    struct ContenderEntry: Sendable {
        var name: String
        var path: String
        var data: Data
        var stat: Stat
        /// The data as text (zkctl writes host:pid, Curator the client's IP address or an id).
        var text: String { String(decoding: data, as: UTF8.self) }
    }

    /// The contenders under `directory` in the order `order` gives (names it does not return are
    /// left out), read pipelined; a node gone meanwhile is left out. A missing directory is
    /// thrown as `.noNode`.
    static func readContenders(_ zk: ZooKeeperClient, directory: String, maxInFlight: Int,
                               order: ([String]) -> [String]) async throws -> [ContenderEntry] {
        let names = order(try await zk.children(directory).children)
        let results = await zk.pipeline(names.map { Operation.get(PathRules.join(directory, $0)) }, maxInFlight: maxInFlight)
        var entries: [ContenderEntry] = []
        for (child, result) in zip(names, results) {
            switch result {
            case .success(let reply):
                entries.append(ContenderEntry(name: child, path: PathRules.join(directory, child), data: reply.data ?? Data(),
                                              stat: reply.stat ?? Stat()))
            case .failure(let error) where error.code == .noNode:
                continue
            case .failure(let error):
                throw error
            }
        }
        return entries
    }

    static func sessionText(_ owner: Int64) -> String { hexText(owner) }

    /// A short age such as 4s, 3m12s, 2h5m, 3d4h.
    static func ageText(_ ms: Int64) -> String {
        let s = max(ms, 0) / 1000
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        if s < 86400 { return "\(s / 3600)h\((s % 3600) / 60)m" }
        return "\(s / 86400)d\((s % 86400) / 3600)h"
    }
}
