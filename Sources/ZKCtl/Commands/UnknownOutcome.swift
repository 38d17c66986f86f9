import ZooKeeper

/// A write whose answer was lost and whose outcome could not be learned in time (the client's
/// `ZooKeeperError.unknownOutcome`), told in the words of the command that wrote: "config set k:
/// ...; the write may or may not have been applied: check with 'zkctl config get k'". Exit 69.
struct UnknownOutcomeError: Error, Sendable, CustomStringConvertible {
    var error: ZooKeeperError
    /// What was being done, such as `set /a` or `config set k`.
    var command: String
    /// The command that shows whether it happened.
    var check: String

    var description: String { "\(command): \(error.message): check with '\(check)'" }

    /// The command's words and the check for a client error, by the kind of write.
    init(_ error: ZooKeeperError, command: String? = nil, check: String? = nil) {
        let path = error.path ?? "/"
        let verb: String, read: String
        switch error.unknownOutcome ?? .set {
        case .set: (verb, read) = ("set", "zkctl get \(path)")
        case .create: (verb, read) = ("create", "zkctl get \(path)")
        case .createSequential: (verb, read) = ("create", "zkctl ls \(PathRules.parent(of: path) ?? "/")")
        case .delete: (verb, read) = ("delete", "zkctl exists \(path)")
        case .setACL: (verb, read) = ("acl set", "zkctl acl get \(path)")
        case .multi: (verb, read) = ("transaction on", "zkctl get \(path)")
        }
        self.error = error
        self.command = command ?? "\(verb) \(path)"
        self.check = check ?? read
    }
}

extension CommandTable {
    /// Runs `body`; a write of it whose outcome is unknown is reported as `command` and names
    /// `check` as the way to find out (both may depend on the error's path).
    static func reportingUnknownOutcome<T>(_ describe: @escaping (ZooKeeperError) -> (command: String, check: String),
                                           _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ZooKeeperError where error.unknownOutcome != nil {
            let (command, check) = describe(error)
            throw UnknownOutcomeError(error, command: command, check: check)
        }
    }
}
