
extension CommandTable {
    // MARK: - completion

    /// The shells `zkctl completion` knows, with the committed file each one's script matches.
    static let completionShells = ["bash", "zsh", "fish"]

    static let completionCommand = CommandSpec(
        "completion", summary: "print the shell completion script for bash, zsh or fish",
        description: """
        Prints the completion script for SHELL to stdout: the same text as the file a package
        installs (completions/zkctl.bash, completions/_zkctl, completions/zkctl.fish), as both
        are written from the one command table. Nothing is sent to a server. To load it:
          bash  source <(zkctl completion bash)   (in ~/.bashrc)
          zsh   source <(zkctl completion zsh)   (in ~/.zshrc, after compinit)
          fish  zkctl completion fish | source   (in ~/.config/fish/config.fish)
        """,
        examples: ["source <(zkctl completion bash)",
                   "zkctl completion zsh > \"${fpath[1]}/_zkctl\"",
                   "zkctl completion fish > ~/.config/fish/completions/zkctl.fish"],
        arguments: [ArgumentSpec("SHELL", help: "bash, zsh or fish", type: .choice(completionShells))],
        jsonOutput: #"the script as text whatever the format: it is meant for a shell"#,
        handler: { inv in
            inv.output.write(completionScript(for: inv.argument(0) ?? ""))
            return ExitCode.success
        })

    /// The script for `shell` ("" for a name the parser would not let through).
    static func completionScript(for shell: String) -> String {
        switch shell {
        case "bash": return Completions.bash(root)
        case "zsh": return Completions.zsh(root)
        case "fish": return Completions.fish(root)
        default: return ""
        }
    }
}
