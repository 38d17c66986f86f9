import CZooKeeper
import FoundationEssentials

extension ZooKeeperClient {
    /// Changes the ensemble's membership (`zoo_areconfig`): incrementally, with the servers
    /// `joining` (`server.N=host:quorum:election[:role];[host:]clientport` each) and the ids
    /// `leaving`, or as a whole new membership `members` (the same lines). `version` is the
    /// configuration version the change is meant for (`version=` of `/zookeeper/config`, a
    /// zxid); -1 for any. Returns the new configuration as `/zookeeper/config` shows it.
    ///
    /// The server must have `reconfigEnabled=true` (else `reconfigDisabled`), and the session
    /// must be allowed to write `/zookeeper/config` (a superuser, or `skipACL`; else
    /// `notAuthorized`). A write: it is sent once and never retried.
    public func reconfig(joining: [String] = [], leaving: [String] = [], members: [String]? = nil,
                         version: Int64 = -1) async throws -> (data: Data, stat: Stat) {
        let deadline = ContinuousClock.now + requestTimeout, ms = requestTimeout.milliseconds
        let path = "/zookeeper/config"
        let joiningText = joining.isEmpty ? nil : joining.joined(separator: ",")
        let leavingText = leaving.isEmpty ? nil : leaving.joined(separator: ",")
        let membersText = members.map { $0.joined(separator: ",") }
        let reply = try await start(deadline: deadline, timedOut: {
            Result<OperationResult, ZooKeeperError>.failure(ZooKeeperError(.operationTimeout, path: path, message: "no answer to the reconfig within \(ms) ms"))
        }, reply: { rc, reply in
            rc == ZOK.rawValue ? .success(reply) : .failure(ZooKeeperError(rc: rc, path: path))
        }) { zh, context in
            // The C client serializes the request before it returns: the strings need only live
            // for the call.
            withOptionalCString(joiningText) { j in
                withOptionalCString(leavingText) { l in
                    withOptionalCString(membersText) { m in
                        zoo_areconfig(zh, j, l, m, version, dataCompletion, context)
                    }
                }
            }
        }.wait().get()
        return (reply.data ?? Data(), reply.stat ?? Stat())
    }
}

private func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let text else { return body(nil) }
    return text.withCString { body($0) }
}
