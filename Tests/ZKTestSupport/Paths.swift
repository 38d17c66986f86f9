import Foundation

/// Where things are, for tests: the package checkout, the server launcher, scratch space and the
/// built `zkctl`.
public enum ZKTestPaths {
    /// The package root: this file is `<root>/Tests/ZKTestSupport/Paths.swift`.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Tests/ZKTestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // <root>

    /// `scripts/zkserver`, the one launcher for test servers.
    public static var zkserverScript: URL {
        packageRoot.appendingPathComponent("scripts/zkserver")
    }

    /// Root of all test scratch space: `$ZKCTL_TEST_TMP` if set, else `<package>/.tmp/zk-tests`
    /// (git-ignored). Server directories and `makeTemporaryDirectory` results live below it.
    public static var temporaryRoot: URL {
        if let custom = ProcessInfo.processInfo.environment["ZKCTL_TEST_TMP"], !custom.isEmpty {
            return URL(fileURLWithPath: custom, isDirectory: true).standardizedFileURL
        }
        return packageRoot.appendingPathComponent(".tmp/zk-tests", isDirectory: true)
    }

    /// A fresh, empty directory under `temporaryRoot`, named `<label>-<pid>-<random>`. The caller
    /// removes it when done (leaving it behind is harmless: it is scratch space).
    public static func makeTemporaryDirectory(label: String = "tmp") throws -> URL {
        let url = uniqueName(label: label)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A path under `temporaryRoot` that does not exist yet (its parent does).
    static func uniqueName(label: String) -> URL {
        let root = temporaryRoot
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let random = UUID().uuidString.prefix(8).lowercased()
        let pid = ProcessInfo.processInfo.processIdentifier
        return root.appendingPathComponent("\(label)-\(pid)-\(random)", isDirectory: true)
    }
}

/// The `zkctl` executable the end-to-end tests run.
///
/// In order: `$ZKCTL_BIN`; a `zkctl` next to the running test binary (`swift test` builds the
/// products into `.build/<triple>/debug/` beside the test bundle, whatever the scratch path);
/// `<package>/.build/debug/zkctl`. When none exists, the last one is returned anyway, so the
/// failure names the path that was expected.
public func zkctlBinaryPath() -> String {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["ZKCTL_BIN"], !path.isEmpty {
        return path
    }
    let fileManager = FileManager.default
    for directory in testBinaryDirectories() {
        let candidate = directory.appendingPathComponent("zkctl").path
        if fileManager.isExecutableFile(atPath: candidate) {
            return candidate
        }
    }
    return ZKTestPaths.packageRoot.appendingPathComponent(".build/debug/zkctl").path
}

/// Directories that may hold the products built together with the running tests.
private func testBinaryDirectories() -> [URL] {
    var directories: [URL] = []
    func add(_ url: URL?) {
        guard let url else { return }
        let directory = url.resolvingSymlinksInPath().deletingLastPathComponent()
        if !directories.contains(directory) { directories.append(directory) }
    }
    // Linux: the test runner is `<products>/<package>PackageTests.xctest`, an executable.
    if let first = CommandLine.arguments.first, first.contains("/") {
        add(URL(fileURLWithPath: first))
    }
    add(Bundle.main.executableURL)
    // macOS: the tests are a bundle `<products>/<package>PackageTests.xctest/` loaded by xctest.
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        add(bundle.bundleURL)
    }
    return directories
}

/// A znode path unique to this call, for tests that share a server: `/zkctl-test-<label>-<random>`,
/// directly under the root so no parent has to exist. Nothing is created; the caller creates (and
/// may delete) it.
public func uniqueZnodePath(_ label: String) -> String {
    let random = UUID().uuidString.prefix(12).lowercased()
    return "/zkctl-test-\(label)-\(random)"
}
