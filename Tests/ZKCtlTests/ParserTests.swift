import XCTest
@testable import ZKCtl

/// Every parser rule and every class of usage error, against a small table of its own and
/// against the real one.
final class ParserTests: XCTestCase {
    static let sample = CommandSpec(
        "zkctl", summary: "test",
        options: [
            OptionSpec("server", short: "s", value: "HOSTS", help: "servers"),
            OptionSpec("verbose", short: "v", help: "more", repeatable: true),
            OptionSpec("quiet", short: "q", help: "less"),
            OptionSpec("output", short: "o", value: "FORMAT", type: .choice(["text", "json"]), help: "format"),
        ],
        subcommands: [
            CommandSpec("get", summary: "get", arguments: [ArgumentSpec("PATH", help: "p", type: .znodePath)],
                        options: [OptionSpec("stat", help: "s"), OptionSpec("depth", short: "d", value: "N", type: .int(0...10), help: "d")],
                        handler: { _ in 0 }),
            CommandSpec("wait", summary: "w", arguments: [ArgumentSpec("TIME", help: "t", type: .duration, optional: true)],
                        handler: { _ in 0 }),
            CommandSpec("set", summary: "set", arguments: [ArgumentSpec("KEY", help: "k"), ArgumentSpec("VALUE", help: "v", variadic: true)],
                        options: [OptionSpec("tag", value: "T", help: "t", repeatable: true)], handler: { _ in 0 }),
            CommandSpec("run", summary: "r", arguments: [ArgumentSpec("NAME", help: "n")], takesCommand: true, handler: { _ in 0 }),
            CommandSpec("group", summary: "g", subcommands: [
                CommandSpec("leaf", summary: "l", handler: { _ in 0 }),
            ]),
        ])

    func parse(_ args: String...) throws -> ParsedCommand {
        try Parser.parse(args, root: Self.sample)
    }

    func usageError(_ args: String...) -> String {
        do {
            _ = try Parser.parse(args, root: Self.sample)
            return "no error"
        } catch {
            return error.description
        }
    }

    func testLongOptionsWithSpaceAndEquals() throws {
        let a = try parse("get", "/a", "--depth", "3")
        XCTAssertEqual(a.path, ["get"])
        XCTAssertEqual(a.last("depth"), "3")
        let b = try parse("get", "--depth=4", "/a")
        XCTAssertEqual(b.last("depth"), "4")
        XCTAssertEqual(b.positionals, ["/a"])
        let c = try parse("set", "k", "v", "--tag=a=b")
        XCTAssertEqual(c.last("tag"), "a=b", "only the first '=' splits")
    }

    func testShortOptionsBundledAndAttached() throws {
        let a = try parse("-qv", "get", "/a", "-d2")
        XCTAssertTrue(a.has("quiet"))
        XCTAssertEqual(a.count("verbose"), 1)
        XCTAssertEqual(a.last("depth"), "2")
        let b = try parse("-vvs", "h:1", "get", "/a")
        XCTAssertEqual(b.count("verbose"), 2)
        XCTAssertEqual(b.last("server"), "h:1")
        let c = try parse("get", "/a", "-d", "5")
        XCTAssertEqual(c.last("depth"), "5")
    }

    func testGlobalOptionsBeforeAndAfterTheCommand() throws {
        let a = try parse("-s", "x:1", "get", "/a")
        let b = try parse("get", "/a", "-s", "x:1")
        let c = try parse("get", "--server=x:1", "/a")
        for p in [a, b, c] {
            XCTAssertEqual(p.last("server"), "x:1")
            XCTAssertEqual(p.positionals, ["/a"])
        }
    }

    func testRepeatedOptionsKeepEveryValueAndTheLastWins() throws {
        let a = try parse("set", "k", "v", "--tag", "a", "--tag", "b", "-o", "text", "-o", "json")
        XCTAssertEqual(a.values["tag"], ["a", "b"])
        XCTAssertEqual(a.last("output"), "json")
    }

    func testDoubleDashEndsOptions() throws {
        let a = try parse("set", "k", "--", "--not-an-option", "-x")
        XCTAssertEqual(a.positionals, ["k", "--not-an-option", "-x"])
        let b = try parse("run", "job", "-v", "--", "sh", "-c", "exit 3")
        XCTAssertEqual(b.positionals, ["job"])
        XCTAssertEqual(b.command, ["sh", "-c", "exit 3"])
        XCTAssertEqual(b.count("verbose"), 1)
    }

    func testNegativeNumbersAreValues() throws {
        let a = try parse("set", "k", "-5")
        XCTAssertEqual(a.positionals, ["k", "-5"])
        let b = try parse("set", "k", "-1.5e3")
        XCTAssertEqual(b.positionals, ["k", "-1.5e3"])
    }

    func testVariadicAndOptionalArguments() throws {
        XCTAssertEqual(try parse("set", "k", "a", "b", "c").positionals, ["k", "a", "b", "c"])
        XCTAssertEqual(try parse("wait").positionals, [])
        XCTAssertEqual(try parse("wait", "1h30m").positionals, ["1h30m"])
    }

    func testHelpAnywhere() throws {
        XCTAssertTrue(try parse("get", "--help").helpRequested)
        XCTAssertTrue(try parse("-h").helpRequested)
        XCTAssertTrue(try parse("group", "leaf", "-h").helpRequested)
        XCTAssertTrue(try parse("group", "--help").helpRequested, "help on a group needs no subcommand")
    }

    func testUnknownCommandSuggestsTheClosest() {
        XCTAssertEqual(usageError("gte", "/a"), "unknown command 'gte' (did you mean 'get'?); see 'zkctl --help'")
        XCTAssertEqual(usageError("frobnicate"), "unknown command 'frobnicate'; see 'zkctl --help'")
        XCTAssertEqual(usageError("group", "lef"), "unknown subcommand 'lef' for 'group' (did you mean 'leaf'?); see 'zkctl group --help'")
    }

    func testUnknownOptionSuggestsTheClosest() {
        XCTAssertEqual(usageError("get", "/a", "--dept", "2"), "unknown option '--dept' for 'get' (did you mean '--depth'?); see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "--sever", "x"), "unknown option '--sever' for 'get' (did you mean '--server'?); see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "-x"), "unknown option '-x'; see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "-qx"), "unknown option '-x' in '-qx'; see 'zkctl get --help'")
    }

    func testCommandOptionsAreNotAcceptedBeforeTheCommand() {
        XCTAssertEqual(usageError("--stat", "get", "/a"), "unknown option '--stat'; see 'zkctl --help'")
    }

    func testMissingAndExtraArguments() {
        XCTAssertEqual(usageError("get"), "missing argument PATH for 'get'; see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "/b"), "unexpected argument '/b' for 'get'; see 'zkctl get --help'")
        XCTAssertEqual(usageError("group"), "'group' needs a subcommand (leaf); see 'zkctl group --help'")
    }

    func testOptionValueProblems() {
        XCTAssertEqual(usageError("get", "/a", "--depth"), "option '--depth' needs a value (N); see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "-d"), "option '-d' needs a value (N); see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "--stat=yes"), "option '--stat' takes no value; see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "--depth", "x"), "bad value 'x' for '--depth': not a whole number; see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "--depth", "11"), "bad value '11' for '--depth': must be from 0 to 10; see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a", "-o", "jsno"), "bad value 'jsno' for '-o': must be one of text, json (did you mean 'json'?); see 'zkctl get --help'")
        XCTAssertEqual(usageError("wait", "10 parsecs"), "bad TIME '10 parsecs': not a duration (like 500ms, 10s, 5m, 24h); see 'zkctl wait --help'")
    }

    func testBadPathArguments() {
        XCTAssertEqual(usageError("get", "a/b"), "bad PATH 'a/b': a path must start with '/'; see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a//b"), "bad PATH '/a//b': empty segment ('//'); see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a//"), "bad PATH '/a//': empty segment ('//'); see 'zkctl get --help'")
        XCTAssertEqual(usageError("get", "/a/../b"), "bad PATH '/a/../b': relative segment '..'; see 'zkctl get --help'")
    }

    func testDurations() {
        XCTAssertEqual(parseDuration("500ms"), .milliseconds(500))
        XCTAssertEqual(parseDuration("10s"), .seconds(10))
        XCTAssertEqual(parseDuration("1.5"), .milliseconds(1500))
        XCTAssertEqual(parseDuration("5m"), .seconds(300))
        XCTAssertEqual(parseDuration("24h"), .seconds(86_400))
        XCTAssertEqual(parseDuration("1h30m"), .seconds(5_400))
        XCTAssertEqual(parseDuration("2d"), .seconds(172_800))
        for bad in ["", "s", "10x", "-1s", "-5", "1e99", "ten seconds", "5 m"] {
            XCTAssertNil(parseDuration(bad), bad)
        }
    }

    func testEditDistance() {
        XCTAssertEqual(Parser.editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(Parser.editDistance("", "abc"), 3)
        XCTAssertEqual(Parser.suggestion(for: "stauts", among: ["status", "tree"]), "status")
        XCTAssertNil(Parser.suggestion(for: "xyz", among: ["status", "tree"]))
    }

    // MARK: The real table

    func testRealTableNamesAreUniqueAndDocumented() {
        let root = CommandTable.root
        let globalLongs = Set(root.options.map(\.long))
        let globalShorts = Set(root.options.compactMap(\.short))
        XCTAssertEqual(globalLongs.count, root.options.count, "global long names are unique")
        func check(_ spec: CommandSpec, path: [String]) {
            let name = path.joined(separator: " ")
            XCTAssertFalse(spec.summary.isEmpty, "\(name) has a summary")
            let longs = spec.options.map(\.long)
            XCTAssertEqual(Set(longs).count, longs.count, "\(name): option names are unique")
            let shorts = spec.options.compactMap(\.short)
            XCTAssertEqual(Set(shorts).count, shorts.count, "\(name): short names are unique")
            for o in spec.options {
                XCTAssertFalse(o.help.isEmpty, "\(name) --\(o.long) has help")
                if !path.isEmpty {
                    XCTAssertFalse(globalLongs.contains(o.long), "\(name) --\(o.long) reuses a global option's name")
                    if let s = o.short { XCTAssertFalse(globalShorts.contains(s), "\(name) -\(s) reuses a global short option") }
                }
                XCTAssertNotEqual(o.long, "help")
            }
            for a in spec.arguments { XCTAssertFalse(a.help.isEmpty, "\(name) \(a.name) has help") }
            let subs = spec.subcommands.map(\.name) + spec.subcommands.flatMap(\.aliases)
            XCTAssertEqual(Set(subs).count, subs.count, "\(name): subcommand names are unique")
            XCTAssertTrue(spec.handler != nil || !spec.subcommands.isEmpty, "\(name) does something")
            for s in spec.subcommands { check(s, path: path + [s.name]) }
        }
        check(root, path: [])
    }

    /// The root's entries repeat each command's name, aliases and `hidden` so that the parser
    /// need not build the others: they must agree with the specs, name every family's command
    /// once and in the families' order, and find each command by every name it answers to.
    func testRootEntriesAgreeWithTheCommandsTheyBuild() {
        let built = CommandTable.root.subcommands
        XCTAssertEqual(built.map(\.name), CommandTable.families.map(\.name))
        XCTAssertEqual(built.map(\.aliases), CommandTable.families.map(\.aliases))
        XCTAssertEqual(built.map(\.hidden), CommandTable.families.map(\.hidden))
        XCTAssertEqual(CommandTable.root.visibleSubcommandNames, built.filter { !$0.hidden }.map(\.name))
        for spec in CommandTable.families {
            for word in [spec.name] + spec.aliases {
                XCTAssertEqual(CommandTable.root.subcommand(named: word)?.name, spec.name, "'\(word)' finds \(spec.name)")
            }
        }
        XCTAssertNil(CommandTable.root.subcommand(named: "gett"))
    }

    func testHelpListsEveryVisibleCommand() {
        let text = Help.text(for: [], root: CommandTable.root)
        for c in CommandTable.root.subcommands where !c.hidden {
            XCTAssertTrue(text.contains("  \(c.name) "), "top-level help lists \(c.name)")
        }
        let tree = Help.text(for: ["tree"], root: CommandTable.root)
        XCTAssertTrue(tree.contains("Usage: zkctl tree [OPTIONS] [PATH]"), tree)
        XCTAssertTrue(tree.contains("--depth N"), tree)
        XCTAssertTrue(tree.contains("Examples:"), tree)
    }

    func testRealTableParsesSeedExamples() throws {
        let root = CommandTable.root
        let p = try Parser.parse(["tree", "/config", "--depth", "3"], root: root)
        XCTAssertEqual(p.path, ["tree"])
        XCTAssertEqual(p.positionals, ["/config"])
        XCTAssertEqual(p.last("depth"), "3")
        let q = try Parser.parse(["-o", "json", "status"], root: root)
        XCTAssertEqual(q.last("output"), "json")
    }
}
