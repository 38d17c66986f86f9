import FoundationEssentials
import Glibc
import ZooKeeper

/// `86400s`, `500ms`: a duration as zkctl's parser reads it back (whole seconds when exact).
public func durationText(_ d: Duration) -> String {
    let ms = d.milliseconds
    return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
}

/// Milliseconds since the epoch as ISO 8601 UTC, with milliseconds: `2024-05-01T12:00:00.000Z`.
public func isoTime(_ ms: Int64) -> String {
    isoText(milliseconds: ms)
}

/// An ISO 8601 time as stored (run-once records) in milliseconds since the epoch, for JSON
/// output; nil when it does not parse. With or without fractional seconds, `Z` or an offset.
public func isoMilliseconds(_ text: String) -> Int64? {
    let styles = [Date.ISO8601FormatStyle(includingFractionalSeconds: true), Date.ISO8601FormatStyle()]
    for style in styles {
        if let date = try? style.parse(text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    }
    return nil
}

/// Milliseconds since the epoch, now.
public func nowMilliseconds() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
}

/// This machine's name, without a DNS lookup.
public func localHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Creates an ephemeral sequential child of `parent` named `prefix` + the sequence, Curator's
/// "protected" way: the prefix holds a uuid, so after a connection loss our node is found among
/// the children by it. `makeParent` runs when the parent is missing. When the client could not
/// settle the create itself it has waited a whole timeout already: one more look, not four.
func createProtectedSequential(_ zk: ZooKeeperClient, under parent: String, prefix: String, data: Data, acl: [ACL],
                               makeParent: () async throws -> Void) async throws -> String {
    let base = PathRules.join(parent, prefix)
    var attempts = 0
    while true {
        attempts += 1
        do {
            return try await zk.create(base, data: data, mode: .ephemeralSequential, acl: acl)
        } catch ZooKeeperError.Code.noNode where attempts < 5 {
            try await makeParent()
        } catch let error as ZooKeeperError where error.code.isConnectionProblem && attempts < (error.unknownOutcome == nil ? 5 : 2) {
            // The node may have been created: look for our prefix (the read waits for the reconnect).
            do {
                if let mine = try await zk.children(parent).children.first(where: { $0.hasPrefix(prefix) }) {
                    return PathRules.join(parent, mine)
                }
            } catch ZooKeeperError.Code.noNode {
            }
        }
    }
}
