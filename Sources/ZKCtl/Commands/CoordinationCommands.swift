@preconcurrency import Dispatch
import FoundationEssentials
import Glibc
import Dispatch
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

// `zkctl lock` and `zkctl run-once`: run a command under a distributed lock, or once per period
// among any number of concurrent invocations.

extension CommandTable {
    static let coordinationCommands: [CommandSpec] = [lockCommand, runOnceCommand] + electionCommands

    static let graceOption = Option<Duration?>(
        duration: "grace",
        help: "how long CMD has to exit after SIGTERM before SIGKILL (default 10s; for lock at most a third of the session timeout)")

    /// The grace of a command that only stops CMD when interrupted.
    static let defaultGrace = Duration.seconds(10)

    // MARK: - lock

    enum LockOptions {
        static let wait = Option<Duration?>(duration: "wait", value: "DURATION", help: "give up (exit 75) when the lock is not acquired within this time; default: wait for ever")
        static let status = Option<Bool>(flag: "status", help: "show the holders and waiters of NAME instead of running anything")
        static let read = Option<Bool>(flag: "read", help: "a shared read lock (Curator's InterProcessReadWriteLock, kazoo's ReadLock)")
        static let write = Option<Bool>(flag: "write", help: "an exclusive write lock of the same read/write lock")
        static let max = Option<Int?>("max", value: "N", range: 1...1_000_000, help: "a semaphore: up to N holders at once (Curator's InterProcessSemaphoreV2)")
    }

    static let lockCommand = CommandSpec(
        "lock", summary: "run a command while holding a distributed lock",
        description: """
        Takes the exclusive lock NAME under the locks root (default /locks), runs CMD while
        holding it, releases it when CMD exits and exits with CMD's exit code (128+N when a
        signal N killed it; 127 when CMD is not found).

        The lock is Apache Curator's InterProcessMutex recipe: each contender creates an
        ephemeral sequential node <locks-root>/NAME/_c_<uuid>-lock-<seq> and waits, watching only
        the contender just ahead of it, until its node is first. Contenders written by kazoo's
        Lock (<hex>__lock__<seq>) are honoured too: all contenders are ordered by their
        10-digit sequence number. A kazoo Lock waits for zkctl when it is created with
        extra_lock_patterns=["-lock-"].

        With --max N the lock is a semaphore: up to N holders at once, in the layout of Curator's
        InterProcessSemaphoreV2, so that zkctl and Curator holders together never exceed N. A
        taker first takes the mutex <locks-root>/NAME/locks (the recipe above), then creates an
        ephemeral sequential lease node <locks-root>/NAME/leases/_c_<uuid>-lease-<seq> and
        waits, watching leases, until it has at most N children; then it gives the mutex back
        and holds its lease while CMD runs (the lease rule below applies to it). Give every
        holder of NAME the same N, and do not use NAME without --max too.

        With --read or --write the lock is a read/write lock in the layout of Curator's
        InterProcessReadWriteLock: readers create <locks-root>/NAME/_c_<uuid>-__READ__<seq>,
        writers <locks-root>/NAME/_c_<uuid>-__WRIT__<seq>, all ordered by sequence number. A
        writer holds the lock once it is first; a reader once no writer is ahead of it, so
        readers share it. kazoo's ReadLock and WriteLock contenders (<hex>__rlock__<seq>,
        <hex>__lock__<seq>) are honoured as readers and writers, and a plain mutex contender
        (-lock-) there counts as a writer. kazoo's ReadLock and WriteLock wait for zkctl's and
        Curator's nodes when created with extra_lock_patterns=["__READ__", "__WRIT__"] (a ReadLock
        needs only "__WRIT__").

        --status NAME (without CMD) lists who holds NAME and who waits, in order: the kind of
        contender (lock, read, write; lease and queue for a semaphore), its node's data (zkctl
        writes host:pid, Curator the client's IP address), its session, the client address of
        that session (from the members' connection lists: cons, or the AdminServer) and how long
        it has been there; with -o json {"name", "path", "holders": [...], "waiters": [...]}. For a
        semaphore, give --max N to tell held leases from one still waiting. Exit 1 when NAME
        does not exist.

        CMD inherits stdin, stdout and stderr and finds its lock node in ZKCTL_LOCK_PATH.

        --wait bounds the wait for the lock (--timeout stays the connect and request
        timeout): when it passes, zkctl removes its contender node and exits 75 without running
        CMD. By default it waits for ever; --wait 0 takes the lock only if it is free.

        CMD runs in zkctl's process group, so a Ctrl-C at the terminal reaches it directly and
        is not passed on again (CMD sees one SIGINT); a SIGINT or SIGTERM sent to zkctl alone
        (kill, systemd) is passed on to CMD once. Once CMD has exited (or was killed after the
        grace period) the lock is released and zkctl exits 130 or 143.

        The lease rule. Once the servers have heard nothing from zkctl for the session timeout
        T (--session-timeout, by default --timeout but at least 4s; the server may grant
        another value, which -v shows), they may expire the session and give the lock to the
        next contender. So while CMD runs, zkctl asks the servers for a sign of life (a sync,
        which goes through the leader) every T/10 (at most 2s), and when none has been answered
        for 2/3 T - grace, CMD gets SIGTERM, and SIGKILL at 2/3 T: CMD is dead a third of the
        session timeout before the session could expire. zkctl then exits 75. The grace
        (--grace) defaults to 10s or T/3, whichever is smaller, and may be at most T/3 (exit 64
        otherwise). With the defaults (T = 10s, grace 3.3s) CMD gets SIGTERM after 3.3s without
        an answer and is dead by 6.7s; with --session-timeout 30s --grace 10s, after 10s and by
        20s. A connection that comes back in time, with the same session, changes nothing.

        If the session expires or the lock node is deleted, CMD is stopped the same way and
        zkctl exits 75: a lock that may be held by someone else is never silently kept.
        """,
        examples: [
            "zkctl lock nightly-backup -- /usr/local/bin/backup.sh --full",
            "zkctl lock --wait 30s deploy -- ./deploy.sh   # exit 75 if busy for 30 s",
            "zkctl lock --wait 0 reindex -- make reindex    # only if nobody holds it",
            "zkctl lock --max 3 crawler -- ./crawl.sh       # at most 3 at once",
            "zkctl lock --read catalog -- ./export.sh       # shared with other readers",
            "zkctl lock --status deploy",
            "zkctl lock db-migrate -- sh -c 'echo \"holding $ZKCTL_LOCK_PATH\"; ./migrate'",
        ],
        arguments: [ArgumentSpec("NAME", help: "the lock's name under the locks root (may contain '/')", completion: .lockName)],
        options: [
            LockOptions.wait.spec,
            LockOptions.max.spec,
            LockOptions.read.spec,
            LockOptions.write.spec,
            LockOptions.status.spec,
            graceOption.spec,
            Common.aclOption.spec,
        ],
        takesCommand: true, commandRequired: false,
        jsonOutput: #"with --status: {"name", "path", "holders": [{"node", "kind", "data", "session", "client", "since"}], "waiters": [...]} (session as a hex string; client the session's address as a member's connection list shows it, null when none does; since in ms since the epoch); otherwise nothing: stdout is CMD's"#,
        handler: runLock)

    @Sendable static func runLock(_ inv: Invocation) async throws -> Int32 {
        let name = inv.argument(0) ?? ""
        let command = inv.command
        if inv[LockOptions.status] {
            guard command.isEmpty else {
                throw UsageError("--status runs nothing; drop '-- \(command.joined(separator: " "))'", command: ["lock"])
            }
            let directory = try namedPath(root: inv.settings.locksRoot.value, name: name, what: "lock name", command: ["lock"])
            return try await showLockStatus(inv, name: name, directory: directory, max: inv[LockOptions.max])
        }
        guard !command.isEmpty else {
            throw UsageError("missing '-- CMD [ARGS...]', the command to run while holding the lock", command: ["lock"])
        }
        let directory = try namedPath(root: inv.settings.locksRoot.value, name: name, what: "lock name", command: ["lock"])
        let acl = try Common.acl(for: inv)
        let wait = inv[LockOptions.wait]
        // The session timeout asked for; the server's may differ and is checked again once known.
        let requested = try leaseTerms(inv, sessionTimeout: inv.settings.connectOptions.sessionTimeout, command: ["lock"])
        let supervisor = ChildSupervisor(inv, grace: requested.grace)
        let identity = Data(lockHolderIdentity().utf8)
        let recipe: HeldRecipe
        let read = inv[LockOptions.read], write = inv[LockOptions.write]
        if read && write { throw UsageError("give either --read or --write, not both", command: ["lock"]) }
        if (read || write) && inv[LockOptions.max] != nil {
            throw UsageError("--max makes a semaphore; it does not go with --\(read ? "read" : "write")", command: ["lock"])
        }
        if read || write {
            recipe = .mutex(CuratorMutex.readWrite(directory: directory, acl: acl, data: identity, write: write))
        } else if let max = inv[LockOptions.max] {
            recipe = .semaphore(CuratorSemaphore(directory: directory, maxLeases: max, acl: acl, data: identity))
        } else {
            recipe = .mutex(CuratorMutex(directory: directory, acl: acl, data: identity))
        }
        return try await holdLock(inv, name: name, recipe: recipe, wait: wait,
                                  command: command, supervisor: supervisor)
    }

    /// What `lock` holds while CMD runs: one node, whose deletion gives it back.
    enum HeldRecipe: Sendable {
        case mutex(CuratorMutex)
        case semaphore(CuratorSemaphore)

        func acquire(on zk: ZooKeeperClient, deadline: ContinuousClock.Instant?,
                     waiting: @Sendable (String, Int) -> Void) async throws -> String {
            switch self {
            case .mutex(let m): try await m.acquire(on: zk, deadline: deadline, waiting: waiting)
            case .semaphore(let s): try await s.acquire(on: zk, deadline: deadline, waiting: waiting)
            }
        }

        func release(_ node: String, on zk: ZooKeeperClient) async throws {
            switch self {
            case .mutex(let m): try await m.release(node, on: zk)
            case .semaphore(let s): try await s.release(node, on: zk)
            }
        }
    }

    /// Acquires `mutex` (waiting at most `wait`), runs CMD while holding it under the lease rule,
    /// releases it. `label` names what is held in messages ("lock 'NAME'"); CMD finds the held
    /// node in the environment variable `pathVariable`.
    static func holdLock(_ inv: Invocation, name: String, recipe mutex: HeldRecipe, wait: Duration?,
                         command: [String], supervisor: ChildSupervisor,
                         label: String? = nil, pathVariable: String = "ZKCTL_LOCK_PATH", commandName: String = "lock") async throws -> Int32 {
        let label = label ?? "lock '\(name)'"
        let out = inv.output
        let verbose = inv.settings.verbose > 0
        let deadline = wait.map { ContinuousClock.now + $0 }

        // Acquire; an expired session takes our contender node with it, so start again with a
        // new session (the --wait deadline stays).
        var zk = try await inv.connect()
        var node: String
        while true {
            do {
                node = try await mutex.acquire(on: zk, deadline: deadline) { ahead, count in
                    if verbose { out.note("waiting for \(label): \(count) ahead, watching \(ahead)") }
                }
                break
            } catch let error as ZooKeeperError where zk.state == .expired {
                if verbose { out.note("session expired while waiting for \(label) (\(error.message)); starting a new one") }
                zk = try await inv.connect()
            } catch is LockWaitTimeout {
                throw CommandError.conflict("\(label) not acquired within \(wait.map(durationText) ?? "the wait")")
            }
        }
        if verbose { out.note("acquired \(label) as \(node)") }

        // The lease rule with the session timeout the server granted. A fresh answer from the
        // servers (a sync, which goes through the leader) starts the lease before CMD does.
        let terms = try leaseTerms(inv, sessionTimeout: .milliseconds(zk.negotiatedTimeout), command: [commandName], granted: true)
        let heardAt = ContinuousClock.now
        do {
            _ = try await zk.perform(.sync(node))
        } catch {
            throw CommandError.conflict("\(label) acquired, but then \(ExitCode.message(for: error)); CMD was not run")
        }
        if ContinuousClock.now - heardAt >= terms.warnAfter {
            throw CommandError.conflict("\(label) acquired, but the servers took too long to answer after that; CMD was not run")
        }
        if verbose {
            out.note("holding \(label): session timeout \(durationText(terms.sessionTimeout)); if the servers do not answer for "
                     + "\(durationText(terms.warnAfter)), CMD gets SIGTERM (SIGKILL \(durationText(terms.grace)) later)")
        }

        // Hold: watch for anything that means the lock may no longer be ours, then run CMD.
        let monitor = LockLossMonitor(client: zk, node: node, terms: terms, heardAt: heardAt) { _ in
            supervisor.abandon(grace: terms.grace)
        }
        await monitor.start()
        let child: ChildProcess
        do {
            child = try supervisor.spawn(command, extraEnvironment: [pathVariable: node])
        } catch {
            monitor.stop()
            if let reason = monitor.reason {
                throw CommandError.conflict("\(label) lost before CMD started (\(reason)); CMD was not run")
            }
            try? await zk.delete(node)
            throw error
        }
        let end = await child.wait()
        monitor.stop()
        if let reason = monitor.reason {
            throw CommandError.conflict("\(label) lost while CMD ran (\(reason)); CMD was stopped (\(end))")
        }
        // Interrupted: the runner is closing the session, which releases the lock.
        if inv.interruptSignal != nil { return end.exitCode }
        // Release. Should this fail, closing the session (the runner does it next) removes the node.
        do {
            try await mutex.release(node, on: zk)
        } catch {
            if verbose { out.note("releasing \(label): \(ExitCode.message(for: error)); closing the session releases it") }
        }
        if verbose { out.note("released \(label); CMD ended with \(end)") }
        return end.exitCode
    }

    /// The lease rule's numbers (`LeaseTerms`) for a command that holds something on a session
    /// while CMD runs: --grace (or its default) checked against the session timeout. `granted`:
    /// the timeout is the server's, not the one asked for.
    static func leaseTerms(_ inv: Invocation, sessionTimeout: Duration, command: [String], granted: Bool = false) throws -> LeaseTerms {
        let longest = LeaseTerms.longestGrace(sessionTimeout: sessionTimeout)
        guard let given = inv[graceOption] else {
            return LeaseTerms(sessionTimeout: sessionTimeout, grace: LeaseTerms.defaultGrace(sessionTimeout: sessionTimeout))
        }
        guard given <= longest else {
            let whose = granted ? "the session timeout of \(durationText(sessionTimeout)) the server granted" : "a session timeout of \(durationText(sessionTimeout))"
            throw UsageError("--grace \(inv.text(of: graceOption) ?? durationText(given)) leaves no room within \(whose): CMD must be dead "
                             + "\(durationText(sessionTimeout - sessionTimeout / 3)) after the servers stop answering, so --grace may be at most "
                             + "\(durationText(longest)) (or give a longer --session-timeout)", command: command)
        }
        return LeaseTerms(sessionTimeout: sessionTimeout, grace: given)
    }

    /// What a lock node holds: who holds it, for people reading the tree.
    static func lockHolderIdentity() -> String {
        "\(localHostName()):\(getpid())"
    }

    // MARK: - run-once

    enum RunOnceOptions {
        static let every = Option<Duration?>(duration: "every", value: "DURATION", help: "run once per period of this length (24h, 1h, 15m)")
        static let key = Option<String?>("key", value: "K", help: "run once for this key (a single znode name)")
        static let recordFailure = Option<Bool>(flag: "record-failure", help: "record a failed or interrupted run as done too (by default the next invocation runs CMD again)")
        static let reset = Option<Bool>(flag: "reset", help: "forget the record of --key K (or of the current --every period) instead of running anything")
        static let status = Option<Bool>(flag: "status", help: "show the records instead of running anything")
    }

    static let runOnceCommand = CommandSpec(
        "run-once", summary: "run a command once per period (or key) among concurrent invocations",
        description: """
        Among any number of concurrent invocations (for example the same cron job on every
        host), exactly one runs CMD for each period (--every) or key (--key) until it succeeds;
        the others exit 0 without running it and say so on stderr (silenced by -q). The one that
        runs exits with CMD's exit code (128+N when signal N killed it; 130 or 143 when zkctl
        itself got SIGINT or SIGTERM).

        The claim is a persistent node <tasks-root>/NAME/<key> (default root /tasks), created
        only if absent, so no two invocations run CMD for the same key at once. With --every D
        the key is every-<D>-<N> with N = floor(now / D) by the local clock, so schedule the
        job away from period boundaries (cron at 00:05 rather than 00:00 for --every 24h), or
        give an explicit key such as --key $(date +%F).

        Only a run that succeeds counts as done: when CMD exits 0 the node keeps a JSON record
        of the run and later invocations skip it. When CMD fails (a non-zero exit, killed by a
        signal, not found) or the run is interrupted (SIGINT or SIGTERM to zkctl, which are
        passed on to CMD as for lock), zkctl removes its claim, so the next invocation (a CI
        retry, the next cron run in the period) runs CMD again. With --record-failure a failed
        or interrupted run is recorded and counts as done too: its exitCode is the code zkctl
        exited with (130 for a Ctrl-C, whatever CMD did then), with "signal" when a signal
        killed CMD and "interrupted" (and CMD's own code as commandExitCode) when zkctl was
        interrupted.

        The record holds: task, key, period and periodStart (with --every), host, pid, command
        (the program only, never its arguments), start, end and exitCode (null until CMD
        ends), runId; the times are stored as ISO 8601 UTC text. CMD finds the record's path in
        ZKCTL_TASK_PATH and the key in ZKCTL_TASK_KEY.

        The claim does not depend on the session, so CMD runs on when the servers cannot be
        reached (a partition) or the session expires meanwhile. zkctl then records the run's end
        once they can be reached again, with a new session if need be, trying for up to 5
        minutes (and saying so on stderr), so that a finished run does not look unfinished.

        If the claimer dies while CMD runs (killed outright, the machine lost), the record stays
        unfinished (no end, no exit code) and the task is NOT run again for that period or key
        until the record is forgotten.

        --reset with --key K (or --every D, for the current period) forgets that key's record
        so that the next invocation runs CMD again; it runs nothing, exits 0, or 1 when there
        was no record. An unfinished record is forgotten only when its runner is known to be
        gone (it ran on this host and its pid no longer exists); otherwise --reset exits 75,
        as the run may still be going on (delete the node by hand if you know better).

        --status lists the records of NAME (only the given key with --key or --every) as a
        table, or as a JSON list with -o json; it exits 1 when NAME has no records node.
        """,
        examples: [
            "zkctl run-once nightly-report --every 24h -- /usr/local/bin/report.sh",
            "zkctl run-once migrate --key v42 -- ./migrate.sh   # until it succeeds once",
            "zkctl run-once migrate --key v42 --reset           # let it run again",
            "zkctl run-once nightly-report --status",
            "zkctl -o json run-once nightly-report --status | jq '.[] | select(.exitCode != 0)'",
        ],
        arguments: [ArgumentSpec("NAME", help: "the task's name under the tasks root (may contain '/')")],
        options: [
            RunOnceOptions.every.spec,
            RunOnceOptions.key.spec,
            RunOnceOptions.recordFailure.spec,
            RunOnceOptions.reset.spec,
            RunOnceOptions.status.spec,
            graceOption.spec,
            Common.aclOption.spec,
        ],
        takesCommand: true,
        jsonOutput: #"with --status, a list of records: [{"task", "key", "period", "periodStart", "host", "pid", "command", "start", "end", "exitCode", "runId", "path"}] (start, end and periodStart in ms since the epoch, though the record stores them as ISO 8601 text; end and exitCode null while unfinished; period and periodStart only with --every; with --record-failure also "signal" when a signal killed CMD, "interrupted" and "commandExitCode" when zkctl was interrupted, "error" when CMD could not start); otherwise nothing: stdout is CMD's"#,
        handler: runRunOnce)

    /// Which run a `run-once` invocation is about.
    struct RunOnceKey: Sendable {
        var name: String
        /// For --every: the period's length and index.
        var period: (milliseconds: Int64, index: Int64)?
    }

    static func runOnceKey(_ inv: Invocation, required: Bool) throws -> RunOnceKey? {
        let every = inv[RunOnceOptions.every]
        let key = inv[RunOnceOptions.key]
        if every != nil && key != nil {
            throw UsageError("give either --every or --key, not both", command: ["run-once"])
        }
        if let key {
            guard !key.isEmpty, !key.contains("/"), key != ".", key != "..",
                  PathRules.problem(with: "/" + key) == nil else {
                throw UsageError("bad key '\(key)': it must be a single znode name (no '/')", command: ["run-once"])
            }
            return RunOnceKey(name: key, period: nil)
        }
        if every != nil {
            guard let duration = every, duration.milliseconds > 0 else {
                throw UsageError("bad --every '\(inv.text(of: RunOnceOptions.every) ?? "")': the period must be longer than zero", command: ["run-once"])
            }
            let ms = duration.milliseconds
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let index = now / ms
            return RunOnceKey(name: "every-\(durationText(duration))-\(index)", period: (ms, index))
        }
        if required {
            throw UsageError("give --every DURATION or --key K: which period or key this \(inv[RunOnceOptions.reset] ? "reset forgets" : "run is for")",
                             command: ["run-once"])
        }
        return nil
    }

    @Sendable static func runRunOnce(_ inv: Invocation) async throws -> Int32 {
        let name = inv.argument(0) ?? ""
        let directory = try namedPath(root: inv.settings.tasksRoot.value, name: name, what: "task name", command: ["run-once"])
        let modes = [RunOnceOptions.status, RunOnceOptions.reset].filter { inv[$0] }.map(\.spec.long)
        if modes.count > 1 {
            throw UsageError("give either --status or --reset, not both", command: ["run-once"])
        }
        if let mode = modes.first {
            guard inv.command.isEmpty else {
                throw UsageError("--\(mode) runs nothing; drop '-- \(inv.command.joined(separator: " "))'", command: ["run-once"])
            }
            guard !inv[RunOnceOptions.recordFailure] else {
                throw UsageError("--record-failure is for a run, not for --\(mode)", command: ["run-once"])
            }
            if mode == "status" {
                return try await showRunOnceStatus(inv, name: name, directory: directory, key: try runOnceKey(inv, required: false))
            }
            guard let key = try runOnceKey(inv, required: true) else { return ExitCode.usage }
            return try await resetRunOnce(inv, name: name, directory: directory, key: key)
        }
        guard !inv.command.isEmpty else {
            throw UsageError("missing '-- CMD [ARGS...]', the command to run once", command: ["run-once"])
        }
        guard let key = try runOnceKey(inv, required: true) else { return ExitCode.usage }
        let acl = try Common.acl(for: inv)
        let supervisor = ChildSupervisor(inv, grace: inv[graceOption] ?? defaultGrace)
        return try await runOnce(inv, name: name, directory: directory, key: key, acl: acl, supervisor: supervisor)
    }

    private static func runOnce(_ inv: Invocation, name: String, directory: String, key: RunOnceKey, acl: [ACL],
                                supervisor: ChildSupervisor) async throws -> Int32 {
        let out = inv.output
        let path = PathRules.join(directory, key.name)
        let runID = UUID().uuidString.lowercased()
        let recordFailure = inv[RunOnceOptions.recordFailure]
        let record = RunOnce.record(task: name, key: key.name, period: key.period, command: inv.command[0], runID: runID)

        let zk = try await inv.connect()
        let claim = try await RunOnce.claim(zk, path: path, data: Data(JSONValue.object(record).compact().utf8), acl: acl, runID: runID)
        if case .taken(let other) = claim {
            out.note("'\(name)' already ran for \(key.name)\(describeRun(other)); not running it again")
            return ExitCode.success
        }
        if inv.settings.verbose > 0 { out.note("claimed \(path); running \(inv.command[0])") }

        let writer = RunOnceRecorder(client: zk, path: path, record: record, runID: runID, reconnect: { try await inv.connect() },
                                     describe: { ExitCode.reason(for: $0) }, warn: { inv.output.warn($0) },
                                     note: { inv.output.note($0) })
        /// A failed or interrupted run gives its claim back, unless --record-failure.
        @Sendable func failed(_ extra: JSONObject) async {
            if recordFailure {
                await writer.finish(extra)
            } else {
                await writer.forget()
            }
        }
        @Sendable func interrupted(_ signo: Int32, _ end: ChildTermination?) async {
            var extra = JSONObject()
            extra["exitCode"] = .int(Int(128 + signo))
            extra["interrupted"] = .string(signalName(signo))
            extra["commandExitCode"] = end.map { .int(Int($0.exitCode)) } ?? .null
            if case .signaled(let killer)? = end { extra["signal"] = .string(signalName(killer)) }
            await failed(extra)
        }
        supervisor.afterInterrupt { end in
            // The session must stay open until this is done: the runner closes it afterwards.
            // Bounded by twice the request timeout.
            blocking(within: inv.settings.timeout.value * 2) { await interrupted(inv.interruptSignal ?? SIGTERM, end) }
        }
        let child: ChildProcess
        do {
            child = try supervisor.spawn(inv.command, extraEnvironment: ["ZKCTL_TASK_PATH": path, "ZKCTL_TASK_KEY": key.name])
        } catch let error as CommandError {
            // Interrupted: the interrupt hook concludes the run (unless the interrupt came
            // before it was set); the runner closes the session once it has.
            await supervisor.interruptHandled()
            if let signo = inv.interruptSignal {
                await interrupted(signo, nil)
            } else {
                var extra = JSONObject()
                extra["exitCode"] = .int(Int(error.exitCode))
                extra["error"] = .string(error.message)
                await failed(extra)
            }
            throw error
        }
        let end = await child.wait()
        // A CMD that exits 0 on a Ctrl-C can end before zkctl has taken in the same Ctrl-C:
        // give the signal a moment to be recorded, so that the run does not count as done.
        if end == .exited(0), inv.interruptSignal == nil, SignalPipe.shared.signalArriving() {
            for _ in 0..<100 where inv.interruptSignal == nil {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        // Interrupted: the interrupt hook concludes the run; the session must stay open until it has.
        await supervisor.interruptHandled()
        if let signo = inv.interruptSignal {
            await interrupted(signo, end)
            return end.exitCode
        }
        var extra = JSONObject()
        extra["exitCode"] = .int(Int(end.exitCode))
        if case .signaled(let signo) = end { extra["signal"] = .string(signalName(signo)) }
        if end == .exited(0) {
            await writer.finish(extra)
        } else {
            await failed(extra)
        }
        return end.exitCode
    }

    /// `run-once NAME --key K --reset`: forgets the record so that the next run runs CMD.
    private static func resetRunOnce(_ inv: Invocation, name: String, directory: String, key: RunOnceKey) async throws -> Int32 {
        let zk = try await inv.connect()
        let path = PathRules.join(directory, key.name)
        let nothing = CommandError.notFound("'\(name)' has no record for \(key.name); nothing to forget")
        let existing: (data: Data, stat: Stat)
        do {
            existing = try await zk.get(path)
        } catch ZooKeeperError.Code.noNode {
            throw nothing
        }
        let record = try? JSONValue.parse(existing.data).objectValue
        let unfinished = record.map { $0["end"]?.isNull ?? true } ?? false
        if unfinished, let record, !RunOnce.runnerIsGone(record) {
            throw CommandError.conflict("'\(name)' is still running for \(key.name)\(describeRun(record)), or its runner "
                                        + "died elsewhere; not forgetting it (delete \(path) if you know it is not running)")
        }
        do {
            try await zk.delete(path, version: existing.stat.version)
        } catch ZooKeeperError.Code.noNode {
            throw nothing
        } catch ZooKeeperError.Code.badVersion {
            throw CommandError.conflict("\(path) changed while being forgotten; look at it again (run-once \(name) --status)")
        }
        inv.output.note("forgot '\(name)' for \(key.name)\(describeRun(record)); the next run runs it")
        return ExitCode.success
    }

    /// ` by HOST at START (exit N)` for the skip message.
    static func describeRun(_ record: JSONObject?) -> String {
        guard let record else { return "" }
        var text = ""
        if let host = record["host"]?.stringValue { text += " on \(host)" }
        if let start = record["start"]?.stringValue { text += " at \(start)" }
        if let code = record["exitCode"]?.intValue {
            text += " (exit \(code))"
        } else if record["end"]?.isNull ?? true {
            text += " (not finished: still running, or its runner died)"
        }
        return text
    }

    private static func showRunOnceStatus(_ inv: Invocation, name: String, directory: String, key: RunOnceKey?) async throws -> Int32 {
        let zk = try await inv.connect()
        let out = inv.output
        var names: [String]
        do {
            names = try await zk.children(directory).children.sorted()
        } catch ZooKeeperError.Code.noNode {
            throw CommandError.notFound("no run-once records for '\(name)' (\(directory) does not exist)")
        }
        if let key { names = names.filter { $0 == key.name } }
        let results = await zk.pipeline(names.map { Operation.get(PathRules.join(directory, $0)) }, maxInFlight: inv.maxInFlight)
        var records: [(key: String, record: JSONObject)] = []
        for (child, result) in zip(names, results) {
            switch result {
            case .success(let reply):
                var object = (try? JSONValue.parse(reply.data ?? Data()).objectValue) ?? JSONObject()
                object["key"] = .string(child)
                object["path"] = .string(PathRules.join(directory, child))
                records.append((child, object))
            case .failure(let error) where error.code == .noNode:
                continue
            case .failure(let error):
                throw error
            }
        }
        records.sort { a, b in
            let sa = a.record["start"]?.stringValue ?? "", sb = b.record["start"]?.stringValue ?? ""
            return sa == sb ? a.key < b.key : sa < sb
        }
        out.print(Printed(json: .array(records.map { runOnceRecordJSON($0.record) })) { out in
            if records.isEmpty {
                out.note("no run-once records for '\(name)'\(key.map { " and key \($0.name)" } ?? "")")
                return
            }
            func text(_ v: JSONValue?) -> String {
                switch v {
                case .string(let s)?: return s
                case .number(let n)?: return n
                case .bool(let b)?: return String(b)
                default: return "-"
                }
            }
            let rows = records.map { entry -> [String] in
                let r = entry.record
                let finished = !(r["end"]?.isNull ?? true)
                var exit = text(r["exitCode"])
                if let signal = r["interrupted"]?.stringValue { exit += " (\(signal))" }
                return [entry.key, text(r["host"]), text(r["pid"]), text(r["start"]), finished ? text(r["end"]) : "unfinished", exit]
            }
            out.table(["KEY", "HOST", "PID", "START", "END", "EXIT"], rows)
        })
        return ExitCode.success
    }

    /// A record as `run-once --status -o json` shows it: the times the record stores as ISO 8601
    /// text given in ms since the epoch, as every JSON output gives times; a value that does not
    /// parse as a time is shown as stored.
    static func runOnceRecordJSON(_ record: JSONObject) -> JSONValue {
        var shown = record
        for field in ["start", "end", "periodStart"] {
            if let text = shown[field]?.stringValue, let ms = isoMilliseconds(text) { shown[field] = .int(Int(ms)) }
        }
        return .object(shown)
    }

    // MARK: - Shared pieces

    /// Runs `body` for a synchronous caller (an interrupt cleanup), waiting at most `limit`.
    static func blocking(within limit: Duration, _ body: @escaping @Sendable () async -> Void) {
        let semaphore = DispatchSemaphore(value: 0)
        Task {
            await body()
            semaphore.signal()
        }
        _ = semaphore.wait(timeout: .now() + .milliseconds(Int(clamping: limit.milliseconds)))
    }

    /// `<root>/<name>` for a name given on the command line (relative, may contain '/').
    static func namedPath(root: String, name: String, what: String, command: [String]) throws -> String {
        guard !name.isEmpty else { throw UsageError("empty \(what)", command: command) }
        guard !name.hasPrefix("/") else {
            throw UsageError("bad \(what) '\(name)': give a name under the root, not an absolute path", command: command)
        }
        let path = PathRules.join(root, name)
        if let problem = PathRules.problem(with: path) {
            throw UsageError("bad \(what) '\(name)': \(problem)", command: command)
        }
        return path
    }
}

