import COpenSSL
#if canImport(Glibc)
import FoundationEssentials
import Glibc
#endif

/// TLS sessions kept between processes, so that the next command to the same server resumes
/// one instead of a full handshake. A Java server spends about 10 ms of CPU on a full TLS 1.2
/// handshake and about 1 ms on a resumed one; for a one-shot command that is most of its time.
///
/// What a stored session is worth to someone who reads it: its master secret lets them resume
/// a session with the server as this client (the identity of the client certificate included)
/// and read the traffic of the sessions that used it. So:
/// - only in a directory of this user's that no one else may enter (checked on every use,
///   files opened without following links, each checked to be this user's, mode 600), by default
///   under `$XDG_RUNTIME_DIR` (memory, removed at logout), never anywhere when none is given;
/// - each session is used for `lifetime` at most after its full handshake, and removed after;
/// - a file is found by a digest of everything that verified the session (server, name checked,
///   CA file, client certificate and key, each file by its identity and time), so a session is
///   never resumed under other verification than the one it passed; never with `insecure`.
final class TLSSessionCache: @unchecked Sendable {
    // Unchecked: immutable after init; the files are the shared state, written by rename.
    static let lifetime = 600
    static let maxFileSize = 16 * 1024

    let directory: String
    private let verification: String

    /// Nil when `options` keep no sessions: none asked for, `insecure`, or a directory that is
    /// not this user's alone.
    init?(_ options: TLSOptions) {
        guard let directory = options.sessionCache, !options.insecure, Self.isPrivateDirectory(directory) else { return nil }
        self.directory = directory
        func identity(_ file: String?) -> String {
            guard let file else { return "-" }
            var info = stat()
            guard stat(file, &info) == 0 else { return "\(file) ?" }
            return "\(file) \(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }
        func variable(_ name: String) -> String { getenv(name).map { String(cString: $0) } ?? "" }
        let store = options.caFile == nil ? "system \(variable("SSL_CERT_FILE")) \(variable("SSL_CERT_DIR"))" : identity(options.caFile)
        verification = [options.serverName ?? "-", store, identity(options.certFile), identity(options.keyFile ?? options.certFile)]
            .joined(separator: "\n")
    }

    /// Whether `path` is a directory (not a link) of this user's that no one else can read,
    /// write or enter.
    static func isPrivateDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid() && info.st_mode & 0o077 == 0
    }

    /// The file of `server`'s session: a SHA-256 of the server and the verification, in hex.
    func file(for server: ConnectString.Server) -> String {
        let text = Array("zkctl TLS session 1\n\(server.host)\n\(server.port)\n\(verification)".utf8)
        var digest = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        _ = zkctl_EVP_Digest(text, text.count, &digest, &size, zkctl_EVP_sha256(), nil)
        return directory + "/" + digest.map { String($0, radix: 16).leftPadded(to: 2) }.joined() + ".tls-session"
    }

    /// Offers `server`'s stored session on `ssl`, if one is there and young enough; true when one
    /// was offered. A file that is not right (another owner, other readers, too old, unreadable)
    /// is removed.
    func offer(_ ssl: OpaquePointer, for server: ConnectString.Server) -> Bool {
        let path = file(for: server)
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        guard info.st_uid == geteuid(), info.st_mode & 0o077 == 0, info.st_size > 0, info.st_size <= Self.maxFileSize else {
            unlink(path)
            return false
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        defer { bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { _ = memset(base, 0, $0.count) } } }
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { unlink(path); return false }
        let session: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            var p: UnsafePointer<UInt8>? = buffer.baseAddress
            return zkctl_d2i_SSL_SESSION(nil, &p, buffer.count)
        }
        guard let session else { zkctl_ERR_clear_error(); unlink(path); return false }
        defer { zkctl_SSL_SESSION_free(session) }
        let age = time(nil) - zkctl_SSL_SESSION_get_time(session)
        guard zkctl_SSL_SESSION_is_resumable(session) == 1, age >= 0, age < Self.lifetime else { unlink(path); return false }
        return zkctl_SSL_set_session(ssl, session) == 1
    }

    /// After a handshake: keeps the session of `ssl` for `server` when it is new and can be
    /// resumed (TLS 1.3 sends its ticket after the handshake: call again later). True when the
    /// session is kept, or was the one resumed.
    func keep(_ ssl: OpaquePointer, for server: ConnectString.Server) -> Bool {
        if zkctl_SSL_session_reused(ssl) == 1 { return true }
        guard let session = zkctl_SSL_get1_session(ssl) else { return false }
        defer { zkctl_SSL_SESSION_free(session) }
        guard zkctl_SSL_SESSION_is_resumable(session) == 1, Self.isPrivateDirectory(directory) else { return false }
        let length = zkctl_i2d_SSL_SESSION(session, nil)
        guard length > 0, length <= Self.maxFileSize else { return false }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        defer { bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { _ = memset(base, 0, $0.count) } } }
        let written = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var p = buffer.baseAddress
            return zkctl_i2d_SSL_SESSION(session, &p)
        }
        guard written == length else { return false }
        let path = file(for: server)
        let temporary = "\(path).\(getpid()).new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard n == bytes.count, rename(temporary, path) == 0 else { unlink(temporary); return false }
        removeExpired()
        return true
    }

    /// The `-v` line of a finished handshake: the protocol, and whether it resumed a session.
    /// `kept`: what `keep` said (nil: no cache).
    static func handshakeLine(_ ssl: OpaquePointer, server: ConnectString.Server, kept: Bool?) -> String {
        let version = zkctl_SSL_get_version(ssl).map { String(cString: $0) } ?? "TLS"
        let how = zkctl_SSL_session_reused(ssl) == 1 ? "resumed a kept session"
            : kept == true ? "full handshake, session kept" : "full handshake"
        return "tls: \(server): \(version), \(how)"
    }

    /// Forgets `server`'s session (a handshake that offered it failed).
    func forget(_ server: ConnectString.Server) {
        unlink(file(for: server))
    }

    /// Removes the sessions of any server that are past their lifetime (by the file's time,
    /// which is when it was written: at a full handshake).
    private func removeExpired() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        let now = time(nil)
        for name in names where name.hasSuffix(".tls-session") || name.hasSuffix(".new") {
            let path = directory + "/" + name
            var info = stat()
            if lstat(path, &info) == 0, now - info.st_mtim.tv_sec >= Self.lifetime { unlink(path) }
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
