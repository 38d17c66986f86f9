import FoundationEssentials
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// `zkctl watch PATH`: a znode's changes as they happen, through the recipes' NodeWatcher.
extension CommandTable {
    // MARK: - watch

    enum WatchOptions {
        static let children = Option<Bool>(flag: "children", help: "also report children appearing and going away")
        static let recursive = Option<Bool>(flag: "recursive", short: "r", help: "follow the whole subtree, with every node's data")
    }

    static let watchCommand = CommandSpec(
        "watch", summary: "print a znode's changes as they happen",
        description: """
        Prints PATH's current state (event 'initial'), then one line per change until interrupted:
        'created', 'changed' (data set, even to the same value) or 'removed'. Text lines read
        'EVENT PATH = DATA' on one line: backslashes in the data are doubled and control characters
        escaped (\\n, \\t, \\x1b); no data for 'removed'.
        --children also follows PATH's children: each one is reported when it appears or goes
        away (without its data). --recursive follows the whole subtree below PATH, every node
        with its data. A PATH that does not exist yet is announced on stderr and waited for.

        ZooKeeper's watches fire once; zkctl arms them again after every event and re-reads what
        it watches, so nothing is missed between two events. The watch survives lost connections
        and server restarts: after reconnecting (with a new session if the old one expired) it
        re-reads everything and reports what changed meanwhile. Ctrl-C ends it (exit 130).

        \(watchExecDescription)
        """,
        examples: ["zkctl watch /app/leader", "zkctl watch --children /services/api", "zkctl -o json watch --recursive /app | jq -c .",
                   "zkctl watch /app/cert --exec -- sh -c 'cat > /etc/app/cert.pem && systemctl reload app'",
                   "zkctl watch --recursive /app --debounce 2s --exec -- ./resync.sh"],
        arguments: [pathArgument],
        options: [
            WatchOptions.children.spec,
            WatchOptions.recursive.spec,
        ] + WatchExecOptions.specs,
        takesCommand: true, commandRequired: false,
        jsonOutput: #"one object per line: {"event": "initial|created|changed|removed", "path", "data", "stat"} ("data" as in 'zkctl get', left out for removed nodes and for children followed with --children; "stat", the stat object (man zkctl, OUTPUT), left out for removed nodes)"#,
        handler: runWatch)

    /// What `watch` follows for its flags.
    static func watchSpec(path: String, children: Bool, recursive: Bool) -> WatchSpec {
        if recursive { return WatchSpec(paths: [path], parents: [path], recursive: true, childData: true) }
        if children { return WatchSpec(paths: [path], parents: [path], recursive: false, childData: false) }
        return WatchSpec(paths: [path])
    }

    /// One `watch` event as a text line.
    static func watchLine(_ change: NodeChange) -> String {
        var line = "\(change.kind.rawValue) \(change.path)"
        if let data = change.data {
            if let text = String(data: data, encoding: .utf8) {
                // One line per event whatever the data holds: backslashes doubled, control
                // characters escaped (a terminal never sees an ESC from a znode).
                line += " = " + Output.oneLine(text.replacingEvery("\\", with: "\\\\"))
            } else {
                line += " = <\(data.count) bytes, not UTF-8; use -o json>"
            }
        }
        return line
    }

    /// One `watch` event as a JSON object.
    static func watchJSON(_ change: NodeChange) -> JSONValue {
        var o = JSONObject([("event", .string(change.kind.rawValue)), ("path", .string(change.path))])
        if let data = change.data { o["data"] = jsonData(data) }
        if let stat = change.stat { o["stat"] = jsonStat(stat) }
        return .object(o)
    }

    @Sendable static func runWatch(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let spec = watchSpec(path: path, children: inv[WatchOptions.children], recursive: inv[WatchOptions.recursive])
        let out = inv.output
        let found = Mutex(false)
        if try watchExecRequested(inv) {
            let found = Shared(false)
            let children = inv[WatchOptions.children] && !inv[WatchOptions.recursive]
            return try await runWatchExec(inv, spec: spec, onReady: {
                if !found.withLock({ $0 }) { out.note("\(path) does not exist yet; waiting") }
            }, seen: { change in
                if change.path == path && change.kind == .initial { found.withLock { $0 = true } }
            }) { change in
                guard let event = execEvent(change, children: children) else { return nil }
                if event == "children" { return ChangeRunner.Change(event: event, path: path, version: "", value: Data()) }
                return ChangeRunner.Change(event: event, path: change.path, version: change.stat.map { String($0.version) } ?? "",
                                           value: change.data ?? Data())
            }
        }
        let watcher = NodeWatcher(spec: spec, maxInFlight: min(inv.maxInFlight, 256),
                                  connect: { try await inv.connect() },
                                  onSession: { event in out.note("watch: \(event)") })
        let end = try await inv.following(spec) {
            try await watcher.run { change in
                if change.path == path && change.kind == .initial { found.withLock { $0 = true } }
                out.print(Printed(json: watchJSON(change), lines: [watchLine(change)]))
                out.flush()
                return .proceed
            } onReady: {
                if !found.withLock({ $0 }) { out.note("\(path) does not exist yet; waiting") }
            }
        }
        // Closed from outside: the runner is ending the command on a signal.
        return end == .stopped ? ExitCode.success : ExitCode.interrupted
    }
}
