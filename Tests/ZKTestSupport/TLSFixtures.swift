import Foundation

/// Keys and certificates for TLS tests, made by `scripts/tls-fixtures` (`openssl` and `keytool`)
/// in a fresh directory:
///
/// | file | what |
/// |---|---|
/// | `ca.pem` | the CA every good certificate chains to |
/// | `server.pem`, `server.key` | the server's certificate for 127.0.0.1 (IP SAN) and `zk.example.test` (DNS SAN) |
/// | `client.pem`, `client.key` | a client certificate signed by the CA |
/// | `other-ca.pem` | an unrelated CA |
/// | `other-client.pem`, `other-client.key` | a client certificate signed by the unrelated CA |
/// | `expired.pem`, `expired.key` | a server certificate from the CA that expired yesterday |
/// | `stores/` | the server's PKCS12 key store (server key and chain) and trust store (the CA), for `zkserver start --tls` |
/// | `expired-stores/` | the same with the expired certificate |
///
/// Key files are mode 600. The store password is a test value, in `stores/password`.
public struct TLSFixtures: Sendable {
    public let directory: URL

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    public var stores: URL { directory.appendingPathComponent("stores") }
    public var expiredStores: URL { directory.appendingPathComponent("expired-stores") }

    /// Makes everything in a new directory under the test scratch space.
    public static func make() throws -> TLSFixtures {
        let directory = try ZKTestPaths.makeTemporaryDirectory(label: "tls")
        let script = ZKTestPaths.packageRoot.appendingPathComponent("scripts/tls-fixtures").path
        let result = try runProcess("bash", [script, directory.path], timeout: 120)
        guard result.status == 0 else {
            throw ZooKeeperServerError(action: "tls fixtures", directory: directory, status: result.status,
                                       diagnostics: result.stdoutText + result.stderrText)
        }
        return TLSFixtures(directory: directory)
    }
}
