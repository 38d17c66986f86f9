import XCTest
@testable import ZKCtl

/// Typed options read through their declarations, the tokens argv is split into, and the global
/// options' facts (defaults, variables, config-file keys) taken from one place.
final class OptionTests: XCTestCase {
    enum Sample {
        static let stat = Option<Bool>(flag: "stat", help: "s")
        static let depth = Option<Int?>("depth", short: "d", range: 0...10, help: "d")
        static let limit = Option<Int>("limit", range: 1...9, help: "l", default: 5)
        static let wait = Option<Duration?>(duration: "wait", help: "w")
        static let grace = Option<Duration>(duration: "grace", help: "g", default: "2s")
        static let name = Option<String?>("name", value: "N", help: "n")
        static let format = Option<String>("format", value: "F", type: .choice(["a", "b"]), help: "f", default: "a")
        static let tag = Option<[String]>(list: "tag", value: "T", help: "t")
        static let verbose = Option<Int>(count: "verbose", short: "v", help: "v")
    }

    static let root = CommandSpec(
        "zkctl", summary: "test",
        options: [Sample.verbose.spec],
        subcommands: [
            CommandSpec("run", summary: "r",
                        options: [Sample.stat.spec, Sample.depth.spec, Sample.limit.spec, Sample.wait.spec, Sample.grace.spec,
                                  Sample.name.spec, Sample.format.spec, Sample.tag.spec],
                        handler: { _ in 0 }),
        ])

    func parse(_ args: String...) throws -> ParsedCommand {
        try Parser.parse(args, root: Self.root)
    }

    func testValuesAreTypedAndDefaultsComeFromTheDeclaration() throws {
        let none = try parse("run")
        XCTAssertFalse(none[Sample.stat])
        XCTAssertNil(none[Sample.depth])
        XCTAssertEqual(none[Sample.limit], 5)
        XCTAssertNil(none[Sample.wait])
        XCTAssertEqual(none[Sample.grace], .seconds(2))
        XCTAssertNil(none[Sample.name])
        XCTAssertEqual(none[Sample.format], "a")
        XCTAssertEqual(none[Sample.tag], [])
        XCTAssertEqual(none[Sample.verbose], 0)

        let all = try parse("-vv", "run", "--stat", "-d3", "--limit=7", "--wait", "500ms", "--grace", "1m",
                            "--name", "x", "--format", "b", "--tag", "p", "--tag=q")
        XCTAssertTrue(all[Sample.stat])
        XCTAssertEqual(all[Sample.depth], 3)
        XCTAssertEqual(all[Sample.limit], 7)
        XCTAssertEqual(all[Sample.wait], .milliseconds(500))
        XCTAssertEqual(all[Sample.grace], .seconds(60))
        XCTAssertEqual(all[Sample.name], "x")
        XCTAssertEqual(all[Sample.format], "b")
        XCTAssertEqual(all[Sample.tag], ["p", "q"])
        XCTAssertEqual(all[Sample.verbose], 2)
        XCTAssertTrue(Sample.tag.spec.repeatable)
        XCTAssertTrue(Sample.verbose.spec.repeatable)
        XCTAssertFalse(Sample.name.spec.repeatable)
    }

    func testANonRepeatableOptionGivenTwiceKeepsTheLastValue() throws {
        let p = try parse("run", "--name", "first", "--name", "second", "-d", "1", "-d2")
        XCTAssertEqual(p[Sample.name], "second")
        XCTAssertEqual(p[Sample.depth], 2)
        XCTAssertEqual(Sample.name.text(in: p), "second")
    }

    func testArgumentsAreSplitIntoTokensWithTheirPositions() {
        let tokens = Parser.tokens(["--a=b", "-xy", "-", "-5", "--", "w", "--c"])
        XCTAssertEqual(tokens.map(\.kind), [
            .long(name: "a", inline: "b"), .shorts(["x", "y"]), .word, .word, .endOfOptions, .word,
            .long(name: "c", inline: nil),
        ])
        XCTAssertEqual(tokens.map(\.position), Array(0..<7))
        XCTAssertEqual(tokens.map(\.text), ["--a=b", "-xy", "-", "-5", "--", "w", "--c"])
    }

    func testGlobalOptionsStateTheirFactsOnce() {
        // The config file's keys are the global options' keys (and the base path).
        XCTAssertEqual(Settings.fileKeys.map(\.section), ["zookeeper", "zkctl"])
        XCTAssertEqual(Settings.fileKeys[0].keys, ["servers", "path"])
        let declared = CommandTable.globalOptions.compactMap(\.fileKey).filter { $0.section == "zkctl" }.map(\.key)
        XCTAssertEqual(Set(Settings.fileKeys[1].keys), Set(declared))
        // Help shows every server variable, in the order they are read.
        XCTAssertEqual(GlobalOptions.server.spec.environment, Settings.serverVariables.joined(separator: ", then "))
    }

    func testEveryDeclaredVariableIsReadFromTheEnvironment() {
        let names = CommandTable.globalOptions.flatMap(\.environmentVariables)
        XCTAssertTrue(names.contains("ZOOKEEPER_HOSTS"))
        for name in names { setenv(name, "value of \(name)", 1) }
        defer { for name in names { unsetenv(name) } }
        let environment = ZKCtl.settingsEnvironment()
        for name in names { XCTAssertEqual(environment[name], "value of \(name)", name) }
    }
}
