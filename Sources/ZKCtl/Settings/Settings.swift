import FoundationEssentials
import Glibc
import ZooKeeper

/// Where an effective setting came from.
public enum SettingSource: Sendable, Hashable, CustomStringConvertible {
    case flag(String)
    case environment(String)
    case file(String)
    case defaultValue

    public var description: String {
        switch self {
        case .flag(let f): return "flag \(f)"
        case .environment(let e): return "environment \(e)"
        case .file(let f): return "file \(f)"
        case .defaultValue: return "default"
        }
    }
}

public struct Sourced<T: Sendable & Hashable>: Sendable, Hashable {
    public var value: T
    public var source: SettingSource
}

public enum OutputFormat: String, Sendable, CaseIterable {
    case text, json, ndjson
    /// Prometheus's text exposition format (`metrics`; other commands print JSON).
    case prometheus
}

/// Every setting a command needs, resolved with the precedence flag > environment > config file
/// > default (DESIGN.md section 4).
public struct Settings: Sendable {
    /// The connect string: servers and chroot.
    public var servers: Sourced<String>
    public var timeout: Sourced<Duration>
    /// The session timeout asked for, when one was given (else the larger of the timeout and 4 s).
    public var sessionTimeout: Sourced<Duration>?
    public var output: Sourced<OutputFormat>
    public var configRoot: Sourced<String>
    public var servicesRoot: Sourced<String>
    public var locksRoot: Sourced<String>
    public var tasksRoot: Sourced<String>
    public var electionsRoot: Sourced<String>
    public var maxInFlight: Sourced<Int>
    /// Sync before the first read (`--sync`).
    public var sync: Sourced<Bool>
    /// Digest credentials (`user:password`); never printed.
    public var credentials: [String]
    public var credentialSource: SettingSource?
    public var configFile: String?
    public var verbose: Int
    public var quiet: Bool
    public var color: Bool
    /// Warnings found while resolving (for example an auth file others can read).
    public var warnings: [String]
    /// TLS to the servers, nil for plain TCP; where it was asked for.
    public var tls: TLSOptions? = nil
    public var tlsSource: SettingSource? = nil
    /// Whether long work shows a progress line on stderr (`--progress`, `ZKCTL_PROGRESS`).
    public var progress: Bool = false
    /// How long work runs before its progress line appears.
    public var progressDelay: Duration = .seconds(1)

    public static let defaultServers = "127.0.0.1:2181"
    /// The keys the config file may hold, per section: anything else is warned about (a typo
    /// such as `server =` would otherwise be ignored without a word).
    public static let fileKeys: [(section: String, keys: [String])] = {
        let keys = [GlobalOptions.server.spec.fileKey, basePathKey] + valueOptions.map(\.fileKey)
            + [GlobalOptions.authFile.spec.fileKey] + GlobalOptions.tlsOptions.map(\.fileKey)
        var grouped: [(section: String, keys: [String])] = []
        for case let k? in keys {
            if let i = grouped.firstIndex(where: { $0.section == k.section }) { grouped[i].keys.append(k.key) }
            else { grouped.append((k.section, [k.key])) }
        }
        return grouped
    }()
    /// The one config-file key that is not an option: a base path put after the file's servers.
    static let basePathKey = ConfigFileKey("zookeeper", "path")
    /// The settings taken as one value from the first of flag, environment, file and default, in
    /// the order they are resolved.
    static let valueOptions: [OptionSpec] = [
        GlobalOptions.timeout.spec, GlobalOptions.sessionTimeout.spec, GlobalOptions.output.spec, GlobalOptions.configRoot.spec,
        GlobalOptions.servicesRoot.spec, GlobalOptions.locksRoot.spec, GlobalOptions.tasksRoot.spec,
        GlobalOptions.maxInFlight.spec, GlobalOptions.sync.spec,
        GlobalOptions.electionsRoot.spec,
    ]
    public static let serverVariables = ["ZKCTL_SERVERS", "ZOOKEEPER_HOSTS", "ASAB_ZOOKEEPER_SERVERS"]

    public var connectOptions: ConnectOptions {
        var options = ConnectOptions(connectString: servers.value, sessionTimeout: sessionTimeout?.value ?? max(timeout.value, .seconds(4)),
                       connectTimeout: timeout.value, requestTimeout: timeout.value, digestCredentials: credentials, tls: tls)
        options.syncFirst = sync.value
        return options
    }

    /// The user names of the credentials, for display.
    public var credentialUsers: [String] {
        credentials.map { String($0.prefix { $0 != ":" }) }
    }

    /// Resolves the settings for a parsed command line.
    public static func resolve(_ parsed: ParsedCommand, environment env: [String: String],
                               isTerminal: Bool) throws -> Settings {
        let path = parsed.path
        // The config file: --config, $ZKCTL_CONFIG, $XDG_CONFIG_HOME/zkctl/config, ~/.config/zkctl/config.
        var file: IniFile? = nil
        var fileName: String? = nil
        let configOption = GlobalOptions.config.spec
        let configFromEnvironment = configOption.environmentVariables.lazy.compactMap { env[$0] }.first { !$0.isEmpty }
        if let explicit = parsed[GlobalOptions.config] ?? configFromEnvironment {
            fileName = explicit
            guard let data = readFile(explicit) else {
                throw CommandError.noInput("cannot read config file '\(explicit)'")
            }
            file = try IniFile(parsing: data, name: explicit, command: path)
        } else {
            let home = env["HOME"] ?? homeDirectory()
            let base = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.config"
            let candidate = "\(base)/zkctl/config"
            if let data = readFile(candidate) {
                fileName = candidate
                file = try IniFile(parsing: data, name: candidate, command: path)
            }
        }

        var warnings: [String] = []
        if let file, let fileName { warnings += unknownKeyWarnings(file, name: fileName) }

        // One value from the first of the option on the command line, its environment variables,
        // its config-file key and its default.
        func pick<Value>(_ option: Option<Value>) -> Sourced<String> {
            let spec = option.spec
            if let v = parsed.values[spec.long]?.last { return Sourced(value: v, source: .flag("--\(spec.long)")) }
            for n in spec.environmentVariables { if let v = env[n], !v.isEmpty { return Sourced(value: v, source: .environment(n)) } }
            if let key = spec.fileKey, let v = file?.value(key.section, key.key), let fileName { return Sourced(value: v, source: .file(fileName)) }
            return Sourced(value: spec.defaultValue ?? "", source: .defaultValue)
        }

        // Servers: each source in order, so that URL forms can take what they lack from lower ones.
        let serverOption = GlobalOptions.server.spec
        var serverSources: [Sourced<String>] = []
        if let v = parsed.values[serverOption.long]?.last { serverSources.append(Sourced(value: v, source: .flag("--\(serverOption.long)"))) }
        for n in serverOption.environmentVariables { if let v = env[n], !v.isEmpty { serverSources.append(Sourced(value: v, source: .environment(n))) } }
        if let key = serverOption.fileKey, let v = file?.value(key.section, key.key), let fileName {
            var combined = v
            if let base = file?.value(basePathKey.section, basePathKey.key), !base.isEmpty, !v.hasPrefix("zookeeper:") { combined += base.hasPrefix("/") ? base : "/" + base }
            serverSources.append(Sourced(value: combined, source: .file(fileName)))
        }
        serverSources.append(Sourced(value: serverOption.defaultValue ?? defaultServers, source: .defaultValue))
        let servers = try resolveServers(serverSources, command: path)

        let timeoutText = pick(GlobalOptions.timeout)
        guard let timeout = parseDuration(timeoutText.value), timeout > .zero else {
            throw UsageError("bad \(GlobalOptions.timeout.spec.long) '\(timeoutText.value)' from \(timeoutText.source)", command: path)
        }

        let sessionTimeoutText = pick(GlobalOptions.sessionTimeout)
        var sessionTimeout: Sourced<Duration>? = nil
        if sessionTimeoutText.source != .defaultValue {
            guard let value = parseDuration(sessionTimeoutText.value), value > .zero else {
                throw UsageError("bad \(GlobalOptions.sessionTimeout.spec.long) '\(sessionTimeoutText.value)' from \(sessionTimeoutText.source)", command: path)
            }
            sessionTimeout = Sourced(value: value, source: sessionTimeoutText.source)
        }

        var outputText = pick(GlobalOptions.output)
        if parsed[GlobalOptions.json] { outputText = Sourced(value: OutputFormat.json.rawValue, source: .flag("--\(GlobalOptions.json.spec.long)")) }
        guard let output = OutputFormat(rawValue: outputText.value) else {
            let names = OutputFormat.allCases.map(\.rawValue)
            throw UsageError("bad output format '\(outputText.value)' from \(outputText.source): must be \(names.dropLast().joined(separator: ", ")) or \(names.last!)", command: path)
        }

        func root(_ option: Option<String>) throws(UsageError) -> Sourced<String> {
            let r = pick(option)
            if let problem = PathRules.problem(with: r.value) {
                throw UsageError("bad \(option.spec.long) '\(r.value)' from \(r.source): \(problem)", command: path)
            }
            return r
        }

        let inflightOption = GlobalOptions.maxInFlight.spec
        let inflightText = pick(GlobalOptions.maxInFlight)
        guard case .int(let inflightRange) = inflightOption.type else { preconditionFailure("--max-inflight is an integer option") }
        guard let inflight = Int(inflightText.value), inflightRange.contains(inflight) else {
            throw UsageError("bad \(inflightOption.long) '\(inflightText.value)' from \(inflightText.source): must be from \(inflightRange.lowerBound) to \(inflightRange.upperBound)", command: path)
        }

        // --sync: the flag, else yes/no from the environment or the file.
        let syncText = pick(GlobalOptions.sync)
        let sync: Sourced<Bool>
        if GlobalOptions.sync.isGiven(in: parsed) {
            sync = Sourced(value: true, source: .flag("--\(GlobalOptions.sync.spec.long)"))
        } else if syncText.source == .defaultValue {
            sync = Sourced(value: false, source: .defaultValue)
        } else if let yes = yesOrNo(syncText.value) {
            sync = Sourced(value: yes, source: syncText.source)
        } else {
            throw UsageError("bad \(GlobalOptions.sync.spec.long) '\(syncText.value)' from \(syncText.source): must be yes or no (1/0, true/false, on/off)", command: path)
        }

        // Credentials: --auth (warned), --auth-file, ZKCTL_AUTH, [zkctl] auth-file.
        var credentials: [String] = []
        var credentialSource: SettingSource? = nil
        let authOption = GlobalOptions.auth.spec, authFileOption = GlobalOptions.authFile.spec
        if GlobalOptions.auth.isGiven(in: parsed) {
            warnings.append("a password given with --auth can be seen by other users of this machine; use ZKCTL_AUTH or --auth-file")
            credentials = parsed[GlobalOptions.auth]
            credentialSource = .flag("--\(authOption.long)")
        } else if let authFile = parsed[GlobalOptions.authFile] {
            credentials = try readAuthFile(authFile, warnings: &warnings, command: path)
            credentialSource = .flag("--\(authFileOption.long)")
        } else if let name = authOption.environmentVariables.first(where: { !(env[$0] ?? "").isEmpty }), let v = env[name] {
            credentials = [v]
            credentialSource = .environment(name)
        } else if let key = authFileOption.fileKey, let authFile = file?.value(key.section, key.key), let fileName {
            credentials = try readAuthFile(authFile, warnings: &warnings, command: path)
            credentialSource = .file(fileName)
        }
        for c in credentials {
            guard let colon = c.firstIndex(of: ":"), colon != c.startIndex else {
                throw UsageError("bad credentials from \(credentialSource?.description ?? "settings"): expected user:password", command: path)
            }
        }

        // Colour only on a terminal that can show it: not with NO_COLOR (any value but empty),
        // and not on TERM=dumb, which shows the escapes as text.
        let noColor = env["NO_COLOR"].map { !$0.isEmpty } ?? false
        let colorTerminal = isTerminal && env["TERM"] != "dumb"
        let (tls, tlsSource) = try resolveTLS(parsed, environment: env, file: file, fileName: fileName, warnings: &warnings)
        // Progress: never with -q or --no-progress; always with --progress; else yes/no from
        // ZKCTL_PROGRESS; else when stderr is a terminal.
        let progressOption = GlobalOptions.progress.spec
        let progressText = pick(GlobalOptions.progress)
        if GlobalOptions.progress.isGiven(in: parsed) && GlobalOptions.noProgress.isGiven(in: parsed) {
            throw UsageError("--\(progressOption.long) and --\(GlobalOptions.noProgress.spec.long) cannot be used together", command: path)
        }
        let progress: Bool
        if parsed[GlobalOptions.quiet] || parsed[GlobalOptions.noProgress] {
            progress = false
        } else if GlobalOptions.progress.isGiven(in: parsed) {
            progress = true
        } else if progressText.source == .defaultValue {
            progress = Common.stderrIsTerminal
        } else if let yes = yesOrNo(progressText.value) {
            progress = yes
        } else {
            throw UsageError("bad \(progressOption.long) '\(progressText.value)' from \(progressText.source): must be yes or no (1/0, true/false, on/off)", command: path)
        }

        var settings = Settings(
            servers: servers, timeout: Sourced(value: timeout, source: timeoutText.source), sessionTimeout: sessionTimeout,
            output: Sourced(value: output, source: outputText.source),
            configRoot: try root(GlobalOptions.configRoot),
            servicesRoot: try root(GlobalOptions.servicesRoot),
            locksRoot: try root(GlobalOptions.locksRoot),
            tasksRoot: try root(GlobalOptions.tasksRoot),
            electionsRoot: try root(GlobalOptions.electionsRoot),
            maxInFlight: Sourced(value: inflight, source: inflightText.source), sync: sync,
            credentials: credentials, credentialSource: credentialSource, configFile: fileName,
            verbose: parsed[GlobalOptions.verbose], quiet: parsed[GlobalOptions.quiet],
            color: colorTerminal && !noColor && output == .text, warnings: warnings)
        settings.tls = tls
        settings.tlsSource = tlsSource
        settings.progress = progress
        if let delay = parsed[GlobalOptions.progressAfter] { settings.progressDelay = delay }
        return settings
    }

    /// TLS from --tls, --tls-ca, --tls-cert, --tls-key, --tls-server-name, --tls-insecure, their
    /// environment variables and config-file keys (flag > environment > file for each). Any file
    /// option, a server name or --tls-insecure implies TLS. The files must be readable; a key
    /// others can read is warned about, as an auth file is. Nothing of a file's content is kept.
    static func resolveTLS(_ parsed: ParsedCommand, environment env: [String: String], file: IniFile?, fileName: String?,
                           warnings: inout [String]) throws -> (TLSOptions?, SettingSource?) {
        let command = parsed.path
        func pick(_ option: Option<String?>) -> Sourced<String>? {
            let spec = option.spec
            if let v = parsed.values[spec.long]?.last { return Sourced(value: v, source: .flag("--\(spec.long)")) }
            for n in spec.environmentVariables { if let v = env[n], !v.isEmpty { return Sourced(value: v, source: .environment(n)) } }
            if let key = spec.fileKey, let v = file?.value(key.section, key.key), !v.isEmpty, let fileName { return Sourced(value: v, source: .file(fileName)) }
            return nil
        }
        // --tls itself: the flag, or a yes/no value in the environment or the file.
        var enabled: Sourced<Bool>? = nil
        let flag = GlobalOptions.tls.spec
        if parsed[GlobalOptions.tls] {
            enabled = Sourced(value: true, source: .flag("--\(flag.long)"))
        } else {
            var text: Sourced<String>? = nil
            for n in flag.environmentVariables { if let v = env[n], !v.isEmpty { text = Sourced(value: v, source: .environment(n)); break } }
            if text == nil, let key = flag.fileKey, let v = file?.value(key.section, key.key), let fileName { text = Sourced(value: v, source: .file(fileName)) }
            if let text {
                switch text.value.lowercased() {
                case "1", "true", "yes", "on": enabled = Sourced(value: true, source: text.source)
                case "0", "false", "no", "off": enabled = Sourced(value: false, source: text.source)
                default: throw UsageError("bad \(flag.long) '\(text.value)' from \(text.source): expected yes or no", command: command)
                }
            }
        }
        let ca = pick(GlobalOptions.tlsCA), cert = pick(GlobalOptions.tlsCert), key = pick(GlobalOptions.tlsKey)
        let serverName = parsed[GlobalOptions.tlsServerName]
        let insecure = parsed[GlobalOptions.tlsInsecure]
        let implied = [ca, cert, key].compactMap { $0 }.first?.source
            ?? (serverName != nil ? .flag("--\(GlobalOptions.tlsServerName.spec.long)") : nil)
            ?? (insecure ? .flag("--\(GlobalOptions.tlsInsecure.spec.long)") : nil)
        // An explicit "no" (environment, file) wins over what they imply, not over a flag.
        var impliedByFlag = false
        if case .flag? = implied { impliedByFlag = true }
        guard enabled?.value ?? (implied != nil) || impliedByFlag else { return (nil, nil) }
        let source = enabled?.value == true ? enabled!.source : implied!
        if key != nil && cert == nil {
            throw UsageError("a TLS key (\(key!.source)) needs its certificate: give --tls-cert too", command: command)
        }
        for (what, file) in [("CA file", ca), ("certificate", cert), ("key", key)] {
            guard let file else { continue }
            guard access(file.value, R_OK) == 0 else {
                throw CommandError.noInput("cannot read TLS \(what) '\(file.value)' (from \(file.source))")
            }
        }
        // The key: in --tls-key, else in the certificate's file (PEM may hold both).
        if let keyFile = key?.value ?? cert?.value {
            var info = stat()
            if stat(keyFile, &info) == 0, info.st_mode & 0o044 != 0, key != nil || readFile(keyFile).map(holdsPrivateKey) == true {
                warnings.append("TLS key file '\(keyFile)' can be read by other users; chmod 600 it")
            }
        }
        if insecure {
            warnings.append("TLS without verification (--tls-insecure): the servers' certificates are not checked, so anyone between here and them can read and change what is sent")
        }
        let sessionCache = insecure ? nil : resolveSessionCache(pick(GlobalOptions.tlsSessionCache), environment: env, warnings: &warnings)
        return (TLSOptions(caFile: ca?.value, certFile: cert?.value, keyFile: key?.value, serverName: serverName, insecure: insecure,
                           sessionCache: sessionCache), source)
    }

    /// The directory TLS sessions are kept in, or nil: `setting` when given (`off`: none), else
    /// `$XDG_RUNTIME_DIR/zkctl`. Made (mode 700) when missing; a directory others may enter is
    /// not used (said in a warning when it was asked for by name).
    static func resolveSessionCache(_ setting: Sourced<String>?, environment env: [String: String], warnings: inout [String]) -> String? {
        let directory: String
        if let setting {
            if ["off", "no", "none", "0", "false"].contains(setting.value.lowercased()) { return nil }
            directory = setting.value
        } else {
            guard let runtime = env["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") else { return nil }
            directory = (runtime.hasSuffix("/") ? runtime : runtime + "/") + "zkctl"
        }
        _ = mkdir(directory, 0o700)
        guard TLSOptions.isPrivateDirectory(directory) else {
            if let setting {
                warnings.append("TLS session cache '\(directory)' (from \(setting.source)) not used: it must be a directory of yours that no one else can enter (chmod 700 it)")
            }
            return nil
        }
        return directory
    }

    /// Whether PEM text holds a private key (only the marker is looked for; nothing is kept).
    static func holdsPrivateKey(_ bytes: [UInt8]) -> Bool {
        bytes.firstRange(of: Array("PRIVATE KEY-----".utf8)) != nil
    }

    /// A yes/no setting's value, nil when it is neither.
    static func yesOrNo(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "yes", "true", "on": return true
        case "0", "no", "false", "off": return false
        default: return nil
        }
    }

    /// One warning per line of the file whose section or key zkctl does not know, naming the
    /// file, the line and the key, with the likely meant one or the known ones.
    static func unknownKeyWarnings(_ file: IniFile, name: String) -> [String] {
        var warnings: [String] = []
        for entry in file.entries {
            let place = "config file '\(name)' line \(entry.line)"
            guard let known = fileKeys.first(where: { $0.section == entry.section })?.keys else {
                let sections = fileKeys.map { "[\($0.section)]" }.joined(separator: ", ")
                let hint = closest(entry.section, among: fileKeys.map(\.section)).map { "did you mean [\($0)]?" } ?? "known sections: \(sections)"
                warnings.append("\(place): '\(entry.key)' is in unknown section [\(entry.section)], ignored (\(hint))")
                continue
            }
            if known.contains(entry.key) { continue }
            let hint = closest(entry.key, among: known).map { "did you mean '\($0)'?" }
                ?? "known keys in [\(entry.section)]: \(known.joined(separator: ", "))"
            warnings.append("\(place): unknown key '\(entry.key)' in [\(entry.section)], ignored (\(hint))")
        }
        return warnings
    }

    /// The candidate within two edits of `word` (case aside), if exactly one is closest.
    static func closest(_ word: String, among candidates: [String]) -> String? {
        let w = Array(word.lowercased())
        guard w.count <= 64 else { return nil }
        func distance(_ c: String) -> Int {
            let b = Array(c.lowercased())
            var row = Array(0...b.count)
            for (i, x) in w.enumerated() {
                var next = [i + 1]
                for (j, y) in b.enumerated() {
                    next.append(min(row[j + 1] + 1, next[j] + 1, row[j] + (x == y ? 0 : 1)))
                }
                row = next
            }
            return row[b.count]
        }
        let scored = candidates.map { ($0, distance($0)) }.filter { $0.1 <= 2 }.sorted { $0.1 < $1.1 }
        guard let best = scored.first, scored.dropFirst().first?.1 != best.1 else { return nil }
        return best.0
    }

    static func readAuthFile(_ name: String, warnings: inout [String], command: [String]) throws -> [String] {
        guard let text = readFile(name).flatMap(utf8Text) else {
            throw CommandError.noInput("cannot read auth file '\(name)'")
        }
        var info = stat()
        if stat(name, &info) == 0, info.st_mode & 0o044 != 0 {
            warnings.append("auth file '\(name)' can be read by other users; chmod 600 it")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingBlanks() }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw UsageError("auth file '\(name)' holds no user:password line", command: command) }
        return lines
    }

    /// Takes the first server source; a URL that lacks servers or a base path takes them from the
    /// sources below it.
    static func resolveServers(_ sources: [Sourced<String>], command: [String]) throws(UsageError) -> Sourced<String> {
        guard let first = sources.first else { return Sourced(value: defaultServers, source: .defaultValue) }
        let text = first.value.trimmingBlanks()
        func checked(_ s: String) throws(UsageError) -> String {
            do {
                return try ConnectString(parsing: s).description
            } catch {
                throw UsageError("bad server list '\(first.value)' from \(first.source): \((error as? ZooKeeperError)?.message ?? "\(error)")", command: command)
            }
        }
        if text.hasPrefix("zookeeper://") {
            let rest = String(text.dropFirst("zookeeper://".count))
            if rest.hasPrefix("/") {
                // zookeeper:///path: servers from the settings below, this path as the chroot.
                let lower = try resolveServers(Array(sources.dropFirst()), command: command)
                let hosts = lower.value.prefix { $0 != "/" }
                return Sourced(value: try checked(hosts + (rest == "/" ? "" : rest)), source: first.source)
            }
            guard !rest.isEmpty else { throw UsageError("bad server URL '\(text)' from \(first.source): no servers", command: command) }
            return Sourced(value: try checked(rest), source: first.source)
        }
        if text.hasPrefix("zookeeper:") {
            // zookeeper:./relative: servers and base path from below, this path under the base.
            var relative = String(text.dropFirst("zookeeper:".count))
            guard relative.hasPrefix("./") || relative == "." else {
                throw UsageError("bad server URL '\(text)' from \(first.source): expected zookeeper://HOSTS/PATH, zookeeper:///PATH or zookeeper:./PATH", command: command)
            }
            relative = String(relative.dropFirst(relative == "." ? 1 : 2))
            let lower = try resolveServers(Array(sources.dropFirst()), command: command)
            var combined = lower.value
            if !relative.isEmpty {
                combined += "/" + relative
            }
            return Sourced(value: try checked(combined), source: first.source)
        }
        if text.containsBytes(of: "://") {
            throw UsageError("bad server URL '\(text)' from \(first.source): only zookeeper:// URLs are understood", command: command)
        }
        return Sourced(value: try checked(text), source: first.source)
    }
}

/// A small INI file: `[section]` headers, `key = value` lines, `#` and `;` comments.
public struct IniFile: Sendable {
    /// One `key = value` line: where it is, for messages that point at it.
    public struct Entry: Sendable, Hashable {
        public var section: String
        public var key: String
        /// 1-based.
        public var line: Int
    }

    private var sections: [String: [String: String]] = [:]
    /// Every `key = value` line, in file order.
    public private(set) var entries: [Entry] = []

    /// Parses the file's bytes, which must be UTF-8 text.
    public init(parsing bytes: [UInt8], name: String, command: [String] = []) throws(UsageError) {
        guard let text = utf8Text(bytes) else {
            throw UsageError("bad config file '\(name)': not UTF-8 text", command: command)
        }
        try self.init(parsing: text, name: name, command: command)
    }

    public init(parsing text: String, name: String, command: [String] = []) throws(UsageError) {
        var section = ""
        // Any line end (LF, CR LF, CR): Swift keeps "\r\n" as one character, so split on newlines.
        for (number, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingBlanksAndNewlines()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw UsageError("bad config file '\(name)' line \(number + 1): malformed section header '\(line)'", command: command)
                }
                section = String(line.dropFirst().dropLast()).trimmingBlanks()
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw UsageError("bad config file '\(name)' line \(number + 1): expected key = value, got '\(line)'", command: command)
            }
            let key = line[..<eq].trimmingBlanks()
            let value = line[line.index(after: eq)...].trimmingBlanks()
            guard !key.isEmpty else {
                throw UsageError("bad config file '\(name)' line \(number + 1): empty key", command: command)
            }
            guard !section.isEmpty else {
                throw UsageError("bad config file '\(name)' line \(number + 1): '\(key)' is outside any [section]", command: command)
            }
            sections[section, default: [:]][key] = value
            entries.append(Entry(section: section, key: key, line: number + 1))
        }
    }

    public func value(_ section: String, _ key: String) -> String? {
        sections[section]?[key]
    }
}
