import Foundation
import XCTest
import ZKTestSupport

/// `make deb`: the package is built from a release build, installed with dpkg into a throwaway
/// root (whose dpkg database holds this machine's copies of the packages it depends on, so dpkg
/// checks Depends as on a real install), used there as an operator would, and purged.
///
/// It needs a release build (two minutes and more from cold), so `make test` leaves it out and
/// `make test-deb` (also run by .ci/run) runs it.
final class PackageTests: XCTestCase {
    let root = ZKTestPaths.packageRoot

    func run(_ executable: String, _ args: [String], environment: [String: String]? = nil, timeout: TimeInterval = 60,
             file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try runProcess(executable, args, environment: environment, timeout: timeout)
        XCTAssertEqual(r.status, 0, "\(executable) \(args.joined(separator: " ")): \(r.stderrText)", file: file, line: line)
        return r
    }

    func testDebianPackageBuildsInstallsWorksAndPurgesClean() throws {
        let server = try SharedServers.standalone()

        // Build it: the release binary, stripped, lintian without errors (make deb fails otherwise).
        let built = try run("/usr/bin/make", ["-s", "-C", root.path, "deb"], timeout: 1500)
        XCTAssertFalse(built.stdoutText.contains("\nE: ") || built.stdoutText.hasPrefix("E: "), built.stdoutText)
        let version = try run("/usr/bin/make", ["-s", "-C", root.path, "version"]).stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let arch = try run("/usr/bin/dpkg", ["--print-architecture"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let deb = root.appendingPathComponent("dist/zkctl_\(version)_\(arch).deb").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: deb), "make deb wrote \(deb)")

        let fields = try run("/usr/bin/dpkg-deb", ["-f", deb, "Package", "Version", "Architecture", "Depends"]).stdoutText
        XCTAssertTrue(fields.contains("Package: zkctl\n"), fields)
        XCTAssertTrue(fields.contains("Version: \(version)\n"), fields)
        XCTAssertTrue(fields.contains("Architecture: \(arch)\n"), fields)
        let depends = try XCTUnwrap(fields.split(separator: "\n").first { $0.hasPrefix("Depends: ") }).dropFirst("Depends: ".count)
        let dependencies = depends.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " }) }
        for needed in ["libzookeeper-mt2", "libc6", "libssl3", "libedit2"] { XCTAssertTrue(dependencies.contains(needed), "Depends names \(needed): \(depends)") }
        XCTAssertFalse(depends.lowercased().contains("swift"), "no Swift runtime on the target: \(depends)")
        let contents = try run("/usr/bin/dpkg-deb", ["-c", deb]).stdoutText
        for path in ["./usr/bin/zkctl", "./usr/share/man/man1/zkctl.1.gz", "./usr/share/bash-completion/completions/zkctl",
                     "./usr/share/zsh/vendor-completions/_zkctl", "./usr/share/fish/vendor_completions.d/zkctl.fish",
                     "./usr/share/doc/zkctl/copyright", "./usr/share/doc/zkctl/changelog.gz"] {
            XCTAssertTrue(contents.contains(" \(path)\n"), "the package holds \(path)")
        }

        // A throwaway root whose dpkg database has the packages zkctl depends on, as installed here.
        let scratch = try ZKTestPaths.makeTemporaryDirectory(label: "deb")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let target = scratch.appendingPathComponent("root")
        let admin = target.appendingPathComponent("var/lib/dpkg")
        for dir in ["info", "updates", "triggers"] {
            try FileManager.default.createDirectory(at: admin.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        var status = ""
        for package in dependencies {
            status += try run("/usr/bin/dpkg-query", ["-s", package]).stdoutText + "\n"
            let name = try run("/usr/bin/dpkg-query", ["-W", "-f=${binary:Package}", package]).stdoutText
            FileManager.default.createFile(atPath: admin.appendingPathComponent("info/\(name).list").path, contents: Data())
        }
        try status.write(to: admin.appendingPathComponent("status"), atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: admin.appendingPathComponent("available").path, contents: Data())
        let dpkg = ["--root=\(target.path)", "--log=\(scratch.path)/dpkg.log"]
        _ = try run("/usr/bin/dpkg", dpkg + ["-i", deb], timeout: 120)

        // The installed binary: stripped, against a real server.
        let zkctl = target.appendingPathComponent("usr/bin/zkctl").path
        let sections = try run("/usr/bin/readelf", ["-S", "-W", zkctl]).stdoutText
        XCTAssertFalse(sections.contains(".symtab"), "the installed binary is stripped")
        XCTAssertFalse(sections.contains(".debug_"), "the installed binary has no debug sections")
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: zkctl)[.size] as? Int)
        let packageSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: deb)[.size] as? Int)
        print("PackageTests: \(deb) is \(packageSize) bytes; the installed usr/bin/zkctl is \(size) bytes")
        XCTAssertEqual(try run(zkctl, ["--version"]).stdoutText.split(separator: " ").dropFirst().first.map(String.init), version)
        let node = "/t-\(UUID().uuidString)"
        _ = try run(zkctl, ["-s", server.connectString, "create", node, "from the package"])
        XCTAssertEqual(try run(zkctl, ["-s", server.connectString, "get", node]).stdoutText, "from the package")
        _ = try run(zkctl, ["-s", server.connectString, "delete", node])
        let gone = try runProcess(zkctl, ["-s", server.connectString, "exists", node])
        XCTAssertEqual(gone.status, 1, gone.stderrText)
        // A release binary takes argv from Sources/CStartup, not from the Swift runtime: arguments
        // with spaces and UTF-8, and an empty one, arrive as given.
        let spaced = "\(node) é ü"
        _ = try run(zkctl, ["-s", server.connectString, "create", spaced, "two  words, ü"])
        XCTAssertEqual(try run(zkctl, ["-s", server.connectString, "get", spaced]).stdoutText, "two  words, ü")
        _ = try run(zkctl, ["-s", server.connectString, "set", spaced, ""])
        XCTAssertEqual(try run(zkctl, ["-s", server.connectString, "get", spaced]).stdoutText, "")
        let children = try run(zkctl, ["-s", server.connectString, "ls", "/"]).stdoutText
        XCTAssertTrue(children.split(separator: "\n").contains(Substring(spaced.dropFirst())), children)
        _ = try run(zkctl, ["-s", server.connectString, "delete", spaced])

        // man finds the page; bash-completion's loader, zsh's compinit and fish find the completions
        // in the vendor directories, as they would under /usr.
        let share = target.appendingPathComponent("usr/share").path
        let env = ["PATH": "\(target.path)/usr/bin:/usr/bin:/bin", "HOME": scratch.path, "LANG": "C.UTF-8",
                   "XDG_DATA_DIRS": share, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80"]
        XCTAssertEqual(try run("/usr/bin/man", ["-M", "\(share)/man", "-w", "zkctl"], environment: env).stdoutText,
                       "\(share)/man/man1/zkctl.1.gz\n")
        let page = try run("/usr/bin/man", ["-M", "\(share)/man", "zkctl"], environment: env).stdoutText
        XCTAssertTrue(page.contains("zkctl - a command-line admin tool for Apache ZooKeeper") ||
                      page.contains("zkctl \u{2010} a command\u{2010}line admin tool"), String(page.prefix(400)))
        XCTAssertTrue(page.contains("zkctl \(version)"), "the page's footer names the version")

        let bashScript = """
        source /usr/share/bash-completion/bash_completion
        __load_completion zkctl || { echo 'no completion found for zkctl'; exit 3; }
        complete -p zkctl
        COMP_WORDS=(zkctl statu); COMP_CWORD=1; _zkctl; printf '%s\\n' "${COMPREPLY[@]}"
        """
        let bash = try run("/bin/bash", ["-c", bashScript], environment: env)
        XCTAssertEqual(bash.stdoutText, "complete -F _zkctl zkctl\nstatus\n", bash.stderrText)
        let zsh = try run("/usr/bin/zsh", ["-f", "-c", "fpath=(\(share)/zsh/vendor-completions $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[zkctl]"],
                          environment: env)
        XCTAssertEqual(zsh.stdoutText, "_zkctl\n", zsh.stderrText)
        let fish = try run("/usr/bin/fish", ["-c", "complete -C 'zkctl statu'"], environment: env)
        XCTAssertTrue(fish.stdoutText.hasPrefix("status\t"), fish.stdoutText + fish.stderrText)

        // Purged: nothing left outside dpkg's own database, and the loader no longer finds it.
        let listed = try run("/usr/bin/dpkg-query", ["--root=\(target.path)", "-L", "zkctl"]).stdoutText
        XCTAssertTrue(listed.contains("/usr/bin/zkctl\n"), listed)
        _ = try run("/usr/bin/dpkg", dpkg + ["--purge", "zkctl"], timeout: 120)
        let left = try FileManager.default.subpathsOfDirectory(atPath: target.path)
            .filter { !$0.hasPrefix("var/lib/dpkg") && !["var", "var/lib"].contains($0) }
        XCTAssertEqual(left, [], "files left after purge")
        let after = try runProcess("/bin/bash", ["-c", bashScript], environment: env)
        XCTAssertEqual(after.status, 3, after.stdoutText + after.stderrText)
        let query = try runProcess("/usr/bin/dpkg-query", ["--root=\(target.path)", "-W", "zkctl"])
        XCTAssertNotEqual(query.status, 0, "dpkg no longer knows zkctl: \(query.stdoutText)")
    }
}
