import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Cuts one ensemble member off from its peers while clients still reach it, with nftables drop
/// rules on the loopback interface (the tests run as root), and heals it again.
///
/// All members listen on 127.0.0.1, so ports alone cannot tell the member's own connections to
/// its peers from theirs to each other. The member's JVM is therefore moved into a cgroup (v2)
/// of its own, and the rules drop: what that cgroup's sockets send to the other members' quorum
/// and election ports or from the member's own ones, what anyone sends to the member's quorum and
/// election ports, and what arrives for that cgroup's sockets from the other members' ports. The
/// client ports are never touched.
///
/// Everything made here is named `zkctl_test_<pid>_<n>` (table) and `zkctl-test-<pid>-<n>`
/// (cgroup): `heal()` (also run by `deinit`) removes both, and `NetworkPartition.removeLeftovers()`
/// removes those of test processes that are gone (a crash), as `scripts/zkserver reap` does.
public final class NetworkPartition: Sendable {
    public let member: Int
    private let table: String
    private let cgroup: String
    private let pid: Int32
    private let state = LockedState(false)  // healed?

    /// Where the cgroup v2 hierarchy is mounted on this machine, and its path as nft names it
    /// (nft resolves cgroup paths below /sys/fs/cgroup).
    static let cgroupRoots: [(mount: String, nftPrefix: String)] = [
        ("/sys/fs/cgroup/unified", "unified/"), ("/sys/fs/cgroup", ""),
    ]

    private static let counter = LockedState(0)

    /// Cuts member `member` of `server` off from the other members.
    public init(_ server: ZooKeeperServer, member: Int) throws {
        precondition(server.isEnsemble, "a partition needs an ensemble")
        self.member = member
        let n = Self.counter.withLock { c -> Int in c += 1; return c }
        let me = ProcessInfo.processInfo.processIdentifier
        table = "zkctl_test_\(me)_\(n)"
        let name = "zkctl-test-\(me)-\(n)"
        guard let root = Self.cgroupRoots.first(where: { FileManager.default.fileExists(atPath: $0.mount + "/cgroup.procs") }) else {
            throw PartitionError("no cgroup v2 hierarchy found (looked in \(Self.cgroupRoots.map(\.mount)))")
        }
        cgroup = root.mount + "/" + name
        let pidText = try String(contentsOf: server.directory.appendingPathComponent("\(member)/pid"), encoding: .utf8)
        guard let pid = Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw PartitionError("member \(member) has no pid file")
        }
        self.pid = pid
        let peers = try Self.peerPorts(server)
        guard let own = peers[member] else { throw PartitionError("member \(member) is not in zoo.cfg") }
        let others = peers.filter { $0.key != member }.flatMap { [$0.value.quorum, $0.value.election] }
        let mine = [own.quorum, own.election]

        try FileManager.default.createDirectory(atPath: cgroup, withIntermediateDirectories: false)
        do {
            try "\(pid)\n".write(toFile: cgroup + "/cgroup.procs", atomically: false, encoding: .utf8)
            let group = "socket cgroupv2 level 1 \"\(root.nftPrefix)\(name)\""
            let set = { (ports: [Int]) in "{ " + ports.map(String.init).joined(separator: ", ") + " }" }
            let script = """
            table inet \(table) {
                chain out {
                    type filter hook output priority 0; policy accept;
                    \(group) tcp dport \(set(others)) drop
                    \(group) tcp sport \(set(mine)) drop
                    tcp dport \(set(mine)) drop
                }
                chain in {
                    type filter hook input priority 0; policy accept;
                    \(group) tcp sport \(set(others)) drop
                }
            }
            """
            try Self.nft(["-f", "-"], input: script)
        } catch {
            removeEverything()
            throw error
        }
    }

    deinit { heal() }

    /// Removes the rules and the cgroup (the member goes back to the root cgroup). Safe to call
    /// more than once.
    public func heal() {
        let first = state.withLock { healed -> Bool in defer { healed = true }; return !healed }
        if first { removeEverything() }
    }

    private func removeEverything() {
        _ = try? Self.nft(["delete", "table", "inet", table])
        Self.removeCgroup(cgroup)
    }

    static func removeCgroup(_ path: String) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let parent = (path as NSString).deletingLastPathComponent
        if let procs = try? String(contentsOfFile: path + "/cgroup.procs", encoding: .utf8) {
            for line in procs.split(separator: "\n") {
                try? "\(line)\n".write(toFile: parent + "/cgroup.procs", atomically: false, encoding: .utf8)
            }
        }
        rmdir(path)
    }

    /// Removes the tables and cgroups of test processes that no longer run.
    public static func removeLeftovers() {
        if let listing = try? nft(["list", "tables"]) {
            for line in listing.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.count == 3, words[2].hasPrefix("zkctl_test_") else { continue }
                let parts = words[2].split(separator: "_")
                if parts.count == 4, let owner = Int32(parts[2]), kill(owner, 0) != 0 {
                    _ = try? nft(["delete", "table", String(words[1]), String(words[2])])
                }
            }
        }
        for root in cgroupRoots {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: root.mount)) ?? [] where name.hasPrefix("zkctl-test-") {
                let parts = name.split(separator: "-")
                if parts.count == 4, let owner = Int32(parts[2]), kill(owner, 0) != 0 { removeCgroup(root.mount + "/" + name) }
            }
        }
    }

    /// Each member's quorum and election ports, from member 1's zoo.cfg.
    static func peerPorts(_ server: ZooKeeperServer) throws -> [Int: (quorum: Int, election: Int)] {
        let config = try String(contentsOf: server.directory.appendingPathComponent("1/zoo.cfg"), encoding: .utf8)
        var out: [Int: (quorum: Int, election: Int)] = [:]
        for line in config.split(separator: "\n") where line.hasPrefix("server.") {
            // server.N=127.0.0.1:QUORUM:ELECTION[:role];127.0.0.1:CLIENT
            let halves = line.split(separator: "=", maxSplits: 1)
            guard halves.count == 2, let id = Int(halves[0].dropFirst("server.".count)) else { continue }
            let fields = halves[1].split(separator: ";")[0].split(separator: ":")
            guard fields.count >= 3, let q = Int(fields[1]), let e = Int(fields[2]) else { continue }
            out[id] = (q, e)
        }
        return out
    }

    @discardableResult
    static func nft(_ args: [String], input: String? = nil) throws -> String {
        let r = try runProcess("nft", args, stdin: input.map { Data($0.utf8) }, timeout: 20)
        guard r.status == 0 else {
            throw PartitionError("nft \(args.joined(separator: " ")) failed (\(r.status)): \(r.stderrText)")
        }
        return r.stdoutText
    }
}

public struct PartitionError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
