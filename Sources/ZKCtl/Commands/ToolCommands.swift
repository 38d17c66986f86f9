import Glibc
import ZooKeeper
import ZooKeeperRecipes

extension CommandTable {
    static let toolCommands: [CommandSpec] = [digestCommand, completionCommand]

    // MARK: - digest

    static let digestCommand = CommandSpec(
        "digest", summary: "print the digest ACL id for user:password",
        description: """
        Prints the id ZooKeeper's digest scheme stores for a user: user:base64(sha1(user:password)),
        the HASH part of an ACL entry digest:user:HASH:cdrwa. Nothing is sent to a server.
        The password need not appear on the command line (where other users of the machine can
        see it): with '-' or no argument, one line user:password is read from stdin, without echo
        when stdin is a terminal. The password itself is never printed.
        """,
        examples: ["zkctl digest super:secret", "zkctl digest < credentials.txt", "printf '%s' \"$ZKCTL_AUTH\" | zkctl digest -",
                   "zkctl create /app --acl digest:$(zkctl digest < cred.txt):cdrwa"],
        arguments: [ArgumentSpec("USER:PASSWORD", help: "the credential, or - (the default) to read it from stdin", optional: true)],
        jsonOutput: #"{"user", "id", "acl"}: "acl" is the digest entry granting all permissions (cdrwa)"#,
        handler: runDigest)

    @Sendable static func runDigest(_ inv: Invocation) async throws -> Int32 {
        let credential: String
        if let given = inv.argument(0), given != "-" {
            credential = given
            if let problem = credentialProblem(credential) { throw UsageError(problem, command: ["digest"]) }
        } else {
            credential = try digestCredential(fromStdin: readCredentialInput())
            if let problem = credentialProblem(credential) { throw CommandError.badData("stdin: " + problem) }
        }
        let id = ACL.digestID(forCredential: credential)
        let user = String(credential.prefix { $0 != ":" })
        inv.output.print(Printed(json: .object(JSONObject([("user", .string(user)), ("id", .string(id)), ("acl", .string("digest:\(id):cdrwa"))])),
                                 lines: [id]))
        return ExitCode.success
    }

    /// Why a credential is unusable, or nil. Never quotes the password.
    static func credentialProblem(_ credential: String) -> String? {
        guard let colon = credential.firstIndex(of: ":") else { return "expected user:password" }
        if colon == credential.startIndex { return "the user name is empty (expected user:password)" }
        return nil
    }

    /// The credential in stdin's text: one line, its line ending removed.
    static func digestCredential(fromStdin text: String) throws -> String {
        // "\r\n" is one Character in Swift, so test characters with isNewline.
        var line = text
        if line.last?.isNewline == true { line.removeLast() }
        if line.contains(where: \.isNewline) { throw CommandError.badData("stdin: expected one line user:password") }
        if line.isEmpty { throw CommandError.badData("stdin: no user:password given") }
        return line
    }

    /// Stdin's text; on a terminal, one line read with echo off after a prompt on stderr.
    private static func readCredentialInput() -> String {
        guard isatty(0) == 1 else {
            return String(decoding: readStandardInput(), as: UTF8.self)
        }
        let prompt = "user:password: "
        _ = prompt.withCString { Glibc.write(2, $0, strlen($0)) }
        var saved = termios()
        let haveTerminal = tcgetattr(0, &saved) == 0
        if haveTerminal {
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSAFLUSH, &silent)
        }
        let line = readLine(strippingNewline: true) ?? ""
        if haveTerminal {
            tcsetattr(0, TCSAFLUSH, &saved)
            _ = "\n".withCString { Glibc.write(2, $0, 1) }
        }
        return line
    }
}
