import ZooKeeper

extension CommandTable {
    /// Commands for packagers and shells, left out of help.
    static let hiddenCommands: [CommandSpec] = [generateCommand, completeCommand]

    static let generateCommand = CommandSpec(
        "__generate", summary: "write a completion script or the man page to stdout",
        arguments: [ArgumentSpec("WHAT", help: "bash, zsh, fish or man", type: .choice(["bash", "zsh", "fish", "man"]))],
        hidden: true,
        handler: { inv in
            switch inv.argument(0) {
            case "man": inv.output.write(ManPage.render(root))
            case let shell: inv.output.write(completionScript(for: shell ?? ""))
            }
            return ExitCode.success
        })

    static let completeCommand = CommandSpec(
        "__complete", summary: "print live completion candidates; prints nothing when the server cannot be reached",
        arguments: [
            ArgumentSpec("KIND", help: "znode, config-key, service or lock", type: .choice(LiveCompletion.kinds.map(Completions.kindName))),
            ArgumentSpec("PREFIX", help: "what has been typed", optional: true),
        ],
        hidden: true,
        handler: runComplete)

    /// Live values for shell completion: children of the typed parent (znode paths), config keys,
    /// service names or lock names. Never an error: a slow or absent server means no candidates.
    @Sendable static func runComplete(_ inv: Invocation) async throws -> Int32 {
        let prefix = inv.argument(1) ?? ""
        var options = inv.settings.connectOptions
        options.connectTimeout = min(options.connectTimeout, .milliseconds(1500))
        options.requestTimeout = options.connectTimeout
        guard let zk = try? await inv.connect(options) else { return ExitCode.success }
        var candidates: [String] = []
        switch inv.argument(0) {
        case "znode":
            let typed = prefix.isEmpty ? "/" : prefix
            let parent = typed.hasSuffix("/") ? String(typed.dropLast()) : (PathRules.parent(of: typed) ?? "/")
            let base = parent.isEmpty ? "/" : parent
            if let (names, _) = try? await zk.children(base) {
                candidates = names.sorted().map { PathRules.join(base, $0) }.filter { $0.hasPrefix(typed) || typed == "/" }
                // A single match with children: offer it with a slash to descend.
                if candidates.count == 1, let stat = try? await zk.exists(candidates[0]), stat.numChildren > 0 {
                    candidates = [candidates[0] + "/"]
                }
            }
        case let name:
            guard let kind = name.flatMap(LiveCompletion.kind(named:)) else { break }
            candidates = await LiveCompletion.names(kind, prefix: prefix, settings: inv.settings, session: zk)
        }
        for c in candidates { inv.output.line(c) }
        return ExitCode.success
    }
}
