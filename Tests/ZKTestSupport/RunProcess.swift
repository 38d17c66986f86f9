import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a finished child process left behind.
public struct ProcessResult: Sendable {
    /// Everything the child wrote to its standard output.
    public let stdout: Data
    /// Everything the child wrote to its standard error.
    public let stderr: Data
    /// The exit code, or 128 + the signal number when a signal ended the child (the shell's
    /// convention, so `status == 0` is the one test for success).
    public let status: Int32
    /// The signal that ended the child, if one did.
    public let signal: Int32?

    public init(stdout: Data, stderr: Data, status: Int32, signal: Int32? = nil) {
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
        self.signal = signal
    }

    /// Standard output decoded as UTF-8 (invalid bytes become U+FFFD).
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error decoded as UTF-8 (invalid bytes become U+FFFD).
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Why `runProcess` could not give a `ProcessResult`.
public enum ProcessError: Error, CustomStringConvertible, Sendable {
    /// The child could not be started at all (for example the executable does not exist).
    case launchFailed(command: String, errno: Int32)
    /// The child (or something holding its output open) was still running when the timeout
    /// passed. It was killed with SIGKILL, its whole process group with it; `partial` holds the
    /// output read until then.
    case timedOut(command: String, seconds: TimeInterval, partial: ProcessResult)
    /// Waiting for the child failed (someone else reaped it).
    case waitFailed(command: String, errno: Int32)

    public var description: String {
        switch self {
        case let .launchFailed(command, code):
            return "cannot run \(command): \(String(cString: strerror(code)))"
        case let .timedOut(command, seconds, partial):
            var text = "timed out after \(seconds) s and killed with SIGKILL: \(command)"
            if !partial.stdout.isEmpty { text += "\n--- stdout so far ---\n" + partial.stdoutText }
            if !partial.stderr.isEmpty { text += "\n--- stderr so far ---\n" + partial.stderrText }
            return text
        case let .waitFailed(command, code):
            return "cannot wait for \(command): \(String(cString: strerror(code)))"
        }
    }
}

/// Runs `executable` with `args` and returns its output and exit status.
///
/// - `executable` is a path, or a bare name looked up in `PATH`.
/// - `environment`: `nil` passes this process's environment on unchanged; otherwise the child
///   gets exactly the given variables (see `childEnvironment(_:)` for "mine plus these").
/// - `stdin`: written to the child's standard input, which is then closed; `nil` gives the child
///   `/dev/null`.
/// - Standard output and standard error are read to their end, both at once, while stdin is
///   written, before the exit status is collected, so a chatty child never blocks on a full pipe.
/// - The child runs in its own process group with default signal handling and an empty signal
///   mask. When `timeout` passes, that group is killed with SIGKILL and `ProcessError.timedOut`
///   is thrown with the output read so far.
///
/// Side effect: the first call sets SIGPIPE to "ignore" in this process, so a child that stops
/// reading its input makes our write fail with EPIPE instead of killing the test process.
public func runProcess(
    _ executable: String,
    _ args: [String],
    environment: [String: String]? = nil,
    stdin: Data? = nil,
    timeout: TimeInterval = 60
) throws -> ProcessResult {
    _ = ignoreSIGPIPE
    let command = describeCommand(executable, args)
    let deadline = ProcessInfo.processInfo.systemUptime + timeout

    var descriptors = DescriptorSet()
    defer { descriptors.closeAll() }
    let output = try descriptors.makePipe(command: command)
    let errors = try descriptors.makePipe(command: command)
    let input = try stdin.map { _ in try descriptors.makePipe(command: command) }

    let pid = try spawn(
        executable, args,
        environment: environment ?? ProcessInfo.processInfo.environment,
        stdinFD: input?.read, stdoutFD: output.write, stderrFD: errors.write,
        command: command
    )
    // The child has its own copies; ours of its ends must go, or we never see end-of-file.
    descriptors.close(output.write)
    descriptors.close(errors.write)
    if let input { descriptors.close(input.read) }

    var collector = OutputCollector(stdoutFD: output.read, stderrFD: errors.read,
                                    stdinFD: input?.write, stdinData: stdin ?? Data())
    for fd in collector.openDescriptors { setNonBlocking(fd) }

    do {
        try collector.pump(until: deadline, descriptors: &descriptors)
        let status = try waitForExit(pid, until: deadline, command: command)
        return collector.result(waitStatus: status)
    } catch is TimedOut {
        killGroupAndReap(pid)
        collector.drainAvailable()
        throw ProcessError.timedOut(command: command, seconds: timeout,
                                    partial: collector.result(waitStatus: nil))
    } catch {
        killGroupAndReap(pid)
        throw error
    }
}

/// This process's environment with `overrides` applied; a `nil` value removes the variable.
public func childEnvironment(_ overrides: [String: String?]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    for (name, value) in overrides {
        environment[name] = value
    }
    return environment
}

// MARK: - Implementation

private let ignoreSIGPIPE: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

private struct TimedOut: Error {}

/// C library functions that Swift's platform module does not declare (they sit behind
/// _GNU_SOURCE), looked up at run time; nil where the C library lacks them.
private enum LibC {
    #if os(Linux)
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    static let pipe2: Pipe2? = symbol("pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
    /// posix_spawn_file_actions_addclosefrom_np, glibc 2.34 and later.
    static let addCloseFrom: AddCloseFrom? = symbol("posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        guard let handle = dlopen(nil, RTLD_NOW) else { return nil }
        return dlsym(handle, name)
    }
    #else
    typealias Pipe2 = (UnsafeMutablePointer<Int32>?, Int32) -> Int32
    static let pipe2: Pipe2? = nil
    static let addCloseFrom: ((inout posix_spawn_file_actions_t?, Int32) -> Int32)? = nil
    #endif
}

private func describeCommand(_ executable: String, _ args: [String]) -> String {
    ([executable] + args).map { word in
        let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

/// The parent's descriptors, closed exactly once whatever happens.
private struct DescriptorSet {
    private var open: Set<Int32> = []

    mutating func makePipe(command: String) throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        var rc: Int32
        if let pipe2 = LibC.pipe2 {
            rc = pipe2(&fds, O_CLOEXEC)
        } else {
            // Not atomic: another thread may spawn in between. Our own children close every
            // descriptor above 2 where the C library allows it (see spawn).
            rc = pipe(&fds)
            if rc == 0 {
                _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            }
        }
        guard rc == 0 else { throw ProcessError.launchFailed(command: command, errno: errno) }
        open.insert(fds[0])
        open.insert(fds[1])
        return (fds[0], fds[1])
    }

    mutating func close(_ fd: Int32) {
        if open.remove(fd) != nil {
            _ = closeDescriptor(fd)
        }
    }

    mutating func closeAll() {
        for fd in open { _ = closeDescriptor(fd) }
        open.removeAll()
    }
}

private func closeDescriptor(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #elseif canImport(Musl)
    return Musl.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}

private func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
}

private func spawn(
    _ executable: String, _ args: [String], environment: [String: String],
    stdinFD: Int32?, stdoutFD: Int32, stderrFD: Int32, command: String
) throws -> pid_t {
    #if canImport(Darwin)
    var actions: posix_spawn_file_actions_t? = nil
    var attributes: posix_spawnattr_t? = nil
    #else
    var actions = posix_spawn_file_actions_t()
    var attributes = posix_spawnattr_t()
    #endif
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }

    if let stdinFD {
        posix_spawn_file_actions_adddup2(&actions, stdinFD, 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
    posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
    // Nothing else of ours leaks into the child, such as a client library's sockets.
    if let addCloseFrom = LibC.addCloseFrom {
        _ = addCloseFrom(&actions, 3)
    }

    // Signals: nothing blocked, and the ones a test process may have changed back to default
    // (we ignore SIGPIPE ourselves; an ignored disposition would survive exec).
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signalNumber in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM] {
        sigaddset(&defaults, signalNumber)
    }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    // Its own process group, so a timeout can kill the child and whatever it started.
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(
        &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

    let argv = CStringArray([executable] + args)
    let envp = CStringArray(environment.map { "\($0.key)=\($0.value)" })
    defer {
        argv.free()
        envp.free()
    }
    var pid: pid_t = 0
    let rc: Int32
    if executable.contains("/") {
        rc = posix_spawn(&pid, executable, &actions, &attributes, argv.pointers, envp.pointers)
    } else {
        rc = posix_spawnp(&pid, executable, &actions, &attributes, argv.pointers, envp.pointers)
    }
    guard rc == 0 else { throw ProcessError.launchFailed(command: command, errno: rc) }
    return pid
}

/// A NULL-terminated array of C strings that lives until `free()`.
private struct CStringArray {
    let pointers: [UnsafeMutablePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    func free() {
        for pointer in pointers { pointer.map { Foundation.free($0) } }
    }
}

/// Moves bytes between us and the child: stdout and stderr in, stdin out, all through one poll().
private struct OutputCollector {
    private(set) var stdoutFD: Int32?
    private(set) var stderrFD: Int32?
    private(set) var stdinFD: Int32?
    private let stdinData: Data
    private var stdinOffset = 0
    private var stdout = Data()
    private var stderr = Data()

    init(stdoutFD: Int32, stderrFD: Int32, stdinFD: Int32?, stdinData: Data) {
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
        self.stdinFD = stdinFD
        self.stdinData = stdinData
    }

    var openDescriptors: [Int32] { [stdoutFD, stderrFD, stdinFD].compactMap { $0 } }

    /// Runs until stdout and stderr reach end-of-file (and stdin is written), or throws
    /// `TimedOut` at the deadline.
    mutating func pump(until deadline: TimeInterval, descriptors: inout DescriptorSet) throws {
        if let fd = stdinFD, stdinData.isEmpty {
            descriptors.close(fd)
            stdinFD = nil
        }
        while stdoutFD != nil || stderrFD != nil || stdinFD != nil {
            let left = deadline - ProcessInfo.processInfo.systemUptime
            if left <= 0 { throw TimedOut() }
            var polled: [pollfd] = []
            for fd in [stdoutFD, stderrFD].compactMap({ $0 }) {
                polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
            }
            if let fd = stdinFD {
                polled.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0))
            }
            let milliseconds = Int32(min(left * 1000 + 1, 1_000_000))
            let ready = poll(&polled, nfds_t(polled.count), milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw ProcessError.waitFailed(command: "poll", errno: errno)
            }
            for entry in polled where entry.revents != 0 {
                if entry.fd == stdinFD {
                    if writeInput(entry.fd) {
                        descriptors.close(entry.fd)
                        stdinFD = nil
                    }
                } else if entry.fd == stdoutFD {
                    if readAvailable(entry.fd, into: &stdout) {
                        descriptors.close(entry.fd)
                        stdoutFD = nil
                    }
                } else if entry.fd == stderrFD {
                    if readAvailable(entry.fd, into: &stderr) {
                        descriptors.close(entry.fd)
                        stderrFD = nil
                    }
                }
            }
        }
    }

    /// After a kill: takes whatever is already in the pipes, without waiting.
    mutating func drainAvailable() {
        if let fd = stdoutFD { _ = readAvailable(fd, into: &stdout) }
        if let fd = stderrFD { _ = readAvailable(fd, into: &stderr) }
    }

    func result(waitStatus: Int32?) -> ProcessResult {
        guard let waitStatus else {
            return ProcessResult(stdout: stdout, stderr: stderr, status: 128 + SIGKILL, signal: SIGKILL)
        }
        let signalNumber = waitStatus & 0x7f
        if signalNumber == 0 {
            return ProcessResult(stdout: stdout, stderr: stderr, status: (waitStatus >> 8) & 0xff)
        }
        return ProcessResult(stdout: stdout, stderr: stderr, status: 128 + signalNumber, signal: signalNumber)
    }

    /// Reads what is there; returns true at end-of-file (or on an error, which ends the stream).
    private func readAvailable(_ fd: Int32, into data: inout Data) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<64 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                data.append(contentsOf: buffer[0..<count])
                continue
            }
            if count == 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return false
            default: return true
            }
        }
        return false
    }

    /// Writes the next piece of stdin; returns true when done (all written, or the child closed
    /// its end).
    private mutating func writeInput(_ fd: Int32) -> Bool {
        while stdinOffset < stdinData.count {
            let written = stdinData.withUnsafeBytes { raw -> Int in
                let chunk = min(raw.count - stdinOffset, 65536)
                return write(fd, raw.baseAddress! + stdinOffset, chunk)
            }
            if written > 0 {
                stdinOffset += written
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return false
            default: return true  // EPIPE: the child does not want the rest
            }
        }
        return true
    }
}

private func waitForExit(_ pid: pid_t, until deadline: TimeInterval, command: String) throws -> Int32 {
    var status: Int32 = 0
    var pause: UInt32 = 500
    while true {
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid { return status }
        if rc < 0 {
            if errno == EINTR { continue }
            throw ProcessError.waitFailed(command: command, errno: errno)
        }
        if ProcessInfo.processInfo.systemUptime >= deadline { throw TimedOut() }
        usleep(pause)
        pause = min(pause * 2, 20_000)
    }
}

private func killGroupAndReap(_ pid: pid_t) {
    _ = kill(-pid, SIGKILL)
    _ = kill(pid, SIGKILL)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
}
