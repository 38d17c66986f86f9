import FoundationEssentials
import Glibc
import Synchronization
import ZooKeeper

// Run-once: among any number of concurrent invocations, exactly one runs a task for each key.
// The claim is a persistent node created only if absent, holding a JSON record of the run
// (`zkctl run-once` documents its fields); a run that does not count as done gives its claim
// back, so that the next invocation runs the task again.

/// The claim of a run-once key, and what is known of records.
public enum RunOnce {
    /// What `claim` found.
    public enum Claim: Sendable {
        /// The record is ours: this invocation runs the task.
        case ours
        /// Someone else's record is there (its JSON object, nil when it is not one).
        case taken(JSONObject?)
    }

    /// A new run's record, as claimed: `task`, `key`, `period` and `periodStart` (for a key
    /// of a period: its length in ms and its index since the epoch), `host`, `pid`, `command`
    /// (the program only, never its arguments), `start` (ISO 8601 UTC), `end` and `exitCode`
    /// (null until the run ends) and `runId`.
    public static func record(task: String, key: String, period: (milliseconds: Int64, index: Int64)?,
                              command: String, runID: String) -> JSONObject {
        var record = JSONObject()
        record["task"] = .string(task)
        record["key"] = .string(key)
        if let period {
            record["period"] = .string(durationText(.milliseconds(period.milliseconds)))
            record["periodStart"] = .string(isoTime(period.index * period.milliseconds))
        }
        record["host"] = .string(localHostName())
        record["pid"] = .int(Int(getpid()))
        record["command"] = .string(command)
        record["start"] = .string(isoTime(nowMilliseconds()))
        record["end"] = .null
        record["exitCode"] = .null
        record["runId"] = .string(runID)
        return record
    }

    /// Creates the record `data` at `path` (and missing parents) if absent: the claim of a run.
    /// `runID` is the one inside `data`. A connection loss leaves the outcome unknown, so the node is
    /// read back and recognised by its run id.
    public static func claim(_ zk: ZooKeeperClient, path: String, data: Data, acl: [ACL], runID: String) async throws -> Claim {
        var attempts = 0
        while true {
            attempts += 1
            do {
                _ = try await zk.create(path, data: data, mode: .persistent, acl: acl, createParents: true)
                return .ours
            } catch ZooKeeperError.Code.nodeExists {
                return .taken(try await readRecord(zk, path: path))
            } catch let error as ZooKeeperError where error.code.isConnectionProblem && attempts < (error.unknownOutcome == nil ? 5 : 2) {
                // As for a lock's contender: one more look when the client could not settle it.
                do {
                    let existing = try await zk.get(path)
                    let object = try? JSONValue.parse(existing.data).objectValue
                    return object?["runId"]?.stringValue == runID ? .ours : .taken(object)
                } catch ZooKeeperError.Code.noNode {
                    continue
                }
            }
        }
    }

    private static func readRecord(_ zk: ZooKeeperClient, path: String) async throws -> JSONObject? {
        do {
            let data = try await zk.get(path).data
            return try? JSONValue.parse(data).objectValue
        } catch ZooKeeperError.Code.noNode {
            return nil
        }
    }

    /// Whether the runner of an unfinished record is known to be gone: it ran on this host and
    /// no process has its pid.
    public static func runnerIsGone(_ record: JSONObject) -> Bool {
        guard record["host"]?.stringValue == localHostName(), let pid = record["pid"]?.intValue,
              pid > 0, pid != Int(getpid()), let id = pid_t(exactly: pid) else { return false }
        return kill(id, 0) != 0 && errno == ESRCH
    }
}

/// Concludes a run, once: writes its end into its record, or removes the record (the claim)
/// when the run does not count as done.
public final class RunOnceRecorder: Sendable {
    public let client: ZooKeeperClient
    public let path: String
    public let record: JSONObject
    public let runID: String
    private let reconnect: @Sendable () async throws -> ZooKeeperClient
    private let describe: @Sendable (any Error) -> String
    private let warn: @Sendable (String) -> Void
    private let note: @Sendable (String) -> Void
    private let patience: Duration
    private let done = Mutex(false)

    /// - Parameters:
    ///   - client: the session that claimed the record.
    ///   - path, record, runID: the claimed record as created (version 0).
    ///   - reconnect: a new session, should the claiming one expire before the run is concluded.
    ///   - describe: an error's text for a warning.
    ///   - warn: told (one line, no prefix) when the run could not be concluded as asked, or not yet.
    ///   - note: told (one line) when it could after all.
    ///   - patience: how long to keep trying while the servers cannot be reached.
    public init(client: ZooKeeperClient, path: String, record: JSONObject, runID: String,
                reconnect: @escaping @Sendable () async throws -> ZooKeeperClient,
                describe: @escaping @Sendable (any Error) -> String = { "\($0)" },
                warn: @escaping @Sendable (String) -> Void, note: @escaping @Sendable (String) -> Void = { _ in },
                patience: Duration = RunOnceRecorder.defaultPatience) {
        self.client = client
        self.path = path
        self.record = record
        self.runID = runID
        self.reconnect = reconnect
        self.describe = describe
        self.warn = warn
        self.note = note
        self.patience = patience
    }

    /// True for the first caller of `finish` or `forget`.
    private func begin() -> Bool {
        done.withLock { d -> Bool in defer { d = true }; return !d }
    }

    /// Records the run's end (the time and `extra`, such as its exit code): the run counts as done.
    /// When the servers cannot be reached (a partition, the session expired meanwhile), it keeps
    /// trying, with a new session once the old one has expired, for up to `patience`.
    public func finish(_ extra: JSONObject) async {
        guard begin() else { return }
        var updated = record
        updated["end"] = .string(isoTime(nowMilliseconds()))
        for (k, v) in extra { updated[k] = v }
        let data = Data(JSONValue.object(updated).compact().utf8)
        let failure = await persist("record the end of the run") { zk in
            do {
                // Version 0: the record as we created it. Anything else was changed by someone.
                try await zk.set(path, data: data, version: 0)
            } catch ZooKeeperError.Code.badVersion {
                // Ours already, if a reply was lost; someone else's otherwise.
                if let now = try? await zk.get(path), now.data == data { return }
                warn("\(path): changed by someone else while the task ran; its end was not recorded")
            } catch ZooKeeperError.Code.noNode {
                warn("\(path): deleted while the task ran; its end was not recorded")
            }
        }
        if let failure { warn("\(path): recording the end of the run failed (\(failure)); the record stays unfinished") }
    }

    /// How long `finish` and `forget` keep trying while the servers cannot be reached.
    public static let defaultPatience = Duration.seconds(300)

    /// Runs `attempt` until it returns or throws something other than a connection problem or an
    /// expired session, for up to `patience`; after an expiry the next attempt gets a new
    /// session. Nil when done, else why it gave up.
    private func persist(_ what: String, _ attempt: (ZooKeeperClient) async throws -> Void) async -> String? {
        let deadline = ContinuousClock.now + patience
        var zk = client
        var delay = Duration.milliseconds(200)
        var warned = false
        while true {
            do {
                try await attempt(zk)
                if warned { note("\(path): reached the servers again; done") }
                return nil
            } catch let error as ZooKeeperError where error.code.isConnectionProblem || error.code == .sessionExpired {
                guard ContinuousClock.now + delay < deadline else {
                    return "not within \(durationText(patience)): \(describe(error))"
                }
                if !warned {
                    warn("\(path): cannot \(what) yet (\(describe(error))); trying again for up to \(durationText(patience))")
                    warned = true
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
                if zk.state == .expired || zk.state == .closed || error.code == .sessionExpired {
                    if let fresh = try? await reconnect() { zk = fresh }
                }
            } catch {
                return describe(error)
            }
        }
    }

    /// Removes the record if it is still this run's, so that the next invocation runs the task:
    /// the run does not count as done.
    public func forget() async {
        guard begin() else { return }
        let stuck = "the task will not run again for this key until the record is forgotten (--reset)"
        let failure = await persist("remove the claim of the unsuccessful run") { zk in
            for _ in 1...3 {
                do {
                    let now = try await zk.get(path)
                    guard (try? JSONValue.parse(now.data).objectValue)?["runId"]?.stringValue == runID else {
                        warn("\(path): changed by someone else while the task ran; left as it is")
                        return
                    }
                    try await zk.delete(path, version: now.stat.version)
                    return
                } catch ZooKeeperError.Code.noNode {
                    // Gone: deleted by someone, or by us before a lost reply.
                    return
                } catch ZooKeeperError.Code.badVersion {
                    continue
                }
            }
            warn("\(path): changed again and again while the claim was being removed; \(stuck)")
        }
        if let failure { warn("\(path): removing the claim of the unsuccessful run failed (\(failure)); \(stuck)") }
    }
}
