import Foundation
import XCTest
import ZKTestSupport

/// OpenSSL and libedit are opened when a command first needs them (TLS, the shell's line
/// editor), not at every start: what the binary loads, and what the user sees without them.
final class LibraryLoadingTests: XCTestCase {
    /// The dynamic loader's own account (LD_DEBUG=files) of what `zkctl --version` opens.
    func testStartingLoadsNeitherOpenSSLNorLibedit() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["LD_DEBUG"] = "files"
        let run = try runProcess(zkctlBinaryPath(), ["--version"], environment: environment)
        XCTAssertEqual(run.status, 0, run.stderrText)
        XCTAssertTrue(run.stdoutText.hasPrefix("zkctl "), run.stdoutText)
        XCTAssertTrue(run.stderrText.contains("libzookeeper_mt"), "the loader's trace names what it opens: \(run.stderrText.prefix(2000))")
        for library in ["libssl", "libcrypto", "libedit"] {
            XCTAssertFalse(run.stderrText.contains(library), "\(library) is loaded at start")
        }
    }

    /// A libssl that cannot be loaded: one line naming it and the package, exit 69, nothing on
    /// stdout, before any connection is tried.
    func testTLSWithoutALoadableLibsslSaysWhatToInstall() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-nolibssl-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Found first on the library path, and not a library.
        try Data("not a shared object\n".utf8).write(to: directory.appendingPathComponent("libssl.so.3"))
        var environment = ProcessInfo.processInfo.environment
        environment["LD_LIBRARY_PATH"] = directory.path
        let run = try runProcess(zkctlBinaryPath(), ["--tls", "-s", "127.0.0.1:9", "--timeout", "2s", "get", "/x"], environment: environment)
        XCTAssertEqual(run.status, 69, run.stderrText)
        XCTAssertEqual(run.stdoutText, "")
        let lines = run.stderrText.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, run.stderrText)
        XCTAssertTrue(run.stderrText.contains("libssl.so.3") && run.stderrText.contains("install Debian's libssl3"), run.stderrText)
    }
}
