import Foundation
import XCTest
import ZKTestSupport

/// `zkctl edit` and `zkctl config edit` with an EDITOR script: the private temp file, CAS
/// write-back, re-opening on a conflict or invalid JSON, nothing written when unchanged or failed.
final class EditTests: ToolkitTestCase {
    override var label: String { "edit" }
    var scratch: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        scratch = try ZKTestPaths.makeTemporaryDirectory(label: "edit")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
        try super.tearDownWithError()
    }

    /// An editor script: round N (counted in a file) runs the Nth of `rounds` (sh snippets where
    /// "$1" is the file), and records the file's path and mode.
    func editor(_ rounds: [String]) throws -> String {
        var script = "#!/bin/sh\nset -e\nn=$(cat \"\(scratch.path)/count\" 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > \"\(scratch.path)/count\"\n"
        script += "stat -c '%a' \"$1\" >> \"\(scratch.path)/modes\"\necho \"$1\" >> \"\(scratch.path)/files\"\n"
        for (i, body) in rounds.enumerated() { script += "if [ $n = \(i + 1) ]; then\n\(body)\nfi\n" }
        let url = scratch.appendingPathComponent("editor.sh")
        try Data(script.utf8).write(to: url)
        chmod(url.path, 0o755)
        return url.path
    }

    func edit(_ args: [String], editor: String) throws -> ProcessResult {
        try zkctl(["-s", server.connectString] + args,
                  env: ["EDITOR": editor, "ZK": zkctlBinaryPath(), "ZKS": server.connectString, "TMPDIR": scratch.path])
    }

    var rounds: Int { Int((try? String(contentsOf: scratch.appendingPathComponent("count"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0 }

    func testEditWritesBackFromAPrivateFileThatIsRemoved() throws {
        let path = "\(base)/e"
        try ok(["create", path, "old text"])
        let r = try edit(["-o", "json", "edit", path], editor: try editor([#"[ "$(cat "$1")" = "old text" ] && printf 'new text' > "$1""#]))
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        let doc = try XCTUnwrap(try json(r.stdoutText) as? [String: Any])
        XCTAssertEqual(doc["changed"] as? Bool, true)
        XCTAssertEqual((doc["stat"] as? [String: Any])?["version"] as? Int, 1)
        XCTAssertEqual(try ok(["get", path]), "new text")
        XCTAssertEqual(try String(contentsOf: scratch.appendingPathComponent("modes"), encoding: .utf8), "600\n")
        let file = try String(contentsOf: scratch.appendingPathComponent("files"), encoding: .utf8).trimmingCharacters(in: .newlines)
        XCTAssertTrue(file.hasPrefix(scratch.path + "/zkctl-edit-"), file)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
    }

    func testNothingIsWrittenWhenUnchangedOrTheEditorFails() throws {
        let path = "\(base)/e"
        try ok(["create", path, "keep"])
        let same = try edit(["edit", path], editor: try editor([":"]))
        XCTAssertEqual(same.status, 0)
        XCTAssertEqual(same.stdoutText, "")
        XCTAssertEqual(same.stderrText, "zkctl: \(path): no change; nothing was written\n")
        let failing = try edit(["edit", path], editor: try editor([":", #"printf 'lost' > "$1"; exit 3"#]))
        XCTAssertEqual(failing.status, 3)
        XCTAssertEqual(failing.stderrText, "zkctl: the editor '\(scratch.path)/editor.sh' failed (exit code 3); nothing was written\n")
        XCTAssertEqual(try ok(["get", path]), "keep")
        let stat = try XCTUnwrap(try json(try ok(["-o", "json", "stat", path])) as? [String: Any])
        XCTAssertEqual((stat["stat"] as? [String: Any])?["version"] as? Int, 0)
        XCTAssertEqual(try connected(["edit", "\(base)/missing"]).status, 1)
    }

    func testAConflictReopensTheEditorOnTheNewValue() throws {
        let path = "\(base)/e"
        try ok(["create", path, "v0"])
        // Round 1: someone else sets the node while the editor is open; round 2 sees their value.
        let r = try edit(["edit", path], editor: try editor([
            #""$ZK" -s "$ZKS" set \#(path) theirs; printf 'mine' > "$1""#,
            #"[ "$(cat "$1")" = "theirs" ] && printf 'merged' > "$1""#,
        ]))
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "zkctl: warning: \(path) was changed by someone else meanwhile (now version 1); your edit was not written; opening the new value\n")
        XCTAssertEqual(rounds, 2)
        XCTAssertEqual(try ok(["get", path]), "merged")
    }

    func testConfigEditRequiresValidJSON() throws {
        let root = "\(base)/config"
        let cfg = ["--config-root", root]
        try ok(cfg + ["config", "set", "flags", #"{"a":1}"#])
        // Round 1 saves invalid JSON: the error, then the editor again on that text; round 2 fixes it.
        let r = try edit(cfg + ["config", "edit", "flags"], editor: try editor([
            #"grep -q '"a": 1' "$1" && printf '{"a": 2,' > "$1""#,
            #"[ "$(cat "$1")" = '{"a": 2,' ] && printf '{"a": 2, "b": [true]}\n' > "$1""#,
        ]))
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertTrue(r.stderrText.hasPrefix("zkctl: config key 'flags': invalid JSON at offset "), r.stderrText)
        XCTAssertTrue(r.stderrText.hasSuffix("; opening the editor again\n"), r.stderrText)
        XCTAssertEqual(try ok(["get", "\(root)/flags"]), #"{"a":2,"b":[true]}"#)

        // Invalid JSON saved unchanged a second time: 65, nothing written.
        try? FileManager.default.removeItem(at: scratch.appendingPathComponent("count"))
        let gaveUp = try edit(cfg + ["config", "edit", "flags"], editor: try editor([#"printf 'nope' > "$1""#, ":"]))
        XCTAssertEqual(gaveUp.status, 65, gaveUp.stderrText)
        XCTAssertTrue(gaveUp.stderrText.hasSuffix("; nothing was written\n"), gaveUp.stderrText)
        XCTAssertEqual(gaveUp.stderrText.filter { $0 == "\n" }.count, 2, gaveUp.stderrText)
        XCTAssertEqual(try ok(["get", "\(root)/flags"]), #"{"a":2,"b":[true]}"#)
        // Whitespace only: no change.
        try? FileManager.default.removeItem(at: scratch.appendingPathComponent("count"))
        let same = try edit(cfg + ["config", "edit", "flags"], editor: try editor([#"printf '{ "a" : 2 , "b" : [ true ] }' > "$1""#]))
        XCTAssertEqual(same.status, 0)
        XCTAssertEqual(same.stderrText, "zkctl: config key 'flags': no change; nothing was written\n")
        XCTAssertEqual(try fails(cfg + ["config", "edit", "absent"], 1), "zkctl: config key 'absent' not found (\(root)/absent)\n")
    }
}
