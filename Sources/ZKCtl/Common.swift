import FoundationEssentials
import Glibc
import ZooKeeper
import ZooKeeperRecipes

/// Pieces several command families share.
public enum Common {
    /// The `--acl SPEC` option every creating command takes.
    public static let aclOption = Option<[String]>(
        list: "acl", value: "SPEC", help: "ACL entry scheme:id:perms for created nodes (repeatable), e.g. world:anyone:r, digest:user:HASH:cdrwa, auth::cdrwa, ip:10.0.0.1:r.")

    /// Parses ACL specs: `scheme:id:perms`, where the id may itself hold colons
    /// (`digest:user:HASH:cdrwa`) and may be empty (`auth::cdrwa`). Perms are letters of `cdrwa`.
    public static func parseACL(_ specs: [String], command: [String] = []) throws -> [ACL] {
        try specs.map { spec in
            guard let firstColon = spec.firstIndex(of: ":"), let lastColon = spec.lastIndex(of: ":"), firstColon != lastColon else {
                throw UsageError("bad ACL '\(spec)': expected scheme:id:perms", command: command)
            }
            let scheme = String(spec[..<firstColon])
            let id = String(spec[spec.index(after: firstColon)..<lastColon])
            let letters = String(spec[spec.index(after: lastColon)...])
            guard ["world", "digest", "auth", "ip", "sasl", "x509", "super"].contains(scheme) else {
                throw UsageError("bad ACL '\(spec)': unknown scheme '\(scheme)'", command: command)
            }
            guard let perms = Permissions(letters: letters) else {
                throw UsageError("bad ACL '\(spec)': permissions must be letters of cdrwa", command: command)
            }
            if scheme == "digest" && !id.contains(":") {
                throw UsageError("bad ACL '\(spec)': a digest id is user:HASH (see 'zkctl digest')", command: command)
            }
            if scheme == "world" && id != "anyone" {
                throw UsageError("bad ACL '\(spec)': the world scheme's only id is 'anyone'", command: command)
            }
            return ACL(permissions: perms, scheme: scheme, id: id)
        }
    }

    /// The ACL for nodes a command creates: `--acl` values, else open.
    public static func acl(for inv: Invocation) throws -> [ACL] {
        let specs = inv[aclOption]
        return specs.isEmpty ? ACL.openUnsafe : try parseACL(specs, command: inv.parsed.path)
    }

    /// `scheme:id:perms` text for an ACL entry.
    public static func aclText(_ acl: ACL) -> String {
        "\(acl.scheme):\(acl.id):\(acl.permissions.letters)"
    }

    public static func aclJSON(_ acl: [ACL]) -> JSONValue {
        .array(acl.map { a in
            .object(JSONObject([("scheme", .string(a.scheme)), ("id", .string(a.id)), ("perms", .string(a.permissions.letters))]))
        })
    }

    /// Reads a file, or stdin for `-`; an unreadable file is exit 66.
    public static func readInput(_ name: String) throws -> Data {
        if name == "-" {
            return Data(readStandardInput())
        }
        guard let bytes = readFile(name) else { throw CommandError.noInput("cannot read '\(name)'") }
        return Data(bytes)
    }

    /// `readInput` into an array of bytes: a file is read straight into it (no `Data` copied).
    public static func readBytes(_ name: String) throws -> [UInt8] {
        if name == "-" { return readStandardInput() }
        guard let bytes = readFile(name) else { throw CommandError.noInput("cannot read '\(name)'") }
        return bytes
    }

    /// A znode's data as text for a terminal: UTF-8 with its control characters but newline and
    /// tab shown escaped (so data cannot clear the screen or move the cursor), anything else
    /// described.
    public static func displayText(_ data: Data) -> String {
        guard let text = String(data: data, encoding: .utf8) else {
            return "<\(data.count) bytes, not UTF-8; use --base64 or -o json>"
        }
        return Output.escapingControls(text, keepingLines: true)
    }

    /// Whether stdout is a terminal (data for people) rather than a file or a pipe (exact bytes).
    public static let stdoutIsTerminal: Bool = isatty(1) == 1
    public static let stderrIsTerminal: Bool = isatty(2) == 1
}

/// Foundation also has an `Operation`; inside this module the name means ZooKeeper's request.
typealias Operation = ZooKeeper.Operation

/// The whole of a file's bytes, nil when it cannot be opened or read. The size is a first guess
/// (a file may grow, and /proc or a pipe say 0): it reads to the end. Plain descriptor reads,
/// so a config file read at start-up costs no `FileManager` or `Data`.
func readFile(_ name: String) -> [UInt8]? {
    let fd = open(name, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { return nil }
    var bytes: [UInt8] = []
    var room = max(Int(info.st_size) + 1, 4096)
    while true {
        let before = bytes.count
        var failed = false
        bytes.append(contentsOf: repeatElement(0, count: room))
        let got = bytes.withUnsafeMutableBufferPointer { b -> Int in
            var total = 0
            while total < room {
                let n = read(fd, b.baseAddress! + before + total, room - total)
                if n < 0 { if errno == EINTR { continue }; failed = true; return total }
                if n == 0 { break }
                total += n
            }
            return total
        }
        bytes.removeLast(room - got)
        if failed { return nil }
        if got < room { return bytes }
        room = bytes.count
    }
}

/// Bytes as UTF-8 text, nil when they are not UTF-8; a leading byte-order mark is dropped, as
/// Foundation's `String(data:encoding:)` drops it.
func utf8Text(_ bytes: [UInt8]) -> String? {
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { return String(validating: bytes.dropFirst(3), as: UTF8.self) }
    return String(validating: bytes, as: UTF8.self)
}

/// All of standard input, to its end (a read interrupted by a signal is taken up again; a
/// failed read ends it with what came before).
func readStandardInput() -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return bytes }
        bytes.append(contentsOf: chunk[..<n])
    }
}

/// Writes `text` to stderr, all of it; a failure is not reported (there is nowhere to report it).
func writeToStandardError(_ text: String) {
    _ = WriteFailures.writeAll(2, Array(text.utf8))
}

/// Where temporary files go: $TMPDIR when set, else /tmp; without a trailing slash.
func temporaryDirectory() -> String {
    guard let raw = getenv("TMPDIR"), raw.pointee != 0 else { return "/tmp" }
    var path = String(cString: raw)
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    return path
}

/// `path` without its last component: "/a/b/c" -> "/a/b", "/c" -> "/", "c" -> "".
func parentDirectory(of path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "" }
    if slash == p.startIndex { return "/" }
    var parent = p[..<slash]
    while parent.count > 1 && parent.hasSuffix("/") { parent = parent.dropLast() }
    return String(parent)
}

/// The user's home directory from the password database (for when HOME is not set).
func homeDirectory() -> String {
    guard let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir else { return "/" }
    return String(cString: dir)
}
