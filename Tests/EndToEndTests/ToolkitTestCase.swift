import Foundation
import XCTest
import ZKTestSupport

/// What the toolkit's test classes (txn, find, du, quota) share: the shared standalone server, a
/// unique root per test, and zkctl run with a clean environment.
class ToolkitTestCase: XCTestCase {
    var server: ZooKeeperServer!
    /// This test's own root on the shared server.
    var base = ""
    /// The label of this class's roots.
    var label: String { "toolkit" }

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        base = uniqueZnodePath(label)
        let r = try connected(["create", base])
        XCTAssertEqual(r.status, 0, r.stderrText)
    }

    override func tearDownWithError() throws {
        _ = try? connected(["delete", "--recursive", "--force", base])
    }

    func zkctl(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": FileManager.default.temporaryDirectory.path]
        environment.merge(env) { $1 }
        return try runProcess(zkctlBinaryPath(), args, environment: environment, stdin: stdin, timeout: timeout)
    }

    func connected(_ args: [String], env: [String: String] = [:], stdin: Data? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
        try zkctl(["-s", server.connectString] + args, env: env, stdin: stdin, timeout: timeout)
    }

    /// Runs a command that must succeed with nothing on stderr; returns stdout.
    @discardableResult
    func ok(_ args: [String], stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try connected(args, stdin: stdin)
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText, "", "\(args)", file: file, line: line)
        return r.stdoutText
    }

    /// Runs a command that must fail with `status`, nothing on stdout and exactly one `zkctl: `
    /// line on stderr; returns that line.
    @discardableResult
    func fails(_ args: [String], _ status: Int32, stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try connected(args, stdin: stdin)
        XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stdoutText, "", "\(args)", file: file, line: line)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: "), "\(args): \(r.stderrText)", file: file, line: line)
        XCTAssertEqual(r.stderrText.filter { $0 == "\n" }.count, 1, "\(args): \(r.stderrText)", file: file, line: line)
        return r.stderrText
    }

    func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-toolkit-\(UUID().uuidString)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// JSON lines from objects, one per line.
    func jsonLines(_ objects: [[String: Any]]) throws -> Data {
        var out = Data()
        for o in objects {
            out += try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            out += Data("\n".utf8)
        }
        return out
    }
}
