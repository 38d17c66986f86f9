import FoundationEssentials
import Glibc
import ZooKeeper
import ZooKeeperRecipes

/// `zkctl edit PATH` and `zkctl config edit KEY`: the value in $VISUAL/$EDITOR, written back
/// with compare-and-set.
extension CommandTable {
    // MARK: - edit

    /// The most times the editor is opened for one command (conflicts and invalid JSON).
    static let maxEditRounds = 10

    static let editDescription = """
        The editor is $VISUAL, else $EDITOR, else vi; it is run through sh, so it may carry
        arguments ('code --wait'). The value is put in a private temporary file (mode 0600, in
        $TMPDIR) that is removed afterwards. Once the editor exits 0, the file is written back
        only if it changed, with compare-and-set against the version read: when someone else
        changed the value meanwhile, the editor opens again on the new value (what you wrote is
        not kept; stderr says so), at most \(maxEditRounds) times. Nothing is written when the
        file is unchanged (exit 0) or the editor fails (exit with the editor's exit code).
        """

    static let editCommand = CommandSpec(
        "edit", summary: "edit a znode's data in $VISUAL or $EDITOR",
        description: """
        Opens PATH's data, as it is stored, in an editor and writes the result back.
        \(editDescription)
        Exit 1 when PATH does not exist (or was deleted meanwhile).
        """,
        examples: ["zkctl edit /app/settings", "EDITOR=nano zkctl edit /app/motd", "VISUAL='code --wait' zkctl edit /app/config.yaml"],
        arguments: [pathArgument],
        jsonOutput: #"{"path", "changed", "stat"}: "changed" false when nothing was written; "stat" the node's stat object (man zkctl, OUTPUT) after the write; text output prints nothing"#,
        handler: runEdit)

    static let configEdit = CommandSpec(
        "edit", summary: "edit a key's value (JSON) in $VISUAL or $EDITOR",
        description: """
        Opens KEY's value as indented JSON in an editor and stores the result as compact JSON.
        What you save must be valid JSON: if it is not, the error is shown on stderr and the
        editor opens again on your text (saving it unchanged gives up: exit 65, nothing written).
        A value stored as plain text opens as a JSON string. A value that means the same as
        before (whitespace aside) is not written.
        \(editDescription)
        Exit 1 when KEY does not exist.
        """,
        examples: ["zkctl config edit feature_flags", "EDITOR=vim zkctl config edit db/primary --nested"],
        arguments: [ArgumentSpec("KEY", help: "the config key", completion: .configKey)],
        options: [ConfigWatchOptions.nested.spec],
        jsonOutput: #"{"key", "changed", "value", "version"}: "value" and "version" as stored after the edit"#,
        handler: runConfigEdit)

    /// The editor's command line: $VISUAL, $EDITOR, vi.
    static func editorCommand() -> String {
        let env = ProcessInfo.processInfo.environment
        for name in ["VISUAL", "EDITOR"] {
            if let v = env[name], !v.trimmingBlanks().isEmpty { return v }
        }
        return "vi"
    }

    /// A private temporary file holding `data`; its path. The caller removes it.
    static func privateFile(_ data: Data, suffix: String) throws -> String {
        var template = Array((temporaryDirectory() + "/zkctl-edit-XXXXXX" + suffix).utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count)) }
        guard fd >= 0 else { throw CommandError(ExitCode.cannotCreate, "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o600)
        let ok = data.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        close(fd)
        if !ok {
            unlink(path)
            throw CommandError(ExitCode.cannotCreate, "cannot write the temporary file \(path)")
        }
        return path
    }

    /// Writes `data` to a private file, runs the editor on it and returns what it holds then.
    /// An editor that fails is a `CommandError` with its exit code.
    static func runEditor(_ inv: Invocation, supervisor: ChildSupervisor, data: Data, suffix: String) async throws -> Data {
        let file = try privateFile(data, suffix: suffix)
        defer { unlink(file) }
        let editor = editorCommand()
        let child = try supervisor.spawn(["sh", "-c", editor + " \"$1\"", "sh", file]) { e in
            CommandError(e.exitCode, "cannot run the editor '\(editor)': \(e.description)")
        }
        let end = await child.wait()
        await supervisor.interruptHandled()
        if let signo = inv.interruptSignal { throw CommandError(128 + signo, "interrupted by \(signalName(signo))") }
        guard end == .exited(0) else {
            throw CommandError(end.exitCode == 0 ? 1 : end.exitCode, "the editor '\(editor)' failed (\(end)); nothing was written")
        }
        guard let edited = FileManager.default.contents(atPath: file) else {
            throw CommandError.noInput("cannot read the edited file back (the editor removed it?); nothing was written")
        }
        return edited
    }

    @Sendable static func runEdit(_ inv: Invocation) async throws -> Int32 {
        let path = inv.argument(0)!
        let zk = try await inv.connect()
        let supervisor = ChildSupervisor(inv, grace: defaultGrace)
        var (data, stat) = try await zk.get(path)
        for round in 1...maxEditRounds {
            let edited = try await runEditor(inv, supervisor: supervisor, data: data, suffix: "")
            if edited == data {
                inv.output.note("\(path): no change; nothing was written")
                inv.output.print(Printed.silentInText(json: .object(JSONObject([("path", .string(path)), ("changed", .bool(false)), ("stat", jsonStat(stat))]))))
                return ExitCode.success
            }
            do {
                let written = try await reportingUnknownOutcome({ _ in ("edit \(path)", "zkctl get \(path)") }) {
                    try await zk.set(path, data: edited, version: stat.version)
                }
                inv.output.print(Printed.silentInText(json: .object(JSONObject([("path", .string(path)), ("changed", .bool(true)), ("stat", jsonStat(written))]))))
                return ExitCode.success
            } catch let e as ZooKeeperError where e.code == .badVersion {
                (data, stat) = try await zk.get(path)
                if round < maxEditRounds {
                    inv.output.warn("\(path) was changed by someone else meanwhile (now version \(stat.version)); your edit was not written; opening the new value")
                }
            } catch let e as ZooKeeperError where e.code == .noNode {
                throw CommandError.notFound("\(path): deleted by someone else meanwhile; your edit was not written")
            }
        }
        throw CommandError.conflict("\(path): changed by someone else \(maxEditRounds) times while editing; nothing was written")
    }

    @Sendable static func runConfigEdit(_ inv: Invocation) async throws -> Int32 {
        let key = inv.argument(0)!
        let root = inv.settings.configRoot.value
        let path = try ConfigSupport.path(for: key, root: root, nested: inv[ConfigWatchOptions.nested], command: ["config", "edit"])
        let zk = try await inv.connect()
        let supervisor = ChildSupervisor(inv, grace: defaultGrace)
        func read() async throws -> (JSONValue, Stat) {
            do {
                let (data, stat) = try await zk.get(path)
                return (ConfigSupport.decode(data), stat)
            } catch let e as ZooKeeperError where e.code == .noNode {
                throw CommandError.notFound("config key '\(ConfigSupport.printable(key))' not found (\(path))")
            }
        }
        var (value, stat) = try await read()
        var text = Data((value.pretty() + "\n").utf8)
        var rounds = 0
        while true {
            rounds += 1
            let edited = try await runEditor(inv, supervisor: supervisor, data: text, suffix: ".json")
            let parsed: JSONValue
            do {
                parsed = try JSONValue.parse(edited)
            } catch {
                if edited == text || rounds >= maxEditRounds {
                    throw CommandError.badData("config key '\(ConfigSupport.printable(key))': \(error); nothing was written")
                }
                inv.output.error("config key '\(ConfigSupport.printable(key))': \(error); opening the editor again")
                text = edited
                continue
            }
            if parsed == value {
                inv.output.note("config key '\(ConfigSupport.printable(key))': no change; nothing was written")
                inv.output.print(Printed.silentInText(json: configEditJSON(key, changed: false, value, stat)))
                return ExitCode.success
            }
            let data = ConfigSupport.encode(parsed)
            try ConfigSupport.checkSize(key: key, path: path, data: data, acl: ACL.openUnsafe)
            do {
                let written = try await reportingUnknownOutcome({ _ in ("config edit \(key)", "zkctl config get \(key)") }) {
                    try await zk.set(path, data: data, version: stat.version)
                }
                inv.output.print(Printed.silentInText(json: configEditJSON(key, changed: true, parsed, written)))
                return ExitCode.success
            } catch let e as ZooKeeperError where e.code == .badVersion {
                (value, stat) = try await read()
                text = Data((value.pretty() + "\n").utf8)
                if rounds >= maxEditRounds {
                    throw CommandError.conflict("config key '\(ConfigSupport.printable(key))': changed by someone else \(maxEditRounds) times while editing; nothing was written")
                }
                inv.output.warn("config key '\(ConfigSupport.printable(key))' was changed by someone else meanwhile (now version \(stat.version)); your edit was not written; opening the new value")
            } catch let e as ZooKeeperError where e.code == .noNode {
                throw CommandError.notFound("config key '\(ConfigSupport.printable(key))': deleted by someone else meanwhile; your edit was not written")
            }
        }
    }

    static func configEditJSON(_ key: String, changed: Bool, _ value: JSONValue, _ stat: Stat) -> JSONValue {
        .object(JSONObject([("key", .string(key)), ("changed", .bool(changed)), ("value", value), ("version", .int(Int(stat.version)))]))
    }
}
