import Foundation
import XCTest
import ZKTestSupport

/// Malformed invocations and inputs, one table: unknown flags, missing and extra arguments, bad
/// durations and numbers, invalid and truncated JSON, huge values, NUL bytes, invalid UTF-8,
/// odd paths, control characters, unsafe names, malformed server lists, URLs, config files and
/// export files. For each: the exact exit code, exactly one `zkctl: ` line on stderr and nothing
/// on stdout, no crash, and the test's subtree on the server exactly as it was.
final class HostileInputTests: XCTestCase {

    /// One malformed invocation. In `args`, `env` values and `files`' names, `{dir}` is the test's
    /// scratch directory and `{root}` its znode subtree.
    struct Case {
        var args: [String]
        var code: Int32
        var stdin: Data? = nil
        var env: [String: String] = [:]
        /// Files to write under `{dir}` first: name and content.
        var files: [(String, Data)] = []
        /// A piece of the message to find on stderr.
        var says: String? = nil
        /// Whether the test's `-s SERVER` and roots go first (false for cases about the
        /// environment, which flags would override).
        var prefixed = true
    }

    static let bigValue = Data(repeating: UInt8(ascii: "x"), count: 1_100_000)
    static let bigJSON = Data(("\"" + String(repeating: "y", count: 1_100_000) + "\"").utf8)
    static let validExportHead = #"{"format":"zkctl-export","version":1,"root":"/imp","exported":"2026-01-01T00:00:00.000Z","nodes":["#
    static let openACL = #""acl":[{"scheme":"world","id":"anyone","perms":"cdrwa"}]"#

    static func export(_ nodes: String, tail: String = #"],"nodeCount":1,"skippedEphemeral":0}"#) -> Data {
        Data((validExportHead + nodes + tail).utf8)
    }

    static func bytes(_ s: String) -> Data { Data(s.utf8) }

    /// The table.
    static var cases: [Case] {
        var c: [Case] = []
        func add(_ code: Int32, _ args: [String], stdin: Data? = nil, env: [String: String] = [:],
                 files: [(String, Data)] = [], says: String? = nil, prefixed: Bool = true) {
            c.append(Case(args: args, code: code, stdin: stdin, env: env, files: files, says: says, prefixed: prefixed))
        }

        // Unknown commands and flags.
        add(64, ["nope"], says: "unknown command 'nope'")
        add(64, ["confg", "list"], says: "did you mean 'config'")
        add(64, ["config", "lst"], says: "unknown subcommand")
        add(64, ["--nope", "status"], says: "unknown option '--nope'")
        add(64, ["tree", "--depht", "3"], says: "did you mean '--depth'")
        add(64, ["-Z", "tree"], says: "unknown option '-Z'")
        add(64, ["tree", "-Zq"], says: "unknown option '-Z'")
        add(64, ["config", "set", "k", "v", "--nope"])
        add(64, ["config", "list", "--keys=yes"], says: "takes no value")
        add(64, ["--json=1", "config", "list"], says: "takes no value")
        add(64, ["get", "{root}/data/a", "--base64=no"])
        add(64, ["service", "list", "--bogus"])
        add(64, ["lock", "--nowait", "x", "--", "true"])
        add(64, ["import", "{dir}/ok.json", "--force-it"])
        add(64, ["---", "status"])
        add(64, ["-"], says: "unknown command '-'")
        add(64, ["config", "-", "list"])
        add(64, ["", "status"])
        add(64, ["config", ""])
        add(64, ["help", "nope"])
        add(64, ["export", "{root}", "--file"], says: "needs a value")
        add(64, ["-o"], says: "needs a value")
        add(64, ["-s"], says: "needs a value")
        add(64, ["tree", "--depth"], says: "needs a value")

        // Output formats.
        add(64, ["-o", "yaml", "config", "list"], says: "must be one of")
        add(64, ["-o", "", "config", "list"])
        add(64, ["--output=JSON", "config", "list"])
        add(64, ["config", "list"], env: ["ZKCTL_OUTPUT": "xml"], says: "ZKCTL_OUTPUT")

        // Missing and extra arguments.
        add(64, ["config"], says: "needs a subcommand")
        add(64, ["service"], says: "needs a subcommand")
        add(64, ["acl"], says: "needs a subcommand")
        add(64, ["config", "get"], says: "missing argument")
        add(64, ["config", "set"], says: "missing argument")
        add(64, ["config", "remove"], says: "missing argument")
        add(64, ["get"], says: "missing argument PATH")
        add(64, ["set"], says: "missing argument")
        add(64, ["create"], says: "missing argument")
        add(64, ["delete"], says: "missing argument")
        add(64, ["stat"], says: "missing argument")
        add(64, ["exists"], says: "missing argument")
        add(64, ["ls"], says: "missing argument")
        add(64, ["watch"], says: "missing argument")
        add(64, ["import"], says: "missing argument FILE")
        add(64, ["diff", "{root}/data"], says: "missing argument")
        add(65, ["digest"], says: "user:password")  // reads USER:PASSWORD from stdin, here empty
        add(64, ["lock"], says: "missing argument")
        add(64, ["lock", "name"])
        add(64, ["lock", "name", "--"])
        add(64, ["run-once", "name"])
        add(64, ["service", "register", "svc", "127.0.0.1"], says: "missing argument PORT")
        add(64, ["service", "register", "svc"], says: "missing argument")
        add(64, ["service", "discover"], says: "missing argument")
        add(64, ["acl", "set", "{root}/data/a"], says: "missing argument")
        add(64, ["acl", "get"], says: "missing argument")
        add(64, ["get", "{root}/data/a", "{root}/data/b"], says: "unexpected argument")
        add(64, ["tree", "{root}", "{root}/data"], says: "unexpected argument")
        add(64, ["exists", "{root}/data/a", "extra"], says: "unexpected argument")
        add(64, ["config", "list", "extra"], says: "unexpected argument")
        add(64, ["status", "extra"], says: "unexpected argument")
        add(64, ["diff", "{root}/data", "{root}/data", "{root}/data"], says: "unexpected argument")
        add(64, ["import", "{dir}/ok.json", "{dir}/ok.json"], says: "unexpected argument")
        add(64, ["export", "{root}", "{root}"], says: "unexpected argument")
        add(64, ["digest", "u:p", "extra"], says: "unexpected argument")
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "extra"])
        add(64, ["set", "{root}/data/a", "v", "--file", "{dir}/value.json"])
        add(64, ["create", "{root}/data/new", "v", "--file", "{dir}/value.json"])
        add(64, ["config", "set", "k", "--if-absent", "--if-version", "1", "v"])
        add(64, ["create", "{root}/data/new", "--ttl", "1m", "--container"])
        add(64, ["import", "{dir}/ok.json", "--overwrite", "--skip-existing"])
        add(64, ["service", "deregister", "svc"])
        add(64, ["run-once", "task", "--every", "1h", "--key", "k", "--", "true"])

        // Bad durations.
        for bad in ["0", "0s", "-1s", "10x", "", "s", "1.2.3s", "1e400", "99999999999", "1h-5m", "nan", "inf", "5 s", "١٠s", "1_000ms"] {
            add(64, ["--timeout", bad, "config", "list"], says: "timeout")
        }
        add(64, ["config", "list"], env: ["ZKCTL_TIMEOUT": "soon"], says: "ZKCTL_TIMEOUT")
        add(64, ["lock", "--wait", "forever", "x", "--", "true"], says: "--wait")
        add(64, ["lock", "--wait", "-5s", "x", "--", "true"])
        add(64, ["lock", "--grace", "1y", "x", "--", "true"])
        add(64, ["create", "{root}/data/new", "--ttl", "tomorrow"])
        add(64, ["create", "{root}/data/new", "--ttl", "0"])
        add(64, ["run-once", "task", "--every", "x", "--", "true"])
        add(64, ["run-once", "task", "--every", "0s", "--", "true"])

        // Bad numbers.
        for bad in ["0", "-1", "100001", "abc", "", "1.5", "99999999999999999999", "0x10", " 5"] {
            add(64, ["--max-inflight", bad, "config", "list"], says: "max-inflight")
        }
        add(64, ["config", "list"], env: ["ZKCTL_MAX_INFLIGHT": "lots"], says: "ZKCTL_MAX_INFLIGHT")
        for bad in ["-1", "1.5", "x", "99999999999999999999"] {
            add(64, ["tree", "{root}", "--depth", bad], says: "depth")
        }
        for bad in ["0", "65536", "-1", "http", "80.5", "", "99999999999999999999"] {
            add(64, ["service", "register", "svc", "127.0.0.1", bad], says: "PORT")
        }
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "--ssl-port", "70000"])
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "--ssl-port", "zero"])
        add(64, ["config", "set", "k", "v", "--if-version", "abc"], says: "--if-version")
        add(64, ["config", "set", "k", "v", "--if-version", "99999999999999999999"])
        add(64, ["set", "{root}/data/a", "v", "--if-version", "1.0"])
        add(64, ["delete", "{root}/data/a", "--if-version", "x"])

        // Invalid and truncated JSON values.
        for bad in [#"{"a":"#, "[1,2", #"{"a" 1}"#, "{'a':1}", "[1,]", #"{"a":1,}"#, "01", "1.", #""unterminated"#,
                    #"{"a":"\u12"}"#, #""\x""#, "[" + String(repeating: "[", count: 10_000), #"{"a":1}{"b":2}"#, "-1.", "1e", "[1 2]", "{\"a\"}"] {
            add(65, ["config", "set", "k", bad])
        }
        add(65, ["config", "set", "k", "--merge", "[1,2]"], says: "object")
        add(65, ["config", "set", "k", "--merge", #"{"a":"#])
        add(65, ["config", "set", "k", "--merge", "42"])
        add(65, ["config", "set", "k", "field", "--merge", "nope{"])
        add(65, ["config", "set", "k", "field", "{bad"])
        add(65, ["service", "register", "svc", "127.0.0.1", "80", "--metadata", "[1]"], says: "object")
        add(65, ["service", "register", "svc", "127.0.0.1", "80", "--metadata", "{"])
        add(65, ["service", "register", "svc", "127.0.0.1", "80", "--metadata", "null"])
        add(65, ["config", "set", "k", "-"], stdin: bytes(#"{"a": [1, 2"#))
        add(65, ["config", "set", "k", "-"], stdin: bytes("{\"a\":\"b\u{0}\"}"), says: nil)
        add(65, ["config", "set", "k", "-"], stdin: Data([0x22, 0xff, 0xfe, 0x22]))
        add(65, ["config", "set", "k", "-"], stdin: Data([0x7b, 0x00, 0x7d]))
        add(65, ["config", "set", "k", "--file", "{dir}/truncated.json"], files: [("truncated.json", bytes(#"{"a":{"b":[1,2,{"c":"#))])
        add(65, ["config", "set", "k", "--file", "{dir}/nul.json"], files: [("nul.json", Data([0x5b, 0x31, 0x00, 0x5d]))])
        add(65, ["config", "set", "k", "--file", "{dir}/bad-utf8.json"], files: [("bad-utf8.json", Data([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]))])
        add(65, ["config", "set", "k", "--file", "{dir}/bom.json"], files: [("bom.json", Data([0xef, 0xbb, 0xbf]) + bytes("{")) ])

        // Huge values (over the packet limit): refused before anything is sent.
        add(65, ["config", "set", "k", "-"], stdin: bigJSON)
        add(65, ["config", "set", "k", "--raw", "-"], stdin: bigValue)
        add(65, ["config", "set", "k", "--file", "{dir}/big.json"], files: [("big.json", bigJSON)])
        add(65, ["set", "{root}/data/a", "--file", "{dir}/big.bin"], files: [("big.bin", bigValue)])
        add(65, ["create", "{root}/data/new", "--file", "-"], stdin: bigValue)
        add(65, ["config", "set", "k", "field", "--file", "{dir}/big.json"])
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "--id", String(repeating: "i", count: 120_000)])
        add(64, ["config", "set", "k", "-1-"], says: "unknown option")  // not a number, so an option
        // Long names are fine for ZooKeeper (only the packet limit counts): not found, nothing written.
        add(1, ["config", "get", String(repeating: "k", count: 120_000)])
        add(1, ["get", "/" + String(repeating: "p", count: 120_000)])

        // Paths.
        for bad in ["//", "{root}//data", "{root}/data//", "relative", "{root}/./data", "{root}/../x", "{root}/data/..", "/a\u{0}b".replacingOccurrences(of: "\u{0}", with: "\u{1}"),
                    "{root}/da\u{7f}ta", "{root}/\u{1b}[31m", "{root}/a\nb", "{root}/a\tb", "{root}/\u{fffe}", "{root}/\u{d7ff}\u{e000}\u{1}", ""] {
            add(64, ["get", bad])
        }
        add(64, ["create", "{root}/data//x"])
        add(64, ["create", "{root}/data/x//"])
        add(64, ["set", "{root}/data/../data/a", "v"])
        add(64, ["delete", "-r", "{root}/data/."])
        add(64, ["tree", "{root}//"])
        add(64, ["ls", "{root}/data//"])
        add(64, ["export", "{root}/.."])
        add(64, ["import", "{dir}/ok.json", "--to", "{root}/imp//"])
        add(64, ["import", "{dir}/ok.json", "--to", "rel"])
        add(64, ["acl", "set", "{root}//data", "world:anyone:r"])
        add(64, ["watch", "{root}/data//"])
        add(64, ["config", "list"], env: ["ZKCTL_CONFIG_ROOT": "config"], says: "ZKCTL_CONFIG_ROOT", prefixed: false)
        add(64, ["--config-root", "{root}/config//", "config", "list"], says: "config-root")
        add(64, ["--services-root", "//", "service", "list"])
        add(64, ["--locks-root", "{root}/../locks", "lock", "x", "--", "true"])
        add(64, ["--tasks-root", "tasks", "run-once", "x", "--", "true"])

        // Names that are unsafe path segments or hold control characters.
        for bad in ["", ".", "..", "a/b", "/a", "a\nb", "a\u{0}b".replacingOccurrences(of: "\u{0}", with: "\u{2}"), "tab\there", "\u{7f}", "zookeeper/../x"] {
            add(64, ["config", "set", bad, "1"])
        }
        add(64, ["config", "get", ".."])
        add(64, ["config", "remove", "."])
        add(64, ["config", "set", "a//b", "1", "--nested"])
        add(64, ["config", "set", "a/../b", "1", "--nested"])
        add(64, ["config", "set", "a/b/", "1", "--nested"])
        add(64, ["config", "watch", "a\u{1}"])
        for bad in ["..", ".", "a/b", "", "svc\n"] {
            add(64, ["service", "register", bad, "127.0.0.1", "80"])
        }
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "--id", ".."])
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "--id", "a/b"])
        add(64, ["service", "register", "svc", "", "80"])
        add(64, ["service", "register", "svc", "bad host", "80"])
        add(64, ["service", "register", "svc", "127.0.0.1", "80", "--scheme", "ht tp"])
        add(64, ["service", "discover", ".."])
        add(64, ["service", "deregister", "svc", "a/b"])
        for bad in ["..", "a//b", "/abs", "a/", "", "x\u{1}"] {
            add(64, ["lock", bad, "--", "true"])
        }
        add(64, ["run-once", "..", "--", "true"])
        add(64, ["run-once", "task", "--key", "a/b", "--", "true"])

        // ACL specs and credentials.
        for bad in ["bad", "world:anyone", "world:anyone:xyz", "world:bob:r", "digest:user:cdrwa", "foo:bar:r", ":anyone:r", "world:anyone:", "ip:1.2.3.4:rw x"] {
            add(64, ["create", "{root}/data/new", "--acl", bad], says: "ACL")
        }
        add(64, ["acl", "set", "{root}/data/a", "nonsense"])
        add(64, ["--auth", "nocolon", "config", "list"], says: "user:password")
        add(64, ["--auth", ":pw", "config", "list"], says: "user:password")
        add(64, ["config", "list"], env: ["ZKCTL_AUTH": "nocolon"], says: "ZKCTL_AUTH")
        add(66, ["--auth-file", "{dir}/missing", "config", "list"], says: "missing")
        add(64, ["--auth-file", "{dir}/empty-auth", "config", "list"], files: [("empty-auth", bytes("# nothing\n\n"))], says: "user:password")
        add(64, ["--auth-file", "{dir}/nul-auth", "config", "list"], files: [("nul-auth", Data([0x00, 0x00]))])
        add(64, ["digest", "nocolon"])

        // Malformed server lists and URLs.
        for bad in ["", ",", "h:", "h:0", "h:65536", "h:abc", "[::1", "[::1]x", "h1,,h2", "h/ch//root", "h/chroot/", "h/./x", "h/a\u{1}",
                    "http://h:1", "zookeeper://", "zookeeper:relative", "zookeeper:../up", "h 1:2181", "user@h:1", "h:-1", "h:2181:2182",
                    "zookeeper://h:1//x", "zookeeper:///a/../b"] {
            add(64, ["-s", bad, "config", "list"], says: "server")
        }
        add(64, ["config", "list"], env: ["ZKCTL_SERVERS": "h:99999"], says: "ZKCTL_SERVERS", prefixed: false)
        add(64, ["config", "list"], env: ["ZOOKEEPER_HOSTS": ",,"], says: "ZOOKEEPER_HOSTS", prefixed: false)
        add(64, ["config", "list"], env: ["ASAB_ZOOKEEPER_SERVERS": "ftp://x"], says: "ASAB_ZOOKEEPER_SERVERS", prefixed: false)

        // Config files.
        add(66, ["--config", "{dir}/no-such.ini", "config", "list"], says: "no-such.ini")
        add(66, ["--config", "{dir}", "config", "list"])
        add(66, ["config", "list"], env: ["ZKCTL_CONFIG": "{dir}/no-such.ini"], says: "no-such.ini")
        for (name, text) in [("header.ini", "[zookeeper\nservers=h:1\n"), ("outside.ini", "servers = h:1\n"), ("noeq.ini", "[zookeeper]\nservers\n"),
                             ("emptykey.ini", "[zkctl]\n= 5s\n"), ("emptysection.ini", "[]\n")] {
            // A config file's content is a usage matter (64), as the lead decided for a non-UTF-8 one;
            // DESIGN.md section 6 lists "a file that does not parse" under 65.
            add(64, ["--config", "{dir}/\(name)", "config", "list"], files: [(name, bytes(text))], says: name)
        }
        // A NUL byte would cut the host name short in the C client: refused, not truncated.
        add(64, ["--config", "{dir}/nul.ini", "config", "list"], files: [("nul.ini", bytes("[zookeeper]\nservers = 127.0.0.1\u{0}.invalid:2181\n"))],
            says: "nul.ini", prefixed: false)
        add(64, ["--config", "{dir}/utf8.ini", "config", "list"], files: [("utf8.ini", Data([0x5b, 0x7a, 0x6b, 0xff, 0x5d, 0x0a]))])
        add(64, ["--config", "{dir}/badservers.ini", "config", "list"], files: [("badservers.ini", bytes("[zookeeper]\nservers = h:0\n"))], says: "badservers.ini", prefixed: false)
        add(64, ["--config", "{dir}/badtimeout.ini", "config", "list"], files: [("badtimeout.ini", bytes("[zkctl]\ntimeout = later\n"))], says: "badtimeout.ini")
        add(64, ["--config", "{dir}/badroot.ini", "config", "list"], files: [("badroot.ini", bytes("[zkctl]\nconfig-root = rel\n"))], says: "badroot.ini", prefixed: false)
        add(64, ["--config", "{dir}/badout.ini", "config", "list"], files: [("badout.ini", bytes("[zkctl]\noutput = html\n"))], says: "badout.ini")
        add(64, ["--config", "{dir}/badpath.ini", "config", "list"], files: [("badpath.ini", bytes("[zookeeper]\nservers = 127.0.0.1:1\npath = a//b\n"))], prefixed: false)

        // Malformed export files: exit 65 and nothing written.
        let node = #"{"path":"a","type":"persistent","data":"x","# + openACL + "}"
        let exports: [(String, Data)] = [
            ("notjson", bytes("this is not json")),
            ("empty", Data()),
            ("truncated", export(node, tail: "")),
            ("truncated-mid", Data(export(node).prefix(60))),
            ("array", bytes("[1,2,3]")),
            ("string", bytes("\"zkctl-export\"")),
            ("format", bytes(#"{"format":"other","version":1,"root":"/imp","nodes":[]}"#)),
            ("version", bytes(#"{"format":"zkctl-export","version":2,"root":"/imp","nodes":[]}"#)),
            ("version-string", bytes(#"{"format":"zkctl-export","version":"1","root":"/imp","nodes":[]}"#)),
            ("no-nodes", bytes(#"{"format":"zkctl-export","version":1,"root":"/imp"}"#)),
            ("nodes-object", bytes(#"{"format":"zkctl-export","version":1,"root":"/imp","nodes":{}}"#)),
            ("bad-root", bytes(#"{"format":"zkctl-export","version":1,"root":"imp","nodes":[]}"#)),
            ("root-dotdot", bytes(#"{"format":"zkctl-export","version":1,"root":"/a/../b","nodes":[]}"#)),
            ("node-dotdot", export(#"{"path":"../x","type":"persistent","data":"x","# + openACL + "}")),
            ("node-abs", export(#"{"path":"/x","type":"persistent","data":"x","# + openACL + "}")),
            ("node-slashes", export(#"{"path":"a//b","type":"persistent","data":"x","# + openACL + "}")),
            ("node-trailing", export(#"{"path":"a/","type":"persistent","data":"x","# + openACL + "}")),
            ("node-control", export(#"{"path":"a\u0001","type":"persistent","data":"x","# + openACL + "}")),
            ("duplicate", export(node + "," + node)),
            ("orphan", export(#"{"path":"a/b/c","type":"persistent","data":"x","# + openACL + "}")),
            ("no-data", export(#"{"path":"a","type":"persistent","# + openACL + "}")),
            ("both-data", export(#"{"path":"a","type":"persistent","data":"x","dataBase64":"eA==","# + openACL + "}")),
            ("bad-base64", export(#"{"path":"a","type":"persistent","dataBase64":"!!!","# + openACL + "}")),
            ("bad-type", export(#"{"path":"a","type":"ephemeral","data":"x","# + openACL + "}")),
            ("ttl-missing", export(#"{"path":"a","type":"ttl","data":"x","# + openACL + "}")),
            ("ttl-negative", export(#"{"path":"a","type":"ttl","ttl":-5,"data":"x","# + openACL + "}")),
            ("bad-perms", export(#"{"path":"a","type":"persistent","data":"x","acl":[{"scheme":"world","id":"anyone","perms":"xyz"}]}"#)),
            ("acl-not-array", export(#"{"path":"a","type":"persistent","data":"x","acl":"open"}"#)),
            ("acl-empty", export(#"{"path":"a","type":"persistent","data":"x","acl":[]}"#)),
            ("redacted", export(#"{"path":"a","type":"persistent","data":"x","acl":[{"scheme":"digest","id":"u:x","perms":"cdrwa"}]}"#)),
            ("node-not-object", export("42")),
            ("path-number", export(#"{"path":7,"type":"persistent","data":"x","# + openACL + "}")),
            ("nul-byte", export(node).prefix(40) + Data([0]) + export(node).dropFirst(40)),
            ("bad-utf8", export(node).prefix(40) + Data([0xff, 0xfe]) + export(node).dropFirst(40)),
            ("deep", Data(String(repeating: "[", count: 100_000).utf8)),
            ("zkshell-bad-content", bytes(#"{"/imp/a":{"content":"***"}}"#)),
            ("zkshell-bad-path", bytes(#"{"/imp/a/":{"content":"eA=="}}"#)),
            ("zkshell-not-object", bytes(#"{"/imp/a":[1]}"#)),
            ("zkshell-bad-perms", bytes(#"{"/imp/a":{"content":"eA==","acls":[{"perms":99}]}}"#)),
            ("mixed-keys", bytes(#"{"/imp/a":{},"other":1}"#)),
            ("huge-node", export(#"{"path":"a","type":"persistent","data":""# + String(repeating: "h", count: 1_100_000) + #"","# + openACL + "}")),
        ]
        for (name, data) in exports {
            add(65, ["import", "{dir}/\(name).json", "--to", "{root}/imp"], files: [("\(name).json", data)])
        }
        add(65, ["import", "-", "--to", "{root}/imp"], stdin: bytes("{\"format\":"))
        add(65, ["import", "-", "--to", "{root}/imp"], stdin: Data([0, 0, 0, 0]))
        add(65, ["diff", "file:{dir}/garbage.json", "{root}/data"], files: [("garbage.json", bytes("{{{"))])
        add(66, ["import", "{dir}/missing.json"], says: "missing.json")
        add(66, ["import", "{dir}"])
        add(66, ["config", "set", "k", "--file", "{dir}/missing.json"])
        add(66, ["set", "{root}/data/a", "--file", "{dir}/missing.bin"])
        add(66, ["diff", "file:{dir}/missing.json", "{root}/data"])
        add(66, ["diff", "{root}/data", "file:{dir}"])
        return c
    }

    func testMalformedInvocationsAndInputs() throws {
        let server = try SharedServers.standalone()
        let root = "/t-hostile-\(UUID().uuidString.prefix(12).lowercased())"
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "hostile")
        defer { try? FileManager.default.removeItem(at: directory) }
        let dir = directory.path
        let prefix = ["-s", server.connectString, "--config-root", root + "/config", "--services-root", root + "/services",
                      "--locks-root", root + "/locks", "--tasks-root", root + "/tasks"]
        func zk(_ args: [String], stdin: Data? = nil) throws -> ProcessResult {
            try runProcess(zkctlBinaryPath(), prefix + args, environment: faultEnvironment(), stdin: stdin, timeout: 60)
        }
        defer { _ = try? zk(["delete", "-r", "--force", root]) }

        // The subtree every case could touch: keys, a service, data nodes, an imported tree.
        for (args, input) in [(["config", "set", "k", #"{"a":1}"#], nil), (["config", "set", "other", "2"], nil),
                              (["service", "register", "svc", "127.0.0.1", "80", "--id", "i1"], nil),
                              (["create", "-p", root + "/data/a", "va"], nil), (["create", root + "/data/b", "vb"], nil),
                              (["create", root + "/imp"], nil) as ([String], Data?)] {
            let r = try zk(args, stdin: input)
            XCTAssertEqual(r.status, 0, "seeding \(args): \(r.stderrText)")
        }
        try Data((Self.validExportHead + #"{"path":"","type":"persistent","data":"","# + Self.openACL + "}"
                  + #"],"nodeCount":1,"skippedEphemeral":0}"#).utf8).write(to: directory.appendingPathComponent("ok.json"))
        try Data(#"{"v":1}"#.utf8).write(to: directory.appendingPathComponent("value.json"))
        func snapshot() throws -> String {
            let r = try zk(["-o", "json", "tree", root, "--data", "--stat"])
            guard r.status == 0 else { throw FaultKitError("snapshot failed: \(r.stderrText)") }
            return r.stdoutText
        }
        let before = try snapshot()
        var baseline = before

        let cases = Self.cases
        XCTAssertGreaterThanOrEqual(cases.count, 200)
        func fill(_ s: String) -> String {
            s.replacingOccurrences(of: "{dir}", with: dir).replacingOccurrences(of: "{root}", with: root)
        }
        var mismatches = 0
        for (index, c) in cases.enumerated() {
            for (name, data) in c.files {
                try data.write(to: URL(fileURLWithPath: fill("{dir}/" + name)))
            }
            let args = c.args.map(fill)
            let env = faultEnvironment(c.env.mapValues(fill))
            // Cases about the environment or a config file get no flags, which would win over them.
            let full = (c.prefixed ? prefix : []) + args
            let label = "case \(index) \(args.map { $0.count > 80 ? String($0.prefix(40)) + "...(\($0.count) chars)" : $0 }.debugDescription)"
            let r: ProcessResult
            do {
                r = try runProcess(zkctlBinaryPath(), full, environment: env, stdin: c.stdin, timeout: 60)
            } catch {
                XCTFail("\(label): \(error)")
                continue
            }
            if r.status != c.code { mismatches += 1 }
            XCTAssertEqual(r.status, c.code, "\(label): \(r.stderrText.prefix(300).debugDescription)")
            XCTAssertTrue(r.status < 128 && r.status != 70, "\(label): crashed or internal error \(r.status): \(r.stderrText.prefix(500))")
            assertOneErrorLine(r, label)
            if let says = c.says {
                XCTAssertTrue(r.stderrText.contains(fill(says)), "\(label): message should mention \(says.debugDescription): \(r.stderrText.prefix(300))")
            }
            // The data, after every case: exactly as before.
            let now = try snapshot()
            if now != baseline {
                XCTFail("\(label): the subtree changed")
                baseline = now
            }
        }
        XCTAssertEqual(try snapshot(), before, "the test's subtree changed")
        print("HostileInputTests: \(cases.count) malformed invocations, \(mismatches) with another exit code than expected")
    }
}
