import Foundation
import XCTest
@testable import ZKCtl

/// Settings precedence (flag > environment > file > default), server lists and URL forms,
/// the config file, and credentials.
final class SettingsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func file(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, mode_t(mode))
        return path
    }

    func resolve(_ args: [String], env: [String: String] = [:]) throws -> Settings {
        var environment = env
        environment["HOME"] = environment["HOME"] ?? dir.path   // no real ~/.config/zkctl/config
        let parsed = try Parser.parse(args + ["status"], root: CommandTable.root)
        return try Settings.resolve(parsed, environment: environment, isTerminal: false)
    }

    func resolveError(_ args: [String], env: [String: String] = [:]) -> String {
        do {
            _ = try resolve(args, env: env)
            return "no error"
        } catch {
            return (error as? UsageError)?.message ?? "\(error)"
        }
    }

    func testDefaults() throws {
        let s = try resolve([])
        XCTAssertEqual(s.servers.value, "127.0.0.1:2181")
        XCTAssertEqual(s.servers.source, .defaultValue)
        XCTAssertEqual(s.timeout.value, .seconds(10))
        XCTAssertEqual(s.output.value, .text)
        XCTAssertEqual(s.configRoot.value, "/config")
        XCTAssertEqual(s.servicesRoot.value, "/services")
        XCTAssertEqual(s.locksRoot.value, "/locks")
        XCTAssertEqual(s.tasksRoot.value, "/tasks")
        XCTAssertTrue(s.credentials.isEmpty)
    }

    func testElectionsRootFromFlagEnvironmentAndFile() throws {
        XCTAssertEqual(try resolve([]).electionsRoot, Sourced(value: "/elections", source: .defaultValue))
        let config = try file("config", "[zkctl]\nelections-root = /from-file\n")
        XCTAssertEqual(try resolve(["--config", config]).electionsRoot, Sourced(value: "/from-file", source: .file(config)))
        XCTAssertEqual(try resolve(["--config", config], env: ["ZKCTL_ELECTIONS_ROOT": "/from-env"]).electionsRoot,
                       Sourced(value: "/from-env", source: .environment("ZKCTL_ELECTIONS_ROOT")))
        XCTAssertEqual(try resolve(["--config", config, "--elections-root", "/from-flag"], env: ["ZKCTL_ELECTIONS_ROOT": "/from-env"]).electionsRoot,
                       Sourced(value: "/from-flag", source: .flag("--elections-root")))
    }

    func testSyncAndSessionTimeoutFromFlagEnvironmentAndFile() throws {
        XCTAssertEqual(try resolve([]).sync.value, false)
        XCTAssertEqual(try resolve(["--sync"]).sync, Sourced(value: true, source: .flag("--sync")))
        XCTAssertEqual(try resolve([], env: ["ZKCTL_SYNC": "yes"]).sync, Sourced(value: true, source: .environment("ZKCTL_SYNC")))
        XCTAssertEqual(try resolve([], env: ["ZKCTL_SYNC": "0"]).sync.value, false)
        let config = try file("config", "[zkctl]\nsync = on\nsession-timeout = 30s\n")
        let fromFile = try resolve(["--config", config])
        XCTAssertEqual(fromFile.sync, Sourced(value: true, source: .file(config)))
        XCTAssertTrue(fromFile.connectOptions.syncFirst)
        XCTAssertEqual(fromFile.connectOptions.sessionTimeout, .seconds(30))
        XCTAssertEqual(resolveError([], env: ["ZKCTL_SYNC": "maybe"]),
                       "bad sync 'maybe' from environment ZKCTL_SYNC: must be yes or no (1/0, true/false, on/off)")
        // The session timeout: by default --timeout, at least 4 s.
        XCTAssertEqual(try resolve(["--timeout", "2s"]).connectOptions.sessionTimeout, .seconds(4))
        XCTAssertEqual(try resolve(["--timeout", "20s"]).connectOptions.sessionTimeout, .seconds(20))
        XCTAssertEqual(try resolve(["--timeout", "20s", "--session-timeout", "3s"]).connectOptions.sessionTimeout, .seconds(3))
        XCTAssertEqual(try resolve([], env: ["ZKCTL_SESSION_TIMEOUT": "45s"]).connectOptions.sessionTimeout, .seconds(45))
        XCTAssertEqual(resolveError(["--session-timeout", "0s"]), "bad session-timeout '0s' from flag --session-timeout")
    }

    func testPrecedenceFlagThenEnvironmentThenFileThenDefault() throws {
        let config = try file("config", """
        # a comment
        [zookeeper]
        servers = file-host:2181
        [zkctl]
        timeout = 3s
        config-root = /from-file
        output = json
        """)
        let env = ["ZKCTL_CONFIG": config]
        let fromFile = try resolve([], env: env)
        XCTAssertEqual(fromFile.servers.value, "file-host:2181")
        XCTAssertEqual(fromFile.servers.source, .file(config))
        XCTAssertEqual(fromFile.timeout.value, .seconds(3))
        XCTAssertEqual(fromFile.configRoot.value, "/from-file")
        XCTAssertEqual(fromFile.output.value, .json)

        var withEnv = env
        withEnv["ASAB_ZOOKEEPER_SERVERS"] = "asab:1"
        XCTAssertEqual(try resolve([], env: withEnv).servers.value, "asab:1")
        withEnv["ZOOKEEPER_HOSTS"] = "hosts:2"
        XCTAssertEqual(try resolve([], env: withEnv).servers.value, "hosts:2")
        withEnv["ZKCTL_SERVERS"] = "zkctl:3"
        withEnv["ZKCTL_TIMEOUT"] = "7s"
        withEnv["ZKCTL_CONFIG_ROOT"] = "/from-env"
        let fromEnv = try resolve([], env: withEnv)
        XCTAssertEqual(fromEnv.servers.value, "zkctl:3")
        XCTAssertEqual(fromEnv.servers.source, .environment("ZKCTL_SERVERS"))
        XCTAssertEqual(fromEnv.timeout.value, .seconds(7))
        XCTAssertEqual(fromEnv.configRoot.value, "/from-env")

        let fromFlags = try resolve(["-s", "flag:4", "--timeout", "1s", "--config-root", "/from-flag", "-o", "text"], env: withEnv)
        XCTAssertEqual(fromFlags.servers.value, "flag:4")
        XCTAssertEqual(fromFlags.servers.source, .flag("--server"))
        XCTAssertEqual(fromFlags.timeout.value, .seconds(1))
        XCTAssertEqual(fromFlags.configRoot.value, "/from-flag")
        XCTAssertEqual(fromFlags.output.value, .text)
        XCTAssertEqual(try resolve(["--json"], env: withEnv).output.value, .json)
    }

    func testExplicitConfigFlagBeatsTheEnvironmentVariable() throws {
        let a = try file("a", "[zookeeper]\nservers = a:1\n")
        let b = try file("b", "[zookeeper]\nservers = b:1\n")
        XCTAssertEqual(try resolve(["--config", b], env: ["ZKCTL_CONFIG": a]).servers.value, "b:1")
    }

    func testXDGConfigFileIsFound() throws {
        let xdg = dir.appendingPathComponent("xdg")
        try FileManager.default.createDirectory(at: xdg.appendingPathComponent("zkctl"), withIntermediateDirectories: true)
        try "[zookeeper]\nservers = xdg:9\npath = /app\n".write(to: xdg.appendingPathComponent("zkctl/config"), atomically: true, encoding: .utf8)
        let s = try resolve([], env: ["XDG_CONFIG_HOME": xdg.path])
        XCTAssertEqual(s.servers.value, "xdg:9/app")
    }

    func testServerListsGetDefaultPortsAndChroot() throws {
        XCTAssertEqual(try resolve(["-s", "a,b:2182,[::1]:3/app"]).servers.value, "a:2181,b:2182,[::1]:3/app")
        XCTAssertEqual(try resolve(["-s", " h1:1 , h2:2 "]).servers.value, "h1:1,h2:2")
    }

    func testURLForms() throws {
        XCTAssertEqual(try resolve(["-s", "zookeeper://h1:2181,h2:2181/chroot"]).servers.value, "h1:2181,h2:2181/chroot")
        // zookeeper:///path takes the servers from the settings below the flag.
        XCTAssertEqual(try resolve(["-s", "zookeeper:///app"], env: ["ZKCTL_SERVERS": "e1:1,e2:2"]).servers.value, "e1:1,e2:2/app")
        XCTAssertEqual(try resolve(["-s", "zookeeper:///app"]).servers.value, "127.0.0.1:2181/app")
        // zookeeper:./relative takes servers and base path from below and appends.
        let config = try file("config", "[zookeeper]\nservers = f:1\npath = /base\n")
        XCTAssertEqual(try resolve(["-s", "zookeeper:./svc"], env: ["ZKCTL_CONFIG": config]).servers.value, "f:1/base/svc")
        XCTAssertEqual(try resolve(["-s", "zookeeper:./svc"], env: ["ZKCTL_SERVERS": "e:1"]).servers.value, "e:1/svc")
    }

    func testMalformedServerSettingsNameTheBadPart() throws {
        XCTAssertEqual(resolveError(["-s", "h:99999"]), "bad server list 'h:99999' from flag --server: bad port '99999' in server 'h:99999'")
        XCTAssertEqual(resolveError(["-s", "h1,,h2"]), "bad server list 'h1,,h2' from flag --server: empty server in 'h1,,h2'")
        XCTAssertEqual(resolveError(["-s", "h:1/a//b"]), "bad server list 'h:1/a//b' from flag --server: bad chroot '/a//b': empty segment ('//')")
        XCTAssertEqual(resolveError(["-s", "http://h:1"]), "bad server URL 'http://h:1' from flag --server: only zookeeper:// URLs are understood")
        XCTAssertEqual(resolveError(["-s", "zookeeper:relative"]),
                       "bad server URL 'zookeeper:relative' from flag --server: expected zookeeper://HOSTS/PATH, zookeeper:///PATH or zookeeper:./PATH")
        XCTAssertEqual(resolveError([], env: ["ZOOKEEPER_HOSTS": "h:x"]), "bad server list 'h:x' from environment ZOOKEEPER_HOSTS: bad port 'x' in server 'h:x'")
        XCTAssertEqual(resolveError([], env: ["ZKCTL_TIMEOUT": "soon"]), "bad timeout 'soon' from environment ZKCTL_TIMEOUT")
        XCTAssertEqual(resolveError(["-s", "h:2181:2182"]),
                       "bad server list 'h:2181:2182' from flag --server: bad server 'h:2181:2182': write an IPv6 address in brackets, [addr]:port")
        XCTAssertEqual(resolveError(["-s", "a\u{1}b:1"]), "bad server list 'a\u{1}b:1' from flag --server: bad host in server 'a\u{1}b:1'")
    }

    func testConfigFileMustBeUTF8AndReadable() throws {
        let path = dir.appendingPathComponent("latin1").path
        try Data([0x5b, 0x7a, 0x6b, 0x63, 0x74, 0x6c, 0x5d, 0x0a, 0xff, 0xfe, 0x0a]).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(resolveError(["--config", path]), "bad config file '\(path)': not UTF-8 text")
        do {
            _ = try resolve(["--auth-file", dir.appendingPathComponent("none").path])
            XCTFail("a missing auth file was accepted")
        } catch let error as CommandError {
            XCTAssertEqual(error.exitCode, 66)
        }
    }

    func testDiagnosticsStayOneLine() {
        XCTAssertEqual(Output.oneLine("bad 'a\nb\tc\u{7}'"), "bad 'a\\nb\\tc\\x07'")
        XCTAssertEqual(Output.oneLine("plain ünïcode"), "plain ünïcode")
    }

    func testMalformedConfigFileNamesTheLine() throws {
        let noEquals = try file("c1", "[zookeeper]\nservers\n")
        XCTAssertEqual(resolveError(["--config", noEquals]), "bad config file '\(noEquals)' line 2: expected key = value, got 'servers'")
        let noSection = try file("c2", "servers = x\n")
        XCTAssertEqual(resolveError(["--config", noSection]), "bad config file '\(noSection)' line 1: 'servers' is outside any [section]")
        let badHeader = try file("c3", "[zookeeper\n")
        XCTAssertEqual(resolveError(["--config", badHeader]), "bad config file '\(badHeader)' line 1: malformed section header '[zookeeper'")
        XCTAssertEqual(resolveError(["--config", dir.appendingPathComponent("missing").path]),
                       "cannot read config file '\(dir.appendingPathComponent("missing").path)'")
    }

    func testCredentialsFromEnvironmentAndFileAndFlag() throws {
        XCTAssertEqual(try resolve([], env: ["ZKCTL_AUTH": "alice:pw"]).credentials, ["alice:pw"])
        let auth = try file("auth", "# digest\nbob:secret\n")
        let s = try resolve(["--auth-file", auth], env: ["ZKCTL_AUTH": "alice:pw"])
        XCTAssertEqual(s.credentials, ["bob:secret"])
        XCTAssertEqual(s.credentialUsers, ["bob"])
        XCTAssertTrue(s.warnings.isEmpty)

        let open = try file("open-auth", "carol:pw\n", mode: 0o644)
        XCTAssertEqual(try resolve(["--auth-file", open]).warnings, ["auth file '\(open)' can be read by other users; chmod 600 it"])

        let inline = try resolve(["--auth", "dave:pw"])
        XCTAssertEqual(inline.credentials, ["dave:pw"])
        XCTAssertEqual(inline.warnings.count, 1)
        XCTAssertTrue(inline.warnings[0].contains("other users"))
        XCTAssertFalse(inline.warnings[0].contains("pw"), "the warning never repeats the password")

        XCTAssertEqual(resolveError([], env: ["ZKCTL_AUTH": "no-colon"]), "bad credentials from environment ZKCTL_AUTH: expected user:password")
    }

    func testColourOnlyOnATerminalWithoutNoColor() throws {
        let parsed = try Parser.parse(["status"], root: CommandTable.root)
        XCTAssertTrue(try Settings.resolve(parsed, environment: ["HOME": dir.path], isTerminal: true).color)
        XCTAssertFalse(try Settings.resolve(parsed, environment: ["HOME": dir.path, "NO_COLOR": "1"], isTerminal: true).color)
        XCTAssertFalse(try Settings.resolve(parsed, environment: ["HOME": dir.path], isTerminal: false).color)
        // A dumb terminal shows escapes as text.
        XCTAssertFalse(try Settings.resolve(parsed, environment: ["HOME": dir.path, "TERM": "dumb"], isTerminal: true).color)
        XCTAssertTrue(try Settings.resolve(parsed, environment: ["HOME": dir.path, "TERM": "xterm-256color"], isTerminal: true).color)
    }

    func testUnknownConfigFileKeysAreWarnedAbout() throws {
        let file = try IniFile(parsing: "[zookeeper]\nserver = a:1\npath = /p\n[zkctl]\ntimeuot = 3s\nwhatever = 1\n[zookeper]\nservers = b:2\n[other]\nx = 1\n", name: "f.ini")
        XCTAssertEqual(Settings.unknownKeyWarnings(file, name: "f.ini"), [
            "config file 'f.ini' line 2: unknown key 'server' in [zookeeper], ignored (did you mean 'servers'?)",
            "config file 'f.ini' line 5: unknown key 'timeuot' in [zkctl], ignored (did you mean 'timeout'?)",
            "config file 'f.ini' line 6: unknown key 'whatever' in [zkctl], ignored (known keys in [zkctl]: timeout, session-timeout, output, config-root, services-root, locks-root, tasks-root, max-inflight, sync, elections-root, auth-file, tls, tls-ca, tls-cert, tls-key, tls-session-cache)",
            "config file 'f.ini' line 8: 'servers' is in unknown section [zookeper], ignored (did you mean [zookeeper]?)",
            "config file 'f.ini' line 10: 'x' is in unknown section [other], ignored (known sections: [zookeeper], [zkctl])",
        ])
        // Through resolve: the warnings reach the settings, the values still resolve.
        let path = dir.appendingPathComponent("typo.ini").path
        try "[zookeeper]\nserver = a:1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let settings = try Settings.resolve(try Parser.parse(["--config", path, "status"], root: CommandTable.root),
                                            environment: ["HOME": dir.path], isTerminal: false)
        XCTAssertEqual(settings.servers.value, Settings.defaultServers)
        XCTAssertEqual(settings.warnings, ["config file '\(path)' line 2: unknown key 'server' in [zookeeper], ignored (did you mean 'servers'?)"])
    }

    func testTableWidthsIgnoreColourEscapes() {
        let lines = LinesCollector()
        let output = Output(format: .text, color: true, sink: { lines.append(String(decoding: $0, as: UTF8.self)) })
        output.table(["A", "STATUS", "B"], [["x", output.styled("ok", .green), "1"], ["yy", output.styled("down", .red), "2"]])
        output.flush()
        let plain = lines.text.replacingOccurrences(of: "\u{1b}\\[[0-9;]*m", with: "", options: .regularExpression)
        XCTAssertEqual(plain, "A   STATUS  B\nx   ok      1\nyy  down    2\n")
        XCTAssertEqual(displayWidth("\u{1b}[32mok\u{1b}[0m"), 2)
        XCTAssertEqual(displayWidth("日本"), 4)
    }
}

private final class LinesCollector: @unchecked Sendable {
    // Unchecked: `chunks` is only touched under `lock`.
    private let lock = NSLock()
    private var chunks: [String] = []
    func append(_ chunk: String) { lock.lock(); chunks.append(chunk); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return chunks.joined() }
}
