import Foundation
import XCTest
import ZooKeeper
@testable import ZKCtl

/// Inputs the fuzzers (Fuzz/, `make fuzz`) found to break an invariant, kept as regression tests.
/// Each names the fuzz target and the invariant.
final class FuzzRegressionTests: XCTestCase {

    /// What the user sees for a message: the lines `Output.error` writes.
    func renderedError(_ message: String) -> [String] {
        let lines = LinesBox()
        let output = Output(format: .text, sink: { _ in }, errorSink: { lines.append($0) })
        output.error(message)
        return lines.all.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }

    // parser target: "a usage error spans lines". Input (NUL-separated argv): "gSequ\n".
    // A word typed with a newline (or other control character) is quoted back verbatim, so the
    // one-line diagnostic becomes two lines.
    func testUsageErrorQuotingANewlineStaysOneLine() {
        for argv in [["gSequ\n"], ["config\n"], ["get", "/a\nb"], ["--nope\r\nx"], ["tree", "--depth", "1\n2"]] {
            do {
                _ = try Parser.parse(argv, root: CommandTable.root)
                XCTFail("\(argv) parsed")
            } catch {
                let lines = renderedError(error.description)
                XCTAssertEqual(lines.count, 1, "\(argv): \(lines)")
                XCTAssertFalse(lines.joined().contains("\r"), "\(argv): \(lines)")
            }
        }
    }

    // ini target: "CR LF line ends change whether the file parses". Input: "[zookeeper]\r\nservers=a:1\r\n".
    // Swift's String treats "\r\n" as one Character, so splitting on "\n" never splits a CR LF
    // file: the whole file is one malformed line.
    func testIniFileWithCRLFLineEnds() throws {
        let file = try IniFile(parsing: "[zookeeper]\r\nservers = a:1\r\n\r\n[zkctl]\r\ntimeout = 5s\r\n", name: "crlf.ini")
        XCTAssertEqual(file.value("zookeeper", "servers"), "a:1")
        XCTAssertEqual(file.value("zkctl", "timeout"), "5s")
    }

    // ini target, same cause. Input: "#\n~" parses as "#\r\n~" does not, and the other way round:
    // a CR LF file that starts with a comment is read as one comment line, so every setting in it
    // is silently ignored (zkctl then talks to the default server).
    func testIniFileWithCRLFAfterACommentIsNotIgnored() throws {
        let file = try IniFile(parsing: "# production\r\n[zookeeper]\r\nservers = prod1:2181,prod2:2181\r\n", name: "crlf.ini")
        XCTAssertEqual(file.value("zookeeper", "servers"), "prod1:2181,prod2:2181")
        XCTAssertThrowsError(try IniFile(parsing: "#\r\n~\r\n", name: "crlf.ini"), "the line '~' is not key = value")
    }

    // servers target: "resolved server list does not parse". Input: "h1:::1]:\xff\xff\xd4...h2:2".
    // An unbracketed host with colons (or with ']', '[', control characters or other bytes no host
    // name holds) is accepted; its description then brackets it into text that does not parse
    // back, and the C client is handed a different server than the one shown.
    func testConnectStringRefusesHostsNoResolverTakes() {
        for text in ["h1:::1]:\u{FFFD}\u{FFFD}h2:2", "h:2181:2182", "::1:2181", "a]b:1", "a[b:1", "127.0.0.1\u{0}.invalid:2181", "h\u{1}:1", "h\u{7f}:1"] {
            XCTAssertThrowsError(try ConnectString(parsing: text), "\(text.debugDescription) was accepted")
        }
        for text in ["h1:2181,h2:2182/app", "[::1]:2181", "[fe80::1%eth0]:2181", "zk-1.example.com", "10.0.0.1:2181"] {
            XCTAssertNoThrow(try ConnectString(parsing: text), text)
            if let parsed = try? ConnectString(parsing: text) {
                XCTAssertEqual(try? ConnectString(parsing: parsed.description), parsed, "round trip of \(text)")
            }
        }
    }

    // servers target: "resolved server list does not parse". Input: "[%31]:1090,[fe80::1%eth0]:2182".
    // Brackets held any hex digits, ':', '.' and '%', so '[%31]' was taken as a host '%31', which
    // has no ':' and so was written back without brackets: '%31:1090', which is refused. Brackets
    // now hold only an IPv6 literal.
    func testBracketsHoldOnlyIPv6Literals() throws {
        for text in ["[%31]:1090,[fe80::1%eth0]:2182", "[%31]:1090", "[1.2.3.4]:1", "[abc]:1", "[]:1", "[::1%]:1", "[:::]:1", "[fe80::1%eth-0]:1"] {
            XCTAssertThrowsError(try ConnectString(parsing: text), "\(text) was accepted")
            let sources = [Sourced(value: text, source: .flag("--server")), Sourced(value: Settings.defaultServers, source: .defaultValue)]
            XCTAssertThrowsError(try Settings.resolveServers(sources, command: []), "\(text) resolved")
        }
        for text in ["[::1]:2181", "[fe80::1%eth0]:2182", "[2001:db8::1]", "[::ffff:127.0.0.1]:1", "[fe80::1%31]:1/app"] {
            let parsed = try ConnectString(parsing: text)
            XCTAssertEqual(try ConnectString(parsing: parsed.description), parsed, text)
        }
        // The C client gets IPv6 without brackets (it splits at the last ':'; getaddrinfo refuses '[::1]').
        XCTAssertEqual(try ConnectString(parsing: "[::1]:2181,h:1/app").clientForm, "::1:2181,h:1/app")
        XCTAssertEqual(try ConnectString(parsing: "[::1]:2181,h:1/app").description, "[::1]:2181,h:1/app")
    }

    // servers target, through settings: whatever resolveServers accepts parses again unchanged.
    func testResolvedServersParseBack() throws {
        for text in ["h1:::1]:\u{FFFD}\u{FFFD}h2:2", "h:2181:2182"] {
            let sources = [Sourced(value: text, source: .flag("--server")), Sourced(value: Settings.defaultServers, source: .defaultValue)]
            if let resolved = try? Settings.resolveServers(sources, command: []) {
                XCTAssertEqual((try? ConnectString(parsing: resolved.value))?.description, resolved.value,
                               "\(text) resolved to \(resolved.value), which does not parse back")
            }
        }
    }
}

private final class LinesBox: @unchecked Sendable {
    // Unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
