// libFuzzer entry for zkctl's input parsers. Built by Fuzz/build.sh together with the sources of
// the ZKCtl module (so internal functions are reachable); the target is chosen at run time by
// ZKCTL_FUZZ_TARGET: parser, servers, ini, json or backup.
//
// Each target feeds the bytes to one parser and checks what must always hold: no crash, no
// trap, and (where the parser has a writer) that what it writes reads back the same.

import Foundation
import ZooKeeper
import ZooKeeperRecipes

enum FuzzTarget: String {
    case parser, servers, ini, json, backup
}

let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["ZKCTL_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("ZKCTL_FUZZ_TARGET must be parser, servers, ini, json or backup (got '\(name)')\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    switch fuzzTarget {
    case .parser: fuzzParser(data)
    case .servers: fuzzServers(data)
    case .ini: fuzzIni(data)
    case .json: fuzzJSON(data)
    case .backup: fuzzBackup(data)
    }
    return 0
}

/// Findings already reported can be left out of a run with ZKCTL_FUZZ_SKIP (comma-separated), so
/// that fuzzing goes on to find new ones: `multiline` (a diagnostic that spans lines), `crlf` (INI
/// text with CR LF line ends), `host` (a server host that the connect string parser should refuse).
/// By default every check is on.
let skipped: Set<String> = Set((ProcessInfo.processInfo.environment["ZKCTL_FUZZ_SKIP"] ?? "").split(separator: ",").map(String.init))

/// What the user sees of a diagnostic (it goes through `Output`, which escapes control
/// characters) must be one line.
func oneLine(_ text: String, _ what: String) {
    if skipped.contains("multiline") { return }
    let shown = Output.oneLine(text)
    check(!shown.contains(where: { $0.isNewline }), "\(what) spans lines: \(shown)")
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data("FUZZ INVARIANT BROKEN: \(message())\n".utf8))
        abort()
    }
}

/// argv: the input split at NUL bytes (argv cannot hold NUL itself), each piece decoded as UTF-8.
func fuzzParser(_ data: Data) {
    let words = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    guard words.count <= 64 else { return }
    let parsed: ParsedCommand
    do {
        parsed = try Parser.parse(words, root: CommandTable.root)
    } catch {
        oneLine(error.description, "usage error")
        return
    }
    if parsed.helpRequested {
        _ = Help.text(for: parsed.path, root: CommandTable.root)
        return
    }
    // Settings read files named on the command line; keep to inputs that name none, so the
    // fuzzer never reads /dev/zero or a huge file.
    if parsed.has("config") || parsed.has("auth-file") { return }
    let environment = ["HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"]
    // A password long enough to be recognised, and typed nowhere else, must never be shown.
    let passwords = (parsed.values["auth"] ?? []).compactMap { value -> String? in
        let password = String(value.drop { $0 != ":" }.dropFirst())
        let elsewhere = words.filter { $0 != value && $0 != "--auth=" + value }.contains { $0.contains(password) }
        let inUser = value.prefix { $0 != ":" }.contains(password)
        return password.count >= 6 && !elsewhere && !inUser ? password : nil
    }
    do {
        let settings = try Settings.resolve(parsed, environment: environment, isTerminal: false)
        for warning in settings.warnings {
            for p in passwords { check(!warning.contains(p), "a warning shows a password: \(warning)") }
        }
    } catch {
        let text = "\(error)"
        oneLine(text, "settings error")
        for p in passwords { check(!text.contains(p), "a settings error shows a password: \(text)") }
    }
}

/// Up to three setting sources, one per line: flag, environment, file.
func fuzzServers(_ data: Data) {
    let text = String(decoding: data, as: UTF8.self)
    let lines = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
    let sources: [SettingSource] = [.flag("--server"), .environment("ZKCTL_SERVERS"), .file("fuzz.ini")]
    var sourced = zip(lines, sources).map { Sourced(value: $0.0, source: $0.1) }
    sourced.append(Sourced(value: Settings.defaultServers, source: .defaultValue))
    do {
        let resolved = try Settings.resolveServers(sourced, command: [])
        // What resolution returns is a connect string the client accepts as it is, and parsing
        // it again gives it back unchanged.
        if skipped.contains("host") { return }
        do {
            let again = try ConnectString(parsing: resolved.value)
            check(again.description == resolved.value, "connect string not stable: '\(resolved.value)' -> '\(again.description)'")
        } catch {
            check(false, "resolved server list '\(resolved.value)' does not parse: \(error)")
        }
    } catch {
        oneLine(error.description, "server error")
    }
    if !skipped.contains("host"), let parsed = try? ConnectString(parsing: text) {
        check(!parsed.servers.isEmpty, "no servers parsed from '\(text)'")
        if let again = try? ConnectString(parsing: parsed.description) {
            check(again == parsed, "ConnectString round trip differs: '\(text)' -> '\(parsed.description)'")
        } else {
            check(false, "ConnectString description does not parse: '\(parsed.description)' from '\(text)'")
        }
    }
}

func fuzzIni(_ data: Data) {
    let text = String(decoding: data, as: UTF8.self)
    if skipped.contains("crlf"), text.contains("\r") { return }
    // The same file with CR LF line ends means the same.
    if !skipped.contains("crlf"), !text.contains("\r") {
        let crlf = text.replacingOccurrences(of: "\n", with: "\r\n")
        let a = try? IniFile(parsing: text, name: "fuzz.ini")
        let b = try? IniFile(parsing: crlf, name: "fuzz.ini")
        check((a == nil) == (b == nil), "CR LF line ends change whether the file parses")
        if let a, let b {
            for (section, key) in [("zookeeper", "servers"), ("zookeeper", "path"), ("zkctl", "timeout")] {
                check(a.value(section, key) == b.value(section, key), "CR LF line ends change [\(section)] \(key)")
            }
        }
    }
    do {
        let file = try IniFile(parsing: text, name: "fuzz.ini")
        _ = file.value("zookeeper", "servers")
        _ = file.value("zkctl", "timeout")
    } catch {
        oneLine(error.description, "ini error")
    }
}

func fuzzJSON(_ data: Data) {
    let value: JSONValue
    do {
        value = try JSONValue.parse(data)
    } catch {
        check(error.offset >= 0 && error.offset <= data.count, "error offset \(error.offset) outside 0...\(data.count)")
        oneLine(error.description, "JSON error")
        return
    }
    // What the encoder writes, the parser reads back as the same value.
    let compact = value.compact()
    do {
        let again = try JSONValue.parse(compact)
        check(again == value, "compact round trip differs for \(compact)")
        check(again.compact() == compact, "compact is not stable for \(compact)")
    } catch {
        check(false, "compact output does not parse: \(compact): \(error)")
    }
    let pretty = value.pretty()
    do {
        let again = try JSONValue.parse(pretty)
        check(again == value, "pretty round trip differs for \(pretty)")
    } catch {
        check(false, "pretty output does not parse: \(pretty): \(error)")
    }
}

func fuzzBackup(_ data: Data) {
    let snapshot: BackupSnapshot
    do {
        snapshot = try BackupFormat.read(data)
    } catch {
        oneLine(error.description, "format error")
        return
    }
    // Planning an import of it into an empty target never traps, and its steps fit the packet limit
    // or are single operations.
    let plan = ImportPlan.make(nodes: snapshot.nodes, targetRoot: snapshot.root,
                               existing: Array(repeating: nil, count: snapshot.nodes.count),
                               ancestors: [], prune: [], policy: .fail, identities: ["world:anyone"])
    _ = plan.steps()
    // An export of the nodes it read reads back as the same nodes.
    guard snapshot.source == .zkctlExport else { return }
    var text = BackupFormat.header(root: snapshot.root, exported: Date(timeIntervalSince1970: 0))
    text += snapshot.nodes.map { BackupFormat.nodeLine($0) }.joined(separator: ",\n")
    text += BackupFormat.footer(nodeCount: snapshot.nodes.count, skippedEphemeral: snapshot.skippedEphemeral)
    do {
        let again = try BackupFormat.read(Data(text.utf8))
        check(again.root == snapshot.root, "root changed in round trip")
        check(again.nodes == snapshot.nodes, "nodes changed in round trip")
    } catch {
        check(false, "re-written export does not read back: \(error)\n\(text)")
    }
}
