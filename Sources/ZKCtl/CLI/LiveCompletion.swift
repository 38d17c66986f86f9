import ZooKeeper

/// The live half of completion: the values of a completion kind read from the server. The same
/// lookup serves the shell scripts (through the hidden `zkctl __complete KIND PREFIX`) and Tab
/// inside `zkctl shell` (on the shell's session), so both offer the same things.
enum LiveCompletion {
    /// The kinds read from the server, as `__complete` and the scripts name them.
    static let kinds: [CompletionKind] = [.znodePath, .configKey, .serviceName, .lockName]

    /// The kind that `__complete` calls `name` (`znode`, `config-key`, `service`, `lock`).
    static func kind(named name: String) -> CompletionKind? {
        kinds.first { Completions.kindName($0) == name }
    }

    /// Where the names of `kind` live: the children of this znode are its values.
    static func root(of kind: CompletionKind, _ settings: Settings) -> String? {
        switch kind {
        case .configKey: return settings.configRoot.value
        case .serviceName: return settings.servicesRoot.value
        case .lockName: return settings.locksRoot.value
        default: return nil
        }
    }

    /// The names under `kind`'s root that start with `prefix`, sorted; nothing when it cannot be
    /// read. Not for znode paths (see `ShellCommand` and `__complete` for those).
    static func names(_ kind: CompletionKind, prefix: String, settings: Settings, session: ZooKeeperClient) async -> [String] {
        guard let root = root(of: kind, settings), let (names, _) = try? await session.children(root) else { return [] }
        return names.sorted().filter { $0.hasPrefix(prefix) }
    }
}
