import FoundationEssentials
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

// `zkctl config`: one znode per key under the config root (DESIGN.md section 3), each holding
// the compact UTF-8 JSON text of its value. Field paths (`config get database host`) reach into
// a JSON object, which is the layout Confo uses (`--config-root /confo/systemA`).

extension CommandTable {
    static let configCommands: [CommandSpec] = [configCommand]

    static let configCommand = CommandSpec(
        "config", summary: "read and write configuration keys (one znode per key, JSON values)",
        description: """
        Configuration lives under the config root (default /config; --config-root, ZKCTL_CONFIG_ROOT
        or [zkctl] config-root), one znode per key, each holding the compact JSON text of its
        value. A value that is not JSON (written by another program) is shown as a JSON string.
        Field paths reach into JSON objects, so with --config-root /confo/systemA,
        'config get database host' reads the field "host" of /confo/systemA/database (Confo's layout).
        """,
        examples: [
            "zkctl config set feature_flags '{\"new_ui\": true}'",
            "zkctl config get feature_flags",
            "zkctl config list",
            "zkctl config remove old_setting",
            "zkctl config set test_key \"test_value\"",
        ],
        subcommands: [configSet, configGet, configList, configRemove, configWatch, configExport, configImport, configEdit])

    // MARK: set

    enum ConfigSetOptions {
        static let string = Option<Bool>(flag: "string", help: "store VALUE as a JSON string, whatever it looks like")
        static let raw = Option<Bool>(flag: "raw", help: "store the bytes as given, not as JSON")
        static let file = Option<String?>("file", short: "f", value: "FILE", type: .file, help: "read the value from FILE ('-' for stdin)")
        static let merge = Option<String?>("merge", value: "JSON", type: .json, help: "deep-merge this JSON object into the key's object (at FIELD... when given)")
        static let ifVersion = Option<Int?>("if-version", value: "N", range: 0...Int(Int32.max), help: "write only if the key has version N (else exit 75)")
        static let ifAbsent = Option<Bool>(flag: "if-absent", help: "create only; exit 75 if the key exists")
        static let nested = Option<Bool>(flag: "nested", help: "allow '/' in KEY (a/b is a key below a)")
    }

    static let configSet = CommandSpec(
        "set", summary: "set a key, or one field of a key's JSON object",
        description: """
        VALUE is stored as JSON when it is valid JSON (an object, array, string, number, true,
        false or null). Text meant as JSON must parse, or nothing is written and the exit code is
        65: text that starts with {, [ or ", and a single number-like word (1., 01, 1e). Anything
        else is stored as a JSON string: a bare word such as test_value, and also 10.0.0.5, 1.2.3,
        2024-01-01 or two words. --string always stores a string; --raw
        stores the bytes exactly as given, for readers that expect plain text (such as Spring
        Cloud ZooKeeper Config). VALUE '-' or --file F reads the value from stdin or a file;
        text read that way loses one trailing newline unless --raw is given. To store the text
        '-' itself, put '--' before it: 'zkctl config set KEY -- -'.

        With three or more arguments, 'config set KEY FIELD... VALUE' sets one field of the
        key's JSON object, creating the objects between; '--merge JSON' deep-merges an object's
        fields at once (under FIELD... when given). Both read the object, change it and write it
        back only if nobody wrote in between, retrying otherwise, so concurrent writers of
        different fields never lose each other's fields.

        --if-version N writes only if the key still has version N (compare-and-set) and
        --if-absent only if the key does not exist yet; otherwise the exit code is 75. The root
        and missing parents are created. Keys may not be empty, '.', '..', or hold control
        characters or '/' (unless --nested, which makes a/b a key below a). A value larger than
        ZooKeeper's packet limit (about 1 MB) is refused with exit 65.
        """,
        examples: [
            "zkctl config set feature_flags '{\"new_ui\": true}'",
            "zkctl config set test_key \"test_value\"",
            "zkctl config set database host db1.example.com",
            "zkctl config set database pool max 20",
            "zkctl config set database --merge '{\"port\": 5432, \"ssl\": true}'",
            "zkctl config set limits '{\"rps\": 100}' --if-version 3",
            "zkctl config set greeting --raw 'hello world'",
            "zkctl config set big --file ./big.json",
            "echo '[1,2,3]' | zkctl config set list -",
        ],
        arguments: [
            ArgumentSpec("KEY", help: "the key (a znode name under the config root)", completion: .configKey),
            ArgumentSpec("VALUE", help: "the value; with more arguments FIELD... VALUE sets a field ('-' reads stdin)",
                         optional: true, variadic: true),
        ],
        options: [
            ConfigSetOptions.string.spec,
            ConfigSetOptions.raw.spec,
            ConfigSetOptions.file.spec,
            ConfigSetOptions.merge.spec,
            ConfigSetOptions.ifVersion.spec,
            ConfigSetOptions.ifAbsent.spec,
            ConfigSetOptions.nested.spec,
            Common.aclOption.spec,
        ],
        jsonOutput: #"{"key": "k", "version": 3, "created": false}"#,
        handler: runConfigSet)

    @Sendable static func runConfigSet(_ inv: Invocation) async throws -> Int32 {
        let command = ["config", "set"]
        var rest = inv.arguments
        let key = rest.removeFirst()
        let path = try ConfigSupport.path(for: key, root: inv.settings.configRoot.value, nested: inv[ConfigSetOptions.nested], command: command)
        let raw = inv[ConfigSetOptions.raw], forceString = inv[ConfigSetOptions.string]
        let file = inv[ConfigSetOptions.file], mergeText = inv[ConfigSetOptions.merge]
        let ifVersion = inv[ConfigSetOptions.ifVersion].map { Int32($0) }
        let ifAbsent = inv[ConfigSetOptions.ifAbsent]
        if raw && forceString { throw UsageError("--raw and --string cannot be used together", command: command) }
        if ifVersion != nil && ifAbsent { throw UsageError("--if-version and --if-absent cannot be used together", command: command) }
        let acl = try Common.acl(for: inv)

        // Everything is read and checked before the first request.
        var fields: [String] = []
        var change: ConfigSupport.Change
        if let mergeText {
            if file != nil { throw UsageError("--merge takes its value itself; it cannot be used with --file", command: command) }
            if raw || forceString { throw UsageError("--merge merges a JSON object; --raw and --string do not apply", command: command) }
            fields = rest
            let parsed: JSONValue
            do { parsed = try JSONValue.parse(mergeText) } catch {
                throw CommandError.badData("--merge value is not valid JSON: \(error)")
            }
            guard case .object(let object) = parsed else {
                throw CommandError.badData("--merge needs a JSON object, not \(parsed.typePhrase)")
            }
            change = .merge(object)
        } else {
            let input: Data
            let fromArgument: Bool
            if let file {
                fields = rest
                input = try Common.readInput(file)
                fromArgument = false
            } else {
                guard let last = rest.popLast() else { throw UsageError("missing argument VALUE for 'config set'", command: command) }
                fields = rest
                if inv.parsed.isStdin(inv.arguments.count - 1) {
                    input = try Common.readInput("-")
                    fromArgument = false
                } else {
                    input = Data(last.utf8)
                    fromArgument = true
                }
            }
            if raw {
                if !fields.isEmpty { throw UsageError("--raw stores a whole value; it cannot set a field", command: command) }
                change = .replace(.rawBytes(input))
            } else {
                let value = try ConfigSupport.value(from: input, fromArgument: fromArgument, forceString: forceString, what: "value for '\(key)'")
                change = fields.isEmpty ? .replace(.json(value)) : .setField(value)
            }
        }
        let zk = try await inv.connect()
        let shown = ConfigSupport.printable(key)
        let result = try await reportingUnknownOutcome({ _ in ("config set \(shown)", "zkctl config get \(shown)") }) {
            try await ConfigSupport.write(zk, key: key, path: path, fields: fields, change: change,
                                          ifVersion: ifVersion, ifAbsent: ifAbsent, acl: acl)
        }
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("key", .string(key)), ("version", .int(Int(result.version))),
                                                                        ("created", .bool(result.created))]))))
        return ExitCode.success
    }

    // MARK: get

    enum ConfigGetOptions {
        static let defaultValue = Option<String?>("default", value: "VALUE", help: "print VALUE (exit 0) when the key or field is missing")
        static let raw = Option<Bool>(flag: "raw", help: "print a string value without JSON quotes")
        static let stat = Option<Bool>(flag: "stat", help: "add the version and the modification time")
        static let nested = Option<Bool>(flag: "nested", help: "allow '/' in KEY")
    }

    static let configGet = CommandSpec(
        "get", summary: "print a key's value, or a field inside it",
        description: """
        Prints the value as JSON: indented for people, compact with -o json. With FIELD...,
        prints the value at that path inside the key's JSON object (Confo-style layout). A value
        that is not JSON is printed as a JSON string. A missing key (or field) is exit 1 with one
        line on stderr, unless --default gives a value to print instead (parsed like
        'config set' values). --raw prints a string without JSON quotes; --stat adds the
        version and the modification time.
        """,
        examples: [
            "zkctl config get feature_flags",
            "zkctl config get database host --raw",
            "zkctl --config-root /confo/systemA config get database host",
            "zkctl config get timeout_ms --default 3000",
            "zkctl -o json config get feature_flags --stat",
        ],
        arguments: [
            ArgumentSpec("KEY", help: "the key", completion: .configKey),
            ArgumentSpec("FIELD", help: "a field path inside the value's JSON object", optional: true, variadic: true),
        ],
        options: [
            ConfigGetOptions.defaultValue.spec,
            ConfigGetOptions.raw.spec,
            ConfigGetOptions.stat.spec,
            ConfigGetOptions.nested.spec,
        ],
        jsonOutput: #"the value, compact; with --stat {"key", "field" (with FIELD), "value", "version", "modified"} with "modified" in ms since the epoch (both null for a --default value)"#,
        handler: runConfigGet)

    @Sendable static func runConfigGet(_ inv: Invocation) async throws -> Int32 {
        let command = ["config", "get"]
        let key = inv.arguments[0]
        let fields = Array(inv.arguments.dropFirst())
        let path = try ConfigSupport.path(for: key, root: inv.settings.configRoot.value, nested: inv[ConfigGetOptions.nested], command: command)
        let fallback = try inv[ConfigGetOptions.defaultValue].map {
            try ConfigSupport.value(from: Data($0.utf8), fromArgument: true, forceString: false, what: "--default value",
                                    hint: "to use it as text, give it as a JSON string: --default '\(JSONValue.string($0).compact())'")
        }
        let zk = try await inv.connect()
        let out = inv.output
        let raw = inv[ConfigGetOptions.raw], withStat = inv[ConfigGetOptions.stat]

        func show(_ value: JSONValue, stat: Stat?) {
            // --raw prints a string value as it is, in every format when there is no --stat.
            var rawText: String?
            if raw, case .string(let s) = value { rawText = s }
            if withStat {
                var o = JSONObject([("key", .string(key))])
                if !fields.isEmpty { o["field"] = .array(fields.map { .string($0) }) }
                o["value"] = value
                o["version"] = stat.map { .int(Int($0.version)) } ?? .null
                o["modified"] = stat.map { .int(Int($0.mtime)) } ?? .null
                var lines = [rawText ?? value.pretty()]
                if let stat { lines += ["version: \(stat.version)", "modified: \(isoTime(stat.mtime))"] }
                out.print(Printed(json: .object(o), lines: lines))
            } else if let rawText {
                out.print(Printed.plain([rawText]))
            } else {
                out.print(Printed(json: value, lines: [value.pretty()]))
            }
        }

        let data: Data, stat: Stat
        do {
            (data, stat) = try await zk.get(path)
        } catch ZooKeeperError.Code.noNode {
            if let fallback { show(fallback, stat: nil); return ExitCode.success }
            throw CommandError.notFound("config key '\(key)' not found (\(path))")
        }
        let value = ConfigSupport.decode(data)
        if fields.isEmpty {
            show(value, stat: stat)
            return ExitCode.success
        }
        guard let inner = value.value(at: fields) else {
            if let fallback { show(fallback, stat: nil); return ExitCode.success }
            throw CommandError.notFound("config key '\(key)' has no field '\(fields.joined(separator: "."))'")
        }
        show(inner, stat: stat)
        return ExitCode.success
    }

    // MARK: list

    enum ConfigListOptions {
        static let keys = Option<Bool>(flag: "keys", help: "names only")
        static let stat = Option<Bool>(flag: "stat", help: "add each key's version and modification time")
    }

    static let configList = CommandSpec(
        "list", summary: "list every key with its value",
        description: """
        Reads every key under the config root with pipelined requests. Text output is a table
        KEY VALUE with compact JSON values (KEY VERSION MODIFIED VALUE with --stat); JSON output
        is one object {key: value} ({key: {"value", "version", "modified"}} with --stat, an array
        of names with --keys). Nested keys (written with --nested) are listed as a/b. A missing
        root is an empty configuration.
        """,
        examples: ["zkctl config list", "zkctl config list --keys", "zkctl -o json config list | jq .feature_flags"],
        options: [
            ConfigListOptions.keys.spec,
            ConfigListOptions.stat.spec,
        ],
        jsonOutput: #"{"key": value, ...}; with --stat {"key": {"value", "version", "modified"}} with "modified" in ms since the epoch; with --keys ["key", ...]"#,
        handler: runConfigList)

    @Sendable static func runConfigList(_ inv: Invocation) async throws -> Int32 {
        let keysOnly = inv[ConfigListOptions.keys], withStat = inv[ConfigListOptions.stat]
        let zk = try await inv.connect()
        let entries = try await ConfigSupport.readAll(zk, root: inv.settings.configRoot.value, data: !keysOnly, maxInFlight: inv.maxInFlight)
        let out = inv.output
        if keysOnly {
            out.print(Printed(json: .array(entries.map { .string($0.key) }), lines: entries.map(\.key)))
            return ExitCode.success
        }
        func listJSON() -> JSONValue {
            var o = JSONObject()
            for e in entries {
                let value = ConfigSupport.decode(e.data)
                if withStat {
                    o[e.key] = .object(JSONObject([("value", value), ("version", .int(Int(e.stat.version))),
                                                   ("modified", .int(Int(e.stat.mtime)))]))
                } else {
                    o[e.key] = value
                }
            }
            return .object(o)
        }
        out.print(Printed(json: listJSON()) { out in
            guard !entries.isEmpty else { return }
            if withStat {
                out.table(["KEY", "VERSION", "MODIFIED", "VALUE"], entries.map {
                    [$0.key, String($0.stat.version), isoTime($0.stat.mtime), ConfigSupport.decode($0.data).compact()]
                })
            } else {
                out.table(["KEY", "VALUE"], entries.map { [$0.key, ConfigSupport.decode($0.data).compact()] })
            }
        })
        return ExitCode.success
    }

    // MARK: remove

    enum ConfigRemoveOptions {
        static let ignoreMissing = Option<Bool>(flag: "ignore-missing", help: "exit 0 when the key does not exist")
        static let ifVersion = Option<Int?>("if-version", value: "N", range: 0...Int(Int32.max), help: "remove only if the key has version N (else exit 75)")
        static let nested = Option<Bool>(flag: "nested", help: "allow '/' in KEY")
    }

    static let configRemove = CommandSpec(
        "remove", aliases: ["rm", "delete"], summary: "remove a key",
        description: """
        Removes the key's znode. A missing key is exit 1 unless --ignore-missing is given;
        with --if-version N the key is removed only if it still has version N (else exit 75).
        A key that holds nested keys is not removed (exit 75).
        """,
        examples: ["zkctl config remove old_setting", "zkctl config remove old_setting --ignore-missing",
                   "zkctl config remove limits --if-version 4"],
        arguments: [ArgumentSpec("KEY", help: "the key", completion: .configKey)],
        options: [
            ConfigRemoveOptions.ignoreMissing.spec,
            ConfigRemoveOptions.ifVersion.spec,
            ConfigRemoveOptions.nested.spec,
        ],
        jsonOutput: #"{"key": "k", "removed": true}"#,
        handler: runConfigRemove)

    @Sendable static func runConfigRemove(_ inv: Invocation) async throws -> Int32 {
        let key = inv.arguments[0]
        let path = try ConfigSupport.path(for: key, root: inv.settings.configRoot.value, nested: inv[ConfigRemoveOptions.nested], command: ["config", "remove"])
        let version = inv[ConfigRemoveOptions.ifVersion].map { Int32($0) } ?? -1
        let zk = try await inv.connect()
        var removed = true
        let shown = ConfigSupport.printable(key)
        do {
            try await reportingUnknownOutcome({ _ in ("config remove \(shown)", "zkctl config get \(shown)") }) {
                try await zk.delete(path, version: version)
            }
        } catch ZooKeeperError.Code.noNode {
            guard inv[ConfigRemoveOptions.ignoreMissing] else { throw CommandError.notFound("config key '\(key)' not found (\(path))") }
            removed = false
        } catch ZooKeeperError.Code.badVersion {
            throw CommandError.conflict("config key '\(key)' does not have version \(version) (changed by someone else)")
        } catch ZooKeeperError.Code.notEmpty {
            throw CommandError.conflict("config key '\(key)' holds nested keys; remove them first")
        }
        inv.output.print(Printed.silentInText(json: .object(JSONObject([("key", .string(key)), ("removed", .bool(removed))]))))
        return ExitCode.success
    }

    // MARK: watch

    enum ConfigWatchOptions {
        static let once = Option<Bool>(flag: "once", help: "exit 0 after the first change (the initial values do not count)")
        static let nested = Option<Bool>(flag: "nested", help: "allow '/' in keys; with no KEY, also follow nested keys")
    }

    static let configWatch = CommandSpec(
        "watch", summary: "print keys' values, then every change as it happens",
        description: """
        Prints the current value of each KEY (event 'initial'), then one line per change
        ('created', 'changed', 'removed') until interrupted. With no KEY, every key under the
        config root is watched, including keys created later (--nested follows nested keys too).
        Text lines read 'EVENT KEY = VALUE'; with -o json each line is one object such as
        {"event":"changed","key":"k","value":{"a":1},"version":3}.

        The watch survives lost connections and server restarts: after reconnecting (with a new
        session if the old one expired) it re-reads every key and reports what changed meanwhile.
        A key that does not exist yet is announced on stderr and waited for. --once exits 0 after
        the first change, which makes a script wait for a flag:
            zkctl config watch deploy_ready --once && ./deploy.sh

        \(watchExecDescription) For config watch ZKCTL_KEY names the key too.
        """,
        examples: ["zkctl config watch feature_flags", "zkctl config watch", "zkctl -o json config watch deploy_ready --once",
                   "zkctl config watch feature_flags --exec -- sh -c 'jq . > /etc/app/flags.json'"],
        arguments: [ArgumentSpec("KEY", help: "keys to watch (default: every key)", optional: true, variadic: true, completion: .configKey)],
        options: [
            ConfigWatchOptions.once.spec,
            ConfigWatchOptions.nested.spec,
        ] + WatchExecOptions.specs,
        takesCommand: true, commandRequired: false,
        jsonOutput: #"one object per line: {"event": "initial|created|changed|removed", "key": "k", "value": ..., "version": 3} (no value or version for removed)"#,
        handler: runConfigWatch)

    @Sendable static func runConfigWatch(_ inv: Invocation) async throws -> Int32 {
        let root = inv.settings.configRoot.value
        let nested = inv[ConfigWatchOptions.nested]
        let paths = try inv.arguments.map { try ConfigSupport.path(for: $0, root: root, nested: nested, command: ["config", "watch"]) }
        let spec = paths.isEmpty ? WatchSpec(parents: [root], recursive: nested) : WatchSpec(paths: paths)
        let out = inv.output
        let once = inv[ConfigWatchOptions.once]
        let seen = Mutex<Set<String>>([])
        if try watchExecRequested(inv) {
            if once { throw UsageError("--once and --exec cannot be combined", command: ["config", "watch"]) }
            let seen = Shared<Set<String>>([])
            return try await runWatchExec(inv, spec: spec, onReady: {
                let found = seen.withLock { $0 }
                for p in paths where !found.contains(p) {
                    out.note("config key '\(ConfigSupport.printable(ConfigSupport.key(for: p, root: root)))' does not exist yet; waiting")
                }
            }, seen: { change in
                if change.kind == .initial { seen.withLock { _ = $0.insert(change.path) } }
            }) { change in
                guard let event = execEvent(change, children: false) else { return nil }
                return ChangeRunner.Change(event: event, path: change.path, version: change.stat.map { String($0.version) } ?? "",
                                           value: change.data ?? Data(),
                                           extra: ["ZKCTL_KEY": ConfigSupport.key(for: change.path, root: root)])
            }
        }
        let watcher = NodeWatcher(spec: spec, maxInFlight: min(inv.maxInFlight, 256),
                                  connect: { try await inv.connect() },
                                  onSession: { event in out.note("watch: \(event)") })
        // Following nested keys, the nodes that only hold other keys (no data) are not keys.
        let skipEmpty = paths.isEmpty && nested
        let shown = Mutex<Set<String>>([])
        let end = try await inv.following(spec) {
            try await watcher.run { change in
                if change.kind == .initial { seen.withLock { _ = $0.insert(change.path) } }
                if skipEmpty {
                    let show = shown.withLock { shown -> Bool in
                        if change.kind == .removed { return shown.remove(change.path) != nil }
                        guard let data = change.data, !data.isEmpty else { return false }
                        shown.insert(change.path)
                        return true
                    }
                    if !show { return .proceed }
                }
                let key = ConfigSupport.key(for: change.path, root: root)
                let value = change.data.map(ConfigSupport.decode)
                var o = JSONObject([("event", .string(change.kind.rawValue)), ("key", .string(key))])
                if let value { o["value"] = value }
                if let stat = change.stat { o["version"] = .int(Int(stat.version)) }
                out.print(Printed(json: .object(o), lines: [value.map { "\(change.kind.rawValue) \(key) = \($0.compact())" }
                                                            ?? "\(change.kind.rawValue) \(key)"]))
                out.flush()
                return once && change.kind != .initial ? .stop : .proceed
            } onReady: {
                // The initial look is over: say which keys are not there (yet).
                let found = seen.withLock { $0 }
                for p in paths where !found.contains(p) {
                    out.note("config key '\(ConfigSupport.printable(ConfigSupport.key(for: p, root: root)))' does not exist yet; waiting")
                }
                if paths.isEmpty && found.isEmpty { out.note("no keys under \(root) yet; waiting") }
            }
        }
        // Closed from outside: the runner is ending the command on a signal.
        return end == .stopped ? ExitCode.success : ExitCode.interrupted
    }

    // MARK: export

    enum ConfigExportOptions {
        static let format = Option<String>("format", short: "F", value: "FORMAT", type: .choice(["json", "env", "sql"]), help: "json, env or sql", default: "json")
        static let prefix = Option<String?>("prefix", value: "PREFIX", help: "with --format env: put PREFIX before every name (e.g. APP_)")
    }

    static let configExport = CommandSpec(
        "export", summary: "print the whole configuration (JSON, shell variables or SQL)",
        description: """
        json (the default): one JSON object {key: value}, indented for people, compact with -o json;
        'config import' reads it back.
        env: KEY='value' lines that a POSIX shell can source. Names are made valid shell names:
        upper case, every character other than A-Z, 0-9 turned into '_', a leading digit given a
        '_' (feature-flags becomes FEATURE_FLAGS); --prefix is put in front. Strings are given as
        they are, other values as compact JSON, always single-quoted. Two keys that make the same
        name are an error (exit 65).
        sql: statements that sqlite3 and psql accept: CREATE TABLE IF NOT EXISTS
        configurations(key, value, version), then one INSERT ... ON CONFLICT (key) DO UPDATE per
        key, in one transaction. value holds the compact JSON text.
        """,
        examples: [
            "zkctl config export > config.json",
            "zkctl config export --format env > app.env && . ./app.env",
            "zkctl config export --format sql | sqlite3 config.db",
            "zkctl config export --format sql | psql -q mydb",
        ],
        options: [
            ConfigExportOptions.format.spec,
            ConfigExportOptions.prefix.spec,
        ],
        jsonOutput: #"--format json: {"key": value, ...} (env and sql print their own formats)"#,
        handler: runConfigExport)

    @Sendable static func runConfigExport(_ inv: Invocation) async throws -> Int32 {
        let format = inv[ConfigExportOptions.format]
        let prefix = inv[ConfigExportOptions.prefix] ?? ""
        if !prefix.isEmpty && format != "env" { throw UsageError("--prefix applies only to --format env", command: ["config", "export"]) }
        if !prefix.isEmpty && !ConfigSupport.isShellName(prefix + "X") {
            throw UsageError("--prefix '\(prefix)' must be letters, digits and '_', not starting with a digit", command: ["config", "export"])
        }
        let zk = try await inv.connect()
        let counter = ProgressCounter("keys read")
        inv.showProgress("config export", counter)
        let entries = try await ConfigSupport.readAll(zk, root: inv.settings.configRoot.value, data: true, maxInFlight: inv.maxInFlight,
                                                      counter: counter)
        inv.endProgress()
        let out = inv.output
        switch format {
        case "env":
            let lines = try ConfigSupport.envLines(entries.map { ($0.key, ConfigSupport.decode($0.data)) }, prefix: prefix)
            for l in lines { out.line(l) }
        case "sql":
            for l in ConfigSupport.sqlLines(entries.map { ($0.key, ConfigSupport.decode($0.data), $0.stat.version) }) { out.line(l) }
        default:
            let o = JSONValue.object(JSONObject(entries.map { ($0.key, ConfigSupport.decode($0.data)) }))
            out.print(Printed(json: o, lines: [o.pretty()]))
        }
        return ExitCode.success
    }

    // MARK: import

    enum ConfigImportOptions {
        static let dryRun = Option<Bool>(flag: "dry-run", short: "n", help: "print what would change; change nothing")
        static let prune = Option<Bool>(flag: "prune", help: "also remove keys that are not in the file")
        static let nested = Option<Bool>(flag: "nested", help: "allow '/' in keys")
    }

    static let configImport = CommandSpec(
        "import", summary: "set every key of a JSON object at once",
        description: """
        Reads one JSON object {key: value} (as 'config export' writes it) from FILE or stdin and
        sets every key in one atomic multi-operation: all keys change or none does. When the
        whole change does not fit in one request (about 1 MB), it is written in several batches,
        each atomic on its own but not together. Keys whose stored value is already the same are
        left alone. --prune also removes keys that are not in the file. --dry-run prints what
        would happen (create, update, unchanged, remove) and changes nothing. Input that does not
        parse, is not an object or holds a bad key is exit 65 and changes nothing.
        """,
        examples: [
            "zkctl config import config.json",
            "zkctl config import --dry-run --prune config.json",
            "zkctl -s old:2181 config export | zkctl -s new:2181 config import -",
        ],
        arguments: [ArgumentSpec("FILE", help: "a JSON object, or '-' for stdin", type: .file, completion: .file)],
        options: [
            ConfigImportOptions.dryRun.spec,
            ConfigImportOptions.prune.spec,
            ConfigImportOptions.nested.spec,
            Common.aclOption.spec,
        ],
        jsonOutput: #"{"dryRun": false, "create": [keys], "update": [keys], "unchanged": [keys], "remove": [keys]}"#,
        handler: runConfigImport)

    @Sendable static func runConfigImport(_ inv: Invocation) async throws -> Int32 {
        let input = try Common.readBytes(inv.arguments[0])
        // Most inputs are read straight into keys and stored bytes; anything else is parsed
        // whole, which also words every error.
        let wanted: [(key: String, data: Data)]
        if let entries = ConfigSupport.decodeImport(input) {
            wanted = entries
        } else {
            let parsed: JSONValue
            do { parsed = try JSONValue.parse(bytes: input) } catch {
                throw CommandError.badData("\(inv.arguments[0] == "-" ? "stdin" : inv.arguments[0]): \(error)")
            }
            guard case .object(let object) = parsed else {
                throw CommandError.badData("the input must be a JSON object {key: value}, not \(parsed.typePhrase)")
            }
            wanted = object.map { ($0.key, ConfigSupport.encode($0.value)) }
        }
        let root = inv.settings.configRoot.value
        let nested = inv[ConfigImportOptions.nested]
        let acl = try Common.acl(for: inv)
        var items: [(key: String, path: String, data: Data)] = []
        items.reserveCapacity(wanted.count)
        for (key, data) in wanted {
            if let problem = ConfigSupport.keyProblem(key, nested: nested) {
                throw CommandError.badData("bad key '\(ConfigSupport.printable(key))' in the input: \(problem)")
            }
            let path = PathRules.join(root, key)
            if let problem = PathRules.problem(with: path) {
                throw CommandError.badData("bad key '\(ConfigSupport.printable(key))' in the input: \(problem)")
            }
            try ConfigSupport.checkSize(key: key, path: path, data: data, acl: acl)
            items.append((key, path, data))
        }
        let zk = try await inv.connect()
        let dryRun = inv[ConfigImportOptions.dryRun], prune = inv[ConfigImportOptions.prune]

        let counter = ProgressCounter("nodes read")
        inv.showProgress("config import", counter)
        var attempt = 0
        while true {
            attempt += 1
            counter.start("nodes read", total: nil)
            let plan = try await ConfigSupport.importPlan(zk, root: root, items: items, prune: prune, acl: acl, maxInFlight: inv.maxInFlight,
                                                          counter: counter)
            if dryRun {
                inv.endProgress()
                ConfigSupport.printPlan(plan, output: inv.output, applied: false)
                return ExitCode.success
            }
            let batches = plan.batches
            // Four transactions in flight: the server applies them in order, and none after one
            // that fails. The progress line counts one once it is applied.
            counter.start("writes", total: plan.writes)
            let results = await zk.multi(batches: batches, maxInFlight: 4, applied: { counter.add(batches[$0].count) })
            let done = results.filter { if case .success = $0 { true } else { false } }.count
            if let failure = results.lazy.compactMap({ if case .failure(let e) = $0 { e } else { nil } }).first {
                if let error = failure as? ZooKeeperError, error.unknownOutcome != nil {
                    // One transaction is all or nothing: its first key shows which.
                    let key = ConfigSupport.printable(ConfigSupport.key(for: error.path ?? root, root: root))
                    let before = done == 0 ? "" : " after \(done) of \(batches.count) batches were written"
                    throw UnknownOutcomeError(error, command: "config import\(before)", check: "zkctl config get \(key)")
                }
                guard let error = failure as? ZooKeeperError, [.badVersion, .nodeExists, .noNode, .notEmpty].contains(error.code) else {
                    throw failure
                }
                // Someone changed the configuration between our read and our write.
                if done == 0 && attempt < 5 { continue }
                let what = done == 0 ? "nothing was written" : "\(done) of \(batches.count) batches were written"
                throw CommandError.conflict("the configuration changed during the import (\(ExitCode.message(for: error))); \(what)")
            }
            inv.endProgress()
            ConfigSupport.printPlan(plan, output: inv.output, applied: true)
            return ExitCode.success
        }
    }
}

// MARK: - Helpers
