import ZooKeeper

extension CommandTable {
    /// `--skip-unreadable`, shared by the commands that walk a subtree (tree, export, diff,
    /// delete -r, acl set -r).
    static let skipUnreadableOption = Option<Bool>(
        flag: "skip-unreadable",
        help: "skip nodes this session may not read with a warning instead of exit 77")

    /// The sentence every walking command's description carries about unreadable nodes.
    static let unreadableDescription = """
        A node whose ACL refuses this session reading it is skipped with its subtree and named on
        stderr ('zkctl: PATH: not authorized, skipped'); the rest is done and the command exits 77
        at the end. With --skip-unreadable those lines are warnings and the exit code is what it
        would be otherwise. An unreadable PATH itself is exit 77 at once.
        """
}

/// The nodes a walk had to leave out because this session may not read them: each is named on
/// stderr as it is met; at the end, exit 77 unless `--skip-unreadable` was given.
final class UnreadableNodes {
    private let output: Output
    let warnOnly: Bool
    private(set) var paths: [String] = []
    private var seen = Set<String>()

    init(_ inv: Invocation) {
        output = inv.output
        warnOnly = inv[CommandTable.skipUnreadableOption]
    }

    var isEmpty: Bool { paths.isEmpty }
    var count: Int { paths.count }

    /// For `walk(unreadable:)`.
    func record(_ path: String, _ error: ZooKeeperError) {
        // A walk done again (delete -r after a change) meets the same nodes again.
        guard seen.insert(path).inserted else { return }
        paths.append(path)
        if warnOnly {
            output.warn("\(path): not authorized, skipped")
        } else {
            output.error("\(path): not authorized, skipped")
        }
    }

    /// Whether `path` is one of the skipped nodes or lies under one.
    func covers(_ path: String) -> Bool {
        paths.contains { path == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }
    }

    /// The command's exit code: `code`, or 77 when nodes were skipped without `--skip-unreadable`.
    func exitCode(_ code: Int32) -> Int32 {
        paths.isEmpty || warnOnly ? code : ExitCode.notAuthorized
    }

    /// "N unreadable node(s)".
    var summary: String { "\(paths.count) unreadable node\(paths.count == 1 ? "" : "s")" }
}
