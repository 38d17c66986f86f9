import Foundation
import XCTest
import ZKTestSupport

/// `zkctl completion SHELL`: the committed completion file, byte for byte, and the README's
/// one-line setups working in each shell.
final class CompletionCommandTests: XCTestCase {
    let root = ZKTestPaths.packageRoot
    let files = [("bash", "completions/zkctl.bash"), ("zsh", "completions/_zkctl"), ("fish", "completions/zkctl.fish")]

    /// A shell's environment that finds the binary under test as `zkctl`.
    var shellEnvironment: [String: String] {
        let bin = URL(fileURLWithPath: zkctlBinaryPath()).deletingLastPathComponent().path
        return ["PATH": "\(bin):/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "LANG": "C.UTF-8"]
    }

    func testPrintsTheCommittedFileForEachShell() throws {
        for (shell, file) in files {
            let committed = try Data(contentsOf: root.appendingPathComponent(file))
            for format in [[], ["-o", "json"]] {
                let r = try runProcess(zkctlBinaryPath(), format + ["completion", shell])
                XCTAssertEqual(r.status, 0, r.stderrText)
                XCTAssertEqual(r.stderrText, "")
                XCTAssertEqual(r.stdout, committed, "zkctl \(format) completion \(shell) differs from \(file)")
            }
        }
    }

    func testAnUnknownOrMissingShellIsAUsageError() throws {
        let unknown = try runProcess(zkctlBinaryPath(), ["completion", "pwsh"])
        XCTAssertEqual(unknown.status, 64)
        XCTAssertEqual(unknown.stdoutText, "")
        XCTAssertTrue(unknown.stderrText.hasPrefix("zkctl: bad SHELL 'pwsh'"), unknown.stderrText)
        XCTAssertEqual(unknown.stderrText.split(separator: "\n").count, 1, unknown.stderrText)
        let missing = try runProcess(zkctlBinaryPath(), ["completion"])
        XCTAssertEqual(missing.status, 64)
        XCTAssertEqual(missing.stdoutText, "")
        XCTAssertTrue(missing.stderrText.hasPrefix("zkctl: "), missing.stderrText)
    }

    /// The README shows one line per shell; each, run as written, registers the completion.
    func testTheReadmeOneLinersSetUpCompletion() throws {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let bash = "source <(zkctl completion bash)", zsh = "source <(zkctl completion zsh)", fish = "zkctl completion fish | source"
        for line in [bash, zsh, fish] { XCTAssertTrue(readme.contains(line), "README shows '\(line)'") }

        let b = try runProcess("/bin/bash", ["-c", "\(bash)\ncomplete -p zkctl\nCOMP_WORDS=(zkctl comple); COMP_CWORD=1; _zkctl; printf '%s\\n' \"${COMPREPLY[@]}\""],
                               environment: shellEnvironment, timeout: 30)
        XCTAssertEqual(b.status, 0, b.stderrText)
        XCTAssertEqual(b.stderrText, "")
        XCTAssertEqual(b.stdoutText, "complete -F _zkctl zkctl\ncompletion\n")

        let z = try runProcess("/usr/bin/zsh", ["-f", "-c", "autoload -Uz compinit && compinit -u -D\n\(zsh)\nprint -r -- $_comps[zkctl]"],
                               environment: shellEnvironment, timeout: 30)
        XCTAssertEqual(z.status, 0, z.stderrText)
        XCTAssertEqual(z.stdoutText, "_zkctl\n", z.stderrText)

        let f = try runProcess("/usr/bin/fish", ["--no-config", "-c", "\(fish); complete -C 'zkctl comple'; complete -C 'zkctl completion '"],
                               environment: shellEnvironment, timeout: 30)
        XCTAssertEqual(f.status, 0, f.stderrText)
        let offered = f.stdoutText.split(separator: "\n").map { String($0.split(separator: "\t").first ?? "") }
        XCTAssertTrue(offered.contains("completion"), f.stdoutText)
        for shell in ["bash", "zsh", "fish"] { XCTAssertTrue(offered.contains(shell), "fish offers \(shell): \(f.stdoutText)") }
    }
}
