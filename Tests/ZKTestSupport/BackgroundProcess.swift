import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The output directories `BackgroundProcess` made and has not removed yet. They go when the test
/// process exits: XCTest keeps teardown blocks, and the objects they hold, until the run ends,
/// so `deinit` may never come for those.
private let directoriesLeftLock: NSLock = NSLock()
nonisolated(unsafe) private var directoriesLeft: Set<String> = []
private let removeLeftDirectoriesAtExit: Void = {
    atexit {
        directoriesLeftLock.lock()
        for path in directoriesLeft { try? FileManager.default.removeItem(atPath: path) }
        directoriesLeftLock.unlock()
    }
}()

/// A process that runs while a test goes on (`config watch`, a held registration, a writer), its
/// output going to files so that no pipe can fill up. Killed when released.
public final class BackgroundProcess: @unchecked Sendable {
    // Unchecked: `process` is used through its own thread-safe calls; the rest is immutable.
    public let process = Process()
    private let directory: URL
    private let ownsDirectory: Bool
    private let outURL: URL
    private let errURL: URL
    /// Its stdin, when the test writes it (`send`); else /dev/null.
    private let input: Pipe?

    /// Starts `executable`. Output goes to files in `directory`,
    /// or in a temporary directory of its own that is removed with it. With `input`, its stdin
    /// is a pipe the test writes with `send` (and ends with `closeInput`).
    public init(_ executable: String, _ args: [String], environment: [String: String],
                directory: URL? = nil, input: Bool = false) throws {
        let id = UUID().uuidString.prefix(8)
        ownsDirectory = directory == nil
        self.directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("zkctl-bg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        if ownsDirectory {
            _ = removeLeftDirectoriesAtExit
            directoriesLeftLock.lock()
            directoriesLeft.insert(self.directory.path)
            directoriesLeftLock.unlock()
        }
        outURL = self.directory.appendingPathComponent("bg-\(id).out")
        errURL = self.directory.appendingPathComponent("bg-\(id).err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        process.environment = environment
        self.input = input ? Pipe() : nil
        process.standardInput = self.input ?? FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        try self.input?.fileHandleForReading.close()
    }

    /// Writes `text` to its stdin (only with `input: true`).
    public func send(_ text: String) throws {
        try input?.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Ends its stdin.
    public func closeInput() throws {
        try input?.fileHandleForWriting.close()
    }

    deinit {
        kill()
        guard ownsDirectory else { return }
        try? FileManager.default.removeItem(at: directory)
        directoriesLeftLock.lock()
        directoriesLeft.remove(directory.path)
        directoriesLeftLock.unlock()
    }

    public var pid: Int32 { process.processIdentifier }
    public var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    public var stdoutData: Data { (try? Data(contentsOf: outURL)) ?? Data() }
    public var stderrData: Data { (try? Data(contentsOf: errURL)) ?? Data() }

    /// The exit status (128 + N for signal N), or nil while it runs.
    public var exitStatus: Int32? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// Polls `predicate(stdout, stderr)` until it holds, the process ends, or `timeout` passes.
    public func waitUntil(timeout: TimeInterval, _ predicate: (String, String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(stdout, stderr) { return true }
            if !process.isRunning { return predicate(stdout, stderr) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return predicate(stdout, stderr)
    }

    /// Waits until stdout holds at least `count` complete lines.
    public func waitForLines(_ count: Int, seconds: TimeInterval = 15) -> Bool {
        waitUntil(timeout: seconds) { out, _ in out.filter { $0 == "\n" }.count >= count }
    }

    public func waitForStderr(seconds: TimeInterval = 15, _ predicate: @escaping (String) -> Bool) -> Bool {
        waitUntil(timeout: seconds) { _, err in predicate(err) }
    }

    public func signal(_ signo: Int32) {
        if process.isRunning { Glibc.kill(process.processIdentifier, signo) }
    }

    /// The exit status (128 + N for a signal), or nil if it still runs after `seconds`.
    public func waitForExit(seconds: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return exitStatus
    }

    /// SIGKILL (after SIGCONT, in case a test stopped it), then waits for the end.
    public func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(seconds: 10)
    }
}
