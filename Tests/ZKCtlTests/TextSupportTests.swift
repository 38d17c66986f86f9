import Foundation
import XCTest
import ZKTestSupport
@testable import ZooKeeper
@testable import ZooKeeperRecipes
@testable import ZKCtl

/// The helpers that took Foundation's place in the tool (trimming, replacing, padding, printf
/// formats, ISO times, the AdminServer's numbers, find's patterns), each compared with what
/// Foundation gives on many inputs: the tool's text must not change with the library under it.
final class TextSupportTests: XCTestCase {
    /// Scalars that trimming, replacing and matching treat specially, and some that they do not.
    private static let pool: [Unicode.Scalar] = [
        " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}", "\u{85}", "\u{A0}", "\u{1680}", "\u{2000}", "\u{2007}", "\u{200A}",
        "\u{200B}", "\u{2028}", "\u{2029}", "\u{202F}", "\u{205F}", "\u{3000}", "\u{FEFF}", "\u{301}", "\u{1F600}",
        "a", "Z", "0", "é", "'", "\"", "\\", "-", "=", ";", "/", ".", "x",
    ]

    private func randomText(_ rng: inout SplitMix, maxLength: Int = 12) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int(rng.next() % UInt64(maxLength + 1)) { s.append(Self.pool[Int(rng.next() % UInt64(Self.pool.count))]) }
        return String(s)
    }

    func testTrimmingMatchesFoundationOnEveryBMPScalar() {
        for value in UInt32(0)...0xFFFF {
            guard let u = Unicode.Scalar(value) else { continue }
            let text = "\(u)a\(u)b\(u)"
            XCTAssertEqual(text.trimmingBlanks(), text.trimmingCharacters(in: .whitespaces), "U+\(String(value, radix: 16))")
            XCTAssertEqual(text.trimmingBlanksAndNewlines(), text.trimmingCharacters(in: .whitespacesAndNewlines), "U+\(String(value, radix: 16))")
        }
    }

    func testTrimmingMatchesFoundationOnRandomText() {
        var rng = SplitMix(seed: 22)
        for _ in 0..<20_000 {
            let text = randomText(&rng)
            XCTAssertEqual(text.trimmingBlanks(), text.trimmingCharacters(in: .whitespaces), text.debugDescription)
            XCTAssertEqual(text.trimmingBlanksAndNewlines(), text.trimmingCharacters(in: .whitespacesAndNewlines), text.debugDescription)
            let sub = text.dropFirst()
            XCTAssertEqual(sub.trimmingBlanks(), sub.trimmingCharacters(in: .whitespaces), text.debugDescription)
        }
        XCTAssertEqual("".trimmingBlanks(), "")
        XCTAssertEqual(" \t ".trimmingBlanks(), "")
        XCTAssertEqual(" \r\n".trimmingBlanks(), "\r\n")
        XCTAssertEqual(" \r\n".trimmingBlanksAndNewlines(), "")
    }

    func testReplacingMatchesFoundation() {
        var rng = SplitMix(seed: 7)
        // The needles the tool replaces (shell and SQL quoting, roff, Prometheus labels, quotas).
        let cases: [(String, String)] = [("'", "'\\''"), ("'", "''"), ("\\", "\\\\"), ("\"", "\\\""), ("\n", "\\n"),
                                         ("\\", "\\e"), ("-", "\\-"), ("=;", ";")]
        for _ in 0..<20_000 {
            let text = randomText(&rng)
            for (target, replacement) in cases {
                XCTAssertEqual(text.replacingEvery(target, with: replacement),
                               text.replacingOccurrences(of: target, with: replacement), "\(text.debugDescription) \(target.debugDescription)")
            }
        }
        XCTAssertEqual("a=;=;b".replacingEvery("=;", with: ";"), "a;;b")
        XCTAssertEqual("''".replacingEvery("'", with: "'\\''"), "'\\'''\\''")
    }

    func testContainsBytesMatchesFoundation() {
        var rng = SplitMix(seed: 11)
        for _ in 0..<20_000 {
            let text = randomText(&rng), needle = randomText(&rng, maxLength: 3)
            XCTAssertEqual(text.containsBytes(of: needle), needle.isEmpty || text.utf8.firstRange(of: needle.utf8) != nil,
                           "\(text.debugDescription) \(needle.debugDescription)")
        }
        XCTAssertTrue("zookeeper://h:1".containsBytes(of: "://"))
        XCTAssertFalse("h:1,h:2/chroot".containsBytes(of: "://"))
        XCTAssertFalse(":/".containsBytes(of: "://"))
    }

    func testPaddingMatchesFoundation() {
        for text in ["", "a", "get", "--connect-timeout DURATION", "é", "\u{1F600}x", "exactly10!", "longer than the width"] {
            for width in 0...24 {
                XCTAssertEqual(text.padded(to: width), text.padding(toLength: width, withPad: " ", startingAt: 0), "\(text) \(width)")
            }
        }
    }

    func testHexMatchesPrintf() {
        var rng = SplitMix(seed: 3)
        var values: [Int64] = [0, 1, -1, 15, 16, 255, Int64.max, Int64.min, 0x100000abcdef0012, -0x7fff_0000_0000_0001]
        for _ in 0..<5000 { values.append(Int64(bitPattern: rng.next())) }
        for v in values {
            XCTAssertEqual(hexText(v), String(format: "0x%llx", v))
            XCTAssertEqual(hexText(UInt64(bitPattern: v)), String(format: "0x%llx", UInt64(bitPattern: v)))
        }
        for v in UInt32(0)...0x2FFFF where v % 7 == 0 || v < 0x200 {
            XCTAssertEqual(paddedHex(v, width: 2), String(format: "%02x", v))
            XCTAssertEqual(paddedHex(v, width: 4), String(format: "%04x", v))
        }
    }

    func testOneDecimalMatchesPrintf() {
        var values: [Double] = [0, -0.0, 0.05, 0.15, 0.25, 0.35, 0.45, -0.05, -0.25, 0.95, 9.95, 99.95, 1.25, 2.5,
                                1e15, 1e20, 123456789012345680, 1e300, -1e300, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                                .infinity, -.infinity, .nan]
        var rng = SplitMix(seed: 11)
        for _ in 0..<20_000 {
            let scale = [1.0, 10, 1000, 1e6, 1e12][Int(rng.next() % 5)]
            values.append((Double(rng.next() % 2_000_001) / 1e6 - 1) * scale)
            values.append(Double(rng.next() % 100_000) / 100 + 0.05)
        }
        for v in values {
            XCTAssertEqual(oneDecimal(v), String(format: "%.1f", v), "\(v)")
        }
    }

    func testISOTimeMatchesFoundation() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        var values: [Int64] = [0, 1, 999, 1000, -1, -999, -1000, -1001, 86_399_999, 951_782_400_000, 1_709_251_199_999,
                               4_102_444_800_000, 253_402_300_799_999, -2_208_988_800_000, -11_676_096_000_000]
        var rng = SplitMix(seed: 5)
        for _ in 0..<20_000 { values.append(Int64(rng.next() % 4_102_444_800_000) - 2_208_988_800_000) }
        for ms in values {
            let expected = f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
            XCTAssertEqual(isoTime(ms), expected, "\(ms)")
        }
    }

    /// The parser isoMilliseconds used before: ISO8601DateFormatter with, then without, fractions.
    private func foundationISOMilliseconds(_ text: String) -> Int64? {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            f.formatOptions = options
            if let date = f.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        }
        return nil
    }

    func testISOParsingMatchesFoundation() {
        var texts = ["2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00.123456Z",
                     "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00.250-05:30", "1970-01-01T00:00:00.000Z",
                     "1969-12-31T23:59:59.999Z", "2000-02-29T23:59:59Z", "", "yesterday", "2024-05-01", "2024-05-01T12:00Z"]
        var rng = SplitMix(seed: 9)
        for _ in 0..<5000 { texts.append(isoTime(Int64(rng.next() % 4_102_444_800_000))) }
        for text in texts {
            XCTAssertEqual(isoMilliseconds(text), foundationISOMilliseconds(text), text)
        }
        for _ in 0..<2000 {
            let ms = Int64(rng.next() % 4_102_444_800_000)
            XCTAssertEqual(isoMilliseconds(isoTime(ms)), ms)
        }
    }

    /// What the AdminServer reader made of JSONSerialization's numbers before.
    private func foundationScalarText(_ value: Any?) -> String? {
        switch value {
        case let s as String: return s
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": return n.boolValue ? "true" : "false"
            case "d", "f":
                let d = n.doubleValue
                return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
            default: return String(n.int64Value)
            }
        default: return nil
        }
    }

    func testAdminServerNumbersReadAsBefore() throws {
        let document = #"""
        {"a": 0, "b": 12, "c": -3, "d": 0.0, "e": 1.5, "f": 2.25, "g": 1e3, "h": 1.0E2, "i": true, "j": false,
         "k": "0x1f", "l": 123456789012, "m": -0.5, "n": 1e15, "o": 3.0000001, "p": 9007199254740993, "q": null}
        """#
        let old = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
        let new = try XCTUnwrap(JSONValue.parse(document).objectValue)
        for key in old.keys.sorted() {
            XCTAssertEqual(ServerProbe.scalarText(new[key]), foundationScalarText(old[key]), key)
        }
        XCTAssertEqual(ServerProbe.intValue(new["b"]), 12)
        XCTAssertEqual(ServerProbe.intValue(new["e"]), 1)
        XCTAssertEqual(ServerProbe.sessionText(new["l"]), "0x1cbe991a14")
        XCTAssertEqual(ServerProbe.sessionText(new["c"]), "0xfffffffffffffffd")
        XCTAssertEqual(ServerProbe.sessionText(.string("72057594037927936")), "0x100000000000000")
    }

    func testPatternsFindWhatICUFound() throws {
        let patterns = ["^/app", "lock-\\d+$", "[a-c]x", "foo|bar", "(?i)LOCK", "^$", "\\.json$", "a.c", "[^/]+-[0-9]{3}",
                        "^/([^/]+/){2}[^/]+$", "\\bword\\b", "é", "x*", "\\s", "end$", "^\\w+$", "a+?b", "(ab)+c", "[[:digit:]]", "line$", "e$", "^\\S+$", "[é]", "\\d{2,}", "(?:a|b)c"]
        let texts = ["/app/lock-0001", "/apps", "/a/b/c", "bx", "foobar", "", "config.json", "abc", "a\nc", "node-123",
                     "/one/two/three", "a word here", "café", "cafe\u{301}", "tab\there", "the end\n", "end\nmore", "under_score",
                     "aaab", "ababc", "digit 7", "\u{1F600}", "line\r\n", "end\u{2028}", "end\n\n", "\n"]
        for pattern in patterns {
            let icu = try NSRegularExpression(pattern: pattern)
            let ours = try SearchPattern(pattern)
            for text in texts {
                // The one difference kept: ICU's \w takes a combining mark as a word character,
                // Swift's does not (a decomposed "é" ends a word); precomposed text is the same.
                if pattern == "^\\w+$" && text.unicodeScalars.elementsEqual("cafe\u{301}".unicodeScalars) { XCTAssertFalse(ours.matches(text)); continue }
                let expected = icu.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                XCTAssertEqual(ours.matches(text), expected, "\(pattern) on \(text.debugDescription)")
            }
        }
        for bad in ["(", "[a-", "*x", "a{2,1}"] {
            XCTAssertThrowsError(try SearchPattern(bad), bad)
        }
    }

    func testPathsAsFoundationMadeThem() {
        // NSString's deletingLastPathComponent gave these (it traps inside this test process, so
        // its answers, taken from a separate program, are written out).
        let expected = ["/a/b/c": "/a/b", "/c": "/", "c": "", "a/b": "a", "/home/u/.local/state/zkctl/history": "/home/u/.local/state/zkctl",
                        "/var/tmp/x.y": "/var/tmp"]
        for (path, parent) in expected {
            XCTAssertEqual(parentDirectory(of: path), parent, path)
        }
        XCTAssertEqual(temporaryDirectory() + "/", NSTemporaryDirectory())
    }

    func testJoinedTextMatchesJoined() {
        var rng = SplitMix(seed: 7)
        for _ in 0..<2_000 {
            let parts = (0..<Int(rng.next() % 5)).map { _ in randomText(&rng, maxLength: 4) }
            for separator in ["", ",", ", ", " "] {
                XCTAssertEqual(parts.joinedText(separator), parts.joined(separator: separator), "\(parts)")
            }
        }
        // The connect string's forms, built with it.
        let cs = ConnectString(servers: [.init(host: "a", port: 1), .init(host: "::1", port: 2181)], chroot: "/app")
        XCTAssertEqual(cs.description, "a:1,[::1]:2181/app")
        XCTAssertEqual(cs.clientForm, "a:1,::1:2181/app")
    }

    func testFilesReadAsFoundationReadThem() throws {
        let dir = try ZKTestPaths.makeTemporaryDirectory(label: "readfile")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [[UInt8]] = [[], Array("[zkctl]\ntimeout = 3s\n".utf8), [0xEF, 0xBB, 0xBF] + Array("[zkctl]\n".utf8),
                                [0xEF, 0xBB, 0xBF], Array(repeating: 0x61, count: 200_000), [0xFF, 0xFE, 0x0A]]
        for (n, bytes) in cases.enumerated() {
            let path = dir.path + "/f\(n)"
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            XCTAssertEqual(readFile(path), bytes, "file \(n)")
            XCTAssertEqual(try Common.readBytes(path), bytes, "file \(n)")
            XCTAssertEqual(utf8Text(bytes), String(data: Data(bytes), encoding: .utf8), "file \(n)")
            XCTAssertEqual(try? String(contentsOfFile: path, encoding: .utf8), readFile(path).flatMap(utf8Text), "file \(n)")
        }
        XCTAssertNil(readFile(dir.path + "/none"))
        XCTAssertNil(readFile(dir.path), "a directory is not a file")
        // A file whose size stat does not know (0): read to its end all the same, well past the
        // first guess of 4096 bytes.
        // (Foundation stops at its first short read here: cat is the reference.)
        let unsized = "/proc/kallsyms"
        let cat = Process()
        cat.executableURL = URL(fileURLWithPath: "/bin/cat")
        cat.arguments = [unsized]
        let pipe = Pipe()
        cat.standardOutput = pipe
        try cat.run()
        let whole = pipe.fileHandleForReading.readDataToEndOfFile()
        cat.waitUntilExit()
        XCTAssertEqual(cat.terminationStatus, 0)
        XCTAssertGreaterThan(whole.count, 100_000)
        XCTAssertEqual(readFile(unsized).map { Data($0) }, whole)
    }

    func testQuotingTakesAQuoteWithACombiningMarkAfterIt() throws {
        // A quote followed by a combining mark still ends a quoted string in a shell or in SQL.
        let texts = ["it'\u{301}s; echo injected", "'\u{301}", "a'b", "plain", "''\u{308}'", "x\u{301}'"]
        for text in texts {
            let quoted = ConfigSupport.shellQuoted(text)
            let sh = Process()
            sh.executableURL = URL(fileURLWithPath: "/bin/sh")
            sh.arguments = ["-c", "printf %s \(quoted)"]
            let out = Pipe()
            sh.standardOutput = out
            try sh.run()
            let printed = out.fileHandleForReading.readDataToEndOfFile()
            sh.waitUntilExit()
            XCTAssertEqual(String(decoding: printed, as: UTF8.self), text, "the shell reads back \(quoted)")
            XCTAssertEqual(Completions.quote(text), quoted)
            XCTAssertEqual(ConfigSupport.sqlQuoted(text).unicodeScalars.filter { $0 == "'" }.count,
                           2 + 2 * text.unicodeScalars.filter { $0 == "'" }.count, "SQL doubles every quote in \(text)")
        }
        XCTAssertEqual("a\"\u{301}\\".replacingEveryScalar("\"", with: "\\\""), "a\\\"\u{301}\\")
    }
}
