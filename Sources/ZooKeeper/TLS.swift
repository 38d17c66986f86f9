import COpenSSL
import Synchronization
#if canImport(Glibc)
import FoundationEssentials
import Glibc
#endif

/// How to talk TLS to the servers (their `secureClientPort`). PEM files; nothing here is ever
/// printed but the file names.
public struct TLSOptions: Sendable, Hashable {
    /// CA certificates the server's chain must lead to; nil: the system's store.
    public var caFile: String?
    /// A client certificate (chain) and its key, for servers with `ssl.clientAuth=need`.
    public var certFile: String?
    public var keyFile: String?
    /// The name the server's certificate must carry instead of the host of the connect string
    /// (also sent as SNI).
    public var serverName: String?
    /// No verification at all (the caller warns about it).
    public var insecure: Bool
    /// A directory of this user's alone where sessions are kept for the next command to resume
    /// (see `TLSSessionCache`); nil: none kept.
    public var sessionCache: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, serverName: String? = nil,
                insecure: Bool = false, sessionCache: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
        self.sessionCache = sessionCache
    }

    /// Whether `path` may hold sessions: a directory (not a link) of this user's that no one
    /// else can read, write or enter.
    public static func isPrivateDirectory(_ path: String) -> Bool { TLSSessionCache.isPrivateDirectory(path) }
}

/// Why a TLS connection to a server failed, in words a user can act on.
public struct TLSFailure: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case unknownCA, nameMismatch, expired, clientCertificateRequired, clientCertificateRefused, notTLS, other
    }
    public var server: ConnectString.Server
    public var kind: Kind
    public var reason: String

    public var message: String { "TLS to \(server) failed: \(reason)" }

    /// The reason of a `.notTLS` failure: the port answered, but not with TLS.
    static let notTLSReason = "the server did not answer TLS (is this the plain client port?)"
}

// MARK: The context

/// An `SSL_CTX` made from `TLSOptions`: verification, the client certificate.
final class TLSContext: @unchecked Sendable {
    // Unchecked: the SSL_CTX is only read once made (OpenSSL allows SSL_new from any thread).
    let ctx: OpaquePointer
    let options: TLSOptions
    /// Where sessions are kept between commands, if anywhere.
    let sessions: TLSSessionCache?

    init(_ options: TLSOptions) throws {
        // OpenSSL is opened on first use (see Sources/COpenSSL/shim.h), so this is where its
        // absence shows.
        if let missing = zkctl_openssl_missing() {
            let library = String(cString: zkctl_openssl_library_name()), what = String(cString: missing)
            let problem = what == library ? "which could not be loaded" : "which has no \(what)"
            throw ZooKeeperError(.unavailable, message: "TLS needs OpenSSL's \(library), \(problem): install Debian's libssl3")
        }
        guard let ctx = zkctl_SSL_CTX_new(zkctl_TLS_client_method()) else {
            throw ZooKeeperError(.badArguments, message: "cannot set up TLS: \(Self.lastError())")
        }
        self.ctx = ctx
        self.options = options
        sessions = TLSSessionCache(options)
        _ = zkctl_ssl_ctx_set_min_tls12(ctx)
        if options.insecure {
            zkctl_SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        } else {
            zkctl_SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if let ca = options.caFile {
                guard zkctl_SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                    throw ZooKeeperError(.badArguments, message: "cannot use TLS CA file '\(ca)': \(Self.lastError())")
                }
            } else {
                zkctl_SSL_CTX_set_default_verify_paths(ctx)
            }
        }
        if let cert = options.certFile {
            guard zkctl_SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else {
                throw ZooKeeperError(.badArguments, message: "cannot use TLS certificate '\(cert)': \(Self.lastError())")
            }
            let key = options.keyFile ?? cert
            guard zkctl_SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
                // Never the key's bytes: only its file name and OpenSSL's reason.
                throw ZooKeeperError(.badArguments, message: "cannot use TLS key '\(key)': \(Self.lastError())")
            }
            guard zkctl_SSL_CTX_check_private_key(ctx) == 1 else {
                throw ZooKeeperError(.badArguments, message: "TLS key '\(key)' does not belong to certificate '\(cert)'")
            }
        } else if let key = options.keyFile {
            throw ZooKeeperError(.badArguments, message: "TLS key '\(key)' given without a certificate (--tls-cert)")
        }
    }

    deinit { zkctl_SSL_CTX_free(ctx) }

    /// A new `SSL` for `host`, verifying its name (or `serverName`), or nil.
    func newSSL(host: String) -> OpaquePointer? {
        guard let ssl = zkctl_SSL_new(ctx) else { return nil }
        _ = zkctl_ssl_set_relay_mode(ssl)
        let name = options.serverName ?? host
        if isIPAddress(name) {
            if !options.insecure { zkctl_X509_VERIFY_PARAM_set1_ip_asc(zkctl_SSL_get0_param(ssl), name) }
        } else {
            _ = zkctl_ssl_set_sni(ssl, name)
            if !options.insecure { zkctl_SSL_set1_host(ssl, name) }
        }
        return ssl
    }

    /// OpenSSL's last error as text (and the queue emptied).
    static func lastError() -> String {
        var text = "unknown error"
        var e = zkctl_ERR_get_error()
        while e != 0 {
            if let r = zkctl_ERR_reason_error_string(e) { text = String(cString: r) }
            e = zkctl_ERR_get_error()
        }
        return text
    }

    /// What a failed handshake, read or write on `ssl` means. `sslError` is `SSL_get_error`'s
    /// answer; `handshakeDone`: the failure came after the handshake (TLS 1.3 servers refuse a
    /// client certificate only then).
    func classify(_ ssl: OpaquePointer, sslError: Int32, handshakeDone: Bool, server: ConnectString.Server) -> TLSFailure {
        let sentCertificate = options.certFile != nil
        func failure(_ kind: TLSFailure.Kind, _ reason: String) -> TLSFailure {
            zkctl_ERR_clear_error()
            return TLSFailure(server: server, kind: kind, reason: reason)
        }
        if !handshakeDone, !options.insecure {
            let verify = zkctl_SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                switch Int32(verify) {
                case X509_V_ERR_CERT_HAS_EXPIRED:
                    return failure(.expired, "the server's certificate has expired")
                case X509_V_ERR_CERT_NOT_YET_VALID:
                    return failure(.expired, "the server's certificate is not valid yet")
                case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                    let name = options.serverName ?? server.host
                    return failure(.nameMismatch, "the server's certificate is not for \(name) (name mismatch; --tls-server-name names another)")
                case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
                     X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
                     X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED:
                    let store = options.caFile.map { "the CA in '\($0)'" } ?? "the system's CAs"
                    return failure(.unknownCA, "the server's certificate is not signed by \(store) (unknown CA)")
                default:
                    return failure(.other, "the server's certificate was not accepted: \(String(cString: zkctl_X509_verify_cert_error_string(verify)))")
                }
            }
        }
        let e = zkctl_ERR_peek_last_error()
        let reason = e == 0 ? 0 : zkctl_err_reason(e)
        if e != 0, zkctl_err_is_ssl_lib(e) != 0, reason >= SSL_AD_REASON_OFFSET {
            // An alert the server sent.
            let alert = reason - SSL_AD_REASON_OFFSET
            let certificateAlerts: Set<Int32> = [SSL_AD_BAD_CERTIFICATE, SSL_AD_UNSUPPORTED_CERTIFICATE, SSL_AD_CERTIFICATE_REVOKED,
                                                 SSL_AD_CERTIFICATE_EXPIRED, SSL_AD_CERTIFICATE_UNKNOWN, SSL_AD_UNKNOWN_CA,
                                                 SSL_AD_ACCESS_DENIED, SSL_AD_CERTIFICATE_REQUIRED, SSL_AD_HANDSHAKE_FAILURE,
                                                 SSL_AD_DECRYPT_ERROR]
            if certificateAlerts.contains(alert) {
                if !sentCertificate {
                    return failure(.clientCertificateRequired, "the server requires a client certificate (give --tls-cert and --tls-key)")
                }
                let text = zkctl_ERR_reason_error_string(e).map { String(cString: $0) } ?? "alert \(alert)"
                return failure(.clientCertificateRefused, "the server refused the client certificate '\(options.certFile ?? "")' (\(text))")
            }
            let text = zkctl_ERR_reason_error_string(e).map { String(cString: $0) } ?? "alert \(alert)"
            return failure(.other, "the server ended the TLS connection (\(text))")
        }
        if !handshakeDone {
            let notTLS: Set<Int32> = [SSL_R_WRONG_VERSION_NUMBER, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_UNEXPECTED_EOF_WHILE_READING,
                                      SSL_R_RECORD_LENGTH_MISMATCH, SSL_R_HTTP_REQUEST, SSL_R_UNEXPECTED_MESSAGE]
            if e == 0 || (zkctl_err_is_ssl_lib(e) != 0 && notTLS.contains(reason)) || sslError == SSL_ERROR_SYSCALL {
                return failure(.notTLS, TLSFailure.notTLSReason)
            }
        }
        let text = e == 0 ? (sslError == SSL_ERROR_SYSCALL ? "connection closed" : "error \(sslError)")
            : (zkctl_ERR_reason_error_string(e).map { String(cString: $0) } ?? "error \(e)")
        return failure(.other, text)
    }
}

func isIPAddress(_ text: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
}

// MARK: Sockets

/// The first address of `host:port`, or the reason it has none.
func resolveAddress(_ server: ConnectString.Server) -> Result<(storage: sockaddr_storage, length: socklen_t), ZooKeeperError> {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let gai = getaddrinfo(server.host, String(server.port), &hints, &list)
    guard gai == 0, let first = list else {
        return .failure(ZooKeeperError(.unavailable, message: "\(server): cannot resolve host: \(String(cString: gai_strerror(gai)))"))
    }
    defer { freeaddrinfo(list) }
    var storage = sockaddr_storage()
    let length = first.pointee.ai_addrlen
    withUnsafeMutableBytes(of: &storage) { raw in
        raw.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(length)))
    }
    return .success((storage, length))
}

/// A non-blocking TCP connect to `address`, started; nil and errno on failure.
func startConnect(_ address: (storage: sockaddr_storage, length: socklen_t)) -> Int32? {
    var storage = address.storage
    let fd = socket(Int32(storage.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    let rc = withUnsafePointer(to: &storage) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, address.length) }
    }
    if rc != 0 && errno != EINPROGRESS {
        let saved = errno
        close(fd)
        errno = saved
        return nil
    }
    return fd
}

func pollOne(_ fd: Int32, _ events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
    while true {
        let left = (deadline - .now).milliseconds
        if left <= 0 { return false }
        var p = pollfd(fd: fd, events: events, revents: 0)
        let r = poll(&p, 1, Int32(clamping: left))
        if r > 0 { return true }
        if r == 0 { return false }
        if errno != EINTR { return false }
    }
}

// MARK: One blocking exchange (four-letter words)

enum TLSExchange {
    /// Connects to `server` over TLS, sends `request`, and reads until the server closes, all
    /// within `timeout`. Blocking: call it off the cooperative pool.
    static func run(_ server: ConnectString.Server, request: [UInt8], timeout: Duration, options: TLSOptions) throws -> Data {
        let deadline = ContinuousClock.now + timeout
        let context = try TLSContext(options)
        let address = try resolveAddress(server).get()
        guard let fd = startConnect(address) else {
            throw ZooKeeperError(.unavailable, message: "\(server): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard pollOne(fd, Int16(POLLOUT), until: deadline) else {
            throw ZooKeeperError(.operationTimeout, message: "\(server): no connection within \(timeout.milliseconds) ms")
        }
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
        guard soError == 0 else { throw ZooKeeperError(.unavailable, message: "\(server): \(String(cString: strerror(soError)))") }
        guard let ssl = context.newSSL(host: server.host) else {
            throw ZooKeeperError(.unavailable, message: "\(server): cannot set up TLS: \(TLSContext.lastError())")
        }
        defer { zkctl_SSL_free(ssl) }
        zkctl_SSL_set_fd(ssl, fd)
        let offered = context.sessions?.offer(ssl, for: server) ?? false
        var handshakeDone = false
        /// Runs `step` until it succeeds, waiting as OpenSSL asks; returns its result (> 0) or throws.
        func drive(_ step: () -> Int32, allowEOF: Bool = false) throws -> Int32 {
            while true {
                zkctl_ERR_clear_error()
                let r = step()
                if r > 0 { return r }
                let err = zkctl_SSL_get_error(ssl, r)
                if allowEOF && err == SSL_ERROR_ZERO_RETURN { return 0 }
                let events: Int16
                switch err {
                case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
                case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
                case SSL_ERROR_SYSCALL where allowEOF && handshakeDone: return 0
                default:
                    if offered && !handshakeDone { context.sessions?.forget(server) }
                    let f = context.classify(ssl, sslError: err, handshakeDone: handshakeDone, server: server)
                    throw ZooKeeperError(f.kind == .clientCertificateRefused ? .authFailed : .unavailable, message: "\(server): \(f.reason)")
                }
                guard pollOne(fd, events, until: deadline) else {
                    throw ZooKeeperError(.operationTimeout, message: "\(server): no TLS answer within \(timeout.milliseconds) ms")
                }
            }
        }
        _ = try drive { zkctl_SSL_connect(ssl) }
        handshakeDone = true
        // TLS 1.2's session is there now; TLS 1.3's ticket comes after the handshake (below).
        var kept = context.sessions?.keep(ssl, for: server) ?? true
        _ = try request.withUnsafeBytes { raw in try drive { zkctl_SSL_write(ssl, raw.baseAddress, Int32(raw.count)) } }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < 16 << 20 {
            let n = try buffer.withUnsafeMutableBytes { raw in try drive({ zkctl_SSL_read(ssl, raw.baseAddress, Int32(raw.count)) }, allowEOF: true) }
            if n <= 0 { break }
            if !kept { kept = context.sessions?.keep(ssl, for: server) ?? true }
            answer.append(contentsOf: buffer[0..<Int(n)])
        }
        return answer
    }

    /// Whether an error of `run` says the server did not answer TLS (a plain port).
    static func isNotTLS(_ error: ZooKeeperError) -> Bool { error.message.hasSuffix(": " + TLSFailure.notTLSReason) }

    /// Whether `server` speaks TLS: a handshake without verification gets a TLS answer (a
    /// finished handshake, or an alert). Within `timeout`; blocking.
    static func speaksTLS(_ server: ConnectString.Server, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        guard let context = try? TLSContext(TLSOptions(insecure: true)),
              case .success(let address) = resolveAddress(server), let fd = startConnect(address) else { return false }
        defer { close(fd) }
        guard pollOne(fd, Int16(POLLOUT), until: deadline), let ssl = context.newSSL(host: server.host) else { return false }
        defer { zkctl_SSL_free(ssl) }
        zkctl_SSL_set_fd(ssl, fd)
        while true {
            zkctl_ERR_clear_error()
            let r = zkctl_SSL_connect(ssl)
            if r == 1 { return true }
            let err = zkctl_SSL_get_error(ssl, r)
            let events: Int16
            switch err {
            case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
            case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
            default:
                let e = zkctl_ERR_peek_last_error()
                defer { zkctl_ERR_clear_error() }
                return e != 0 && zkctl_err_is_ssl_lib(e) != 0 && zkctl_err_reason(e) >= SSL_AD_REASON_OFFSET
            }
            guard pollOne(fd, events, until: deadline) else { return false }
        }
    }

    /// The "try --tls" hint for a connect without TLS that got no session: the servers that
    /// answer a TLS handshake (at once, each within `timeout`), or nil when none does.
    static func plainConnectHint(_ probes: [(server: ConnectString.Server, outcome: FourLetterWord.ProbeOutcome)], timeout: Duration) async -> String? {
        // A TLS port says nothing to a plain srvr (it waits for a TLS record), or closes.
        let servers = probes.filter { $0.outcome == .silent || $0.outcome == .notZooKeeper }.map(\.server)
        guard !servers.isEmpty else { return nil }
        let answering: [ConnectString.Server] = await withTaskGroup(of: ConnectString.Server?.self) { group in
            for server in servers {
                group.addTask { await offload { speaksTLS(server, timeout: timeout) } ? server : nil }
            }
            var out: [ConnectString.Server] = []
            for await s in group { if let s { out.append(s) } }
            return out
        }
        guard !answering.isEmpty else { return nil }
        let names = servers.filter { answering.contains($0) }.map(\.description).joined(separator: ", ")
        return "no session with \(names): it looks like a TLS port; try --tls"
    }
}
