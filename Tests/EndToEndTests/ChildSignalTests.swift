import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A child run by `lock`, `run-once` or the `service register --ephemeral -- CMD` sidecar gets a
/// signal exactly once: a Ctrl-C typed at a terminal (which reaches the child directly, as it is in
/// zkctl's foreground process group) is not passed on a second time, and a signal sent to zkctl
/// alone (`kill -INT PID`) is passed on once. The child is a small C program that counts the
/// SIGINTs it gets and writes the count to a file.
final class ChildSignalTests: XCTestCase {
    var server: ZooKeeperServer!
    var kit: CoordinationKit!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
        kit = try CoordinationKit(server: server, label: "childsig")
    }

    override func tearDown() {
        kit?.finish()
    }

    func testCtrlCUnderLockGivesCMDOneSIGINTAndReleasesTheLock() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let r = try kit.zkctlTypingCtrlC(["lock", "tty", "--", try kit.signalCounter(), count], count: count)
        XCTAssertEqual(r.status, 130, r.stdoutText)
        XCTAssertEqual(try kit.signalCount(count), 1, "one Ctrl-C, one SIGINT for CMD")
        XCTAssertFalse(r.stdoutText.contains("zkctl:"), "no diagnostic on the terminal: \(r.stdoutText)")
        XCTAssertEqual(try kit.lockContenders("tty"), [], "the lock node is gone")
        let next = try kit.zkctl(["lock", "tty", "--wait", "0", "--", "true"])
        XCTAssertEqual(next.status, 0, next.stderrText)
    }

    func testKillINTUnderLockGivesCMDOneSIGINTAndReleasesTheLock() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let counter = try kit.signalCounter()
        let run = kit.background { try kit.zkctl(["lock", "killed", "--", counter, count]) }
        try kit.kill(SIGINT, zkctlOf: count)
        let r = try run.wait()
        XCTAssertEqual(r.status, 130, r.stderrText)
        XCTAssertEqual(r.stdoutText, "")
        XCTAssertEqual(r.stderrText, "")
        XCTAssertEqual(try kit.signalCount(count), 1, "kill -INT zkctl: passed on to CMD once")
        XCTAssertEqual(try kit.lockContenders("killed"), [], "the lock node is gone")
    }

    func testCtrlCUnderTheSidecarGivesCMDOneSIGINTAndUnregisters() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let r = try kit.zkctlTypingCtrlC(["service", "register", "web", "127.0.0.1", "8080", "--id", "tty",
                                          "--ephemeral", "--", try kit.signalCounter(), count], count: count)
        XCTAssertEqual(r.status, 130, r.stdoutText)
        XCTAssertEqual(try kit.signalCount(count), 1, "one Ctrl-C, one SIGINT for CMD")
        XCTAssertEqual(try kit.serviceInstances("web"), [], "the instance is gone")
    }

    func testKillINTUnderTheSidecarGivesCMDOneSIGINTAndUnregisters() throws {
        let kit = self.kit!
        let count = kit.file("count")
        let counter = try kit.signalCounter()
        let run = kit.background {
            try kit.zkctl(["service", "register", "web", "127.0.0.1", "8080", "--id", "killed", "--ephemeral", "--", counter, count])
        }
        try kit.kill(SIGINT, zkctlOf: count)
        let r = try run.wait()
        XCTAssertEqual(r.status, 130, r.stderrText)
        XCTAssertEqual(try kit.signalCount(count), 1, "kill -INT zkctl: passed on to CMD once")
        XCTAssertEqual(try kit.serviceInstances("web"), [], "the instance is gone")
    }
}

extension CoordinationKit {
    var servicesRoot: String { root + "/services" }

    /// The instance ids registered under `<services-root>/NAME` (read through kazoo).
    func serviceInstances(_ name: String) throws -> [String] {
        let r = try kazoo(["children", servicesRoot + "/" + name])
        if r.status == 1 { return [] }
        guard r.status == 0 else { throw CoordinationKitError("listing the service failed: \(r.stderrText)") }
        return r.stdoutText.split(separator: "\n").map(String.init)
    }

    /// The path of the SIGINT counter, built once per test process.
    func signalCounter() throws -> String {
        try Self.counter.get()
    }

    private static let counter = Result { try buildSignalCounter() }

    /// `COUNTER FILE` writes its parent's pid to FILE.ready once its handler is in place, then
    /// waits (up to a minute) for a SIGINT; one second after the first it writes the number of
    /// SIGINTs it got to FILE and exits 3. C, so that each signal is counted as it is delivered
    /// (an interpreter's handler runs later and may merge two signals into one).
    private static func buildSignalCounter() throws -> String {
        let source = #"""
        #include <signal.h>
        #include <stdio.h>
        #include <string.h>
        #include <time.h>
        #include <unistd.h>
        static volatile sig_atomic_t count = 0;
        static void on_int(int signo) { (void)signo; count++; }
        static int put(const char *path, int value) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            FILE *f = fopen(tmp, "w");
            if (!f) return -1;
            fprintf(f, "%d\n", value);
            if (fclose(f) != 0) return -1;
            return rename(tmp, path);
        }
        int main(int argc, char **argv) {
            if (argc != 2) return 2;
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_int;
            sigemptyset(&sa.sa_mask);
            if (sigaction(SIGINT, &sa, NULL) != 0) return 2;
            char ready[4096];
            snprintf(ready, sizeof ready, "%s.ready", argv[1]);
            if (put(ready, (int)getppid()) != 0) return 2;
            for (int i = 0; i < 1200 && count == 0; i++) usleep(50000);
            struct timespec rest = {1, 0};
            while (nanosleep(&rest, &rest) != 0) {}
            if (put(argv[1], (int)count) != 0) return 2;
            return 3;
        }
        """#
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "sigcounter")
        let file = directory.appendingPathComponent("sigcount.c").path
        let binary = directory.appendingPathComponent("sigcount").path
        try Data(source.utf8).write(to: URL(fileURLWithPath: file))
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let compilers = ["cc", "clang", "gcc"].flatMap { name in
            path.split(separator: ":").map { "\($0)/\(name)" }
        }.filter { FileManager.default.isExecutableFile(atPath: $0) }
        guard let compiler = compilers.first else {
            throw CoordinationKitError("no C compiler (cc, clang or gcc) on PATH to build the signal counter")
        }
        let r = try runProcess(compiler, ["-O2", "-o", binary, file], timeout: 120)
        guard r.status == 0 else { throw CoordinationKitError("building the signal counter failed: \(r.stderrText)") }
        return binary
    }

    /// The count the counter wrote to `file`.
    func signalCount(_ file: String) throws -> Int? {
        Int(try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Waits until the counter writing to `count` is ready, then sends `signo` to its parent
    /// (zkctl).
    func kill(_ signo: Int32, zkctlOf count: String) throws {
        try waitForFile(count + ".ready", nonEmpty: true)
        let text = try String(contentsOfFile: count + ".ready", encoding: .utf8)
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
            throw CoordinationKitError("bad pid in \(count).ready: \(text)")
        }
        guard Glibc.kill(pid, signo) == 0 else { throw CoordinationKitError("kill \(pid) failed") }
    }

    /// Runs zkctl with this kit's roots on a pseudo-terminal (`script`), as its foreground
    /// process; once the counter writing to `count` is ready, types Ctrl-C on that terminal. The
    /// result's stdout is everything the terminal showed; its status is zkctl's.
    func zkctlTypingCtrlC(_ args: [String], count: String, env: [String: String] = [:]) throws -> ProcessResult {
        let argv = [zkctlBinaryPath(), "-s", server.connectString, "--locks-root", locksRoot,
                    "--tasks-root", tasksRoot, "--services-root", servicesRoot] + args
        let commandLine = argv.map(shellQuoted).joined(separator: " ")
        // The typist waits (bounded) for the counter, sends ^C, and keeps the terminal's input
        // open until the count is written.
        let typist = #"""
        i=0; while [ ! -s "$READY" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
        printf '\003'
        i=0; while [ ! -s "$COUNT" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
        sleep 0.2
        """#
        let script = "(\(typist)) | script -qefc \(shellQuoted(commandLine)) /dev/null"
        return try runProcess("/bin/sh", ["-c", script],
                              environment: environment(env.merging(["READY": count + ".ready", "COUNT": count]) { $1 }),
                              timeout: 120)
    }
}
