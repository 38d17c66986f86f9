import Foundation
import XCTest
import ZKTestSupport

/// One version string: `ZKCtl.version` in the sources. `zkctl --version`, the man page's title line
/// and the Makefile's VERSION (which names the package) all show the same one.
final class VersionTests: XCTestCase {
    let root = ZKTestPaths.packageRoot

    func testVersionIsTheSameForTheBinaryTheManPageAndThePackage() throws {
        let binary = try runProcess(zkctlBinaryPath(), ["--version"])
        XCTAssertEqual(binary.status, 0, binary.stderrText)
        let words = binary.stdoutText.split(separator: " ")
        XCTAssertEqual(words.first, "zkctl", binary.stdoutText)
        let version = String(try XCTUnwrap(words.dropFirst().first))
        XCTAssertNotNil(version.wholeMatch(of: #/[0-9]+(\.[0-9]+)+([~+][0-9A-Za-z.~+]+)?/#), "a Debian-valid version: \(version)")

        let page = try String(contentsOf: root.appendingPathComponent("man/zkctl.1"), encoding: .utf8)
        let title = try XCTUnwrap(page.split(separator: "\n").first { $0.hasPrefix(".TH ") })
        XCTAssertTrue(title.contains("\"zkctl \(version)\""), "man page title \(title) names \(version)")

        let make = try runProcess("/usr/bin/make", ["-s", "-C", root.path, "version"], timeout: 60)
        XCTAssertEqual(make.status, 0, make.stderrText)
        XCTAssertEqual(make.stdoutText, "\(version)\n", "make version (the package's version)")
    }
}
