import Foundation

/// Keys and certificates for TLS tests, made with `openssl` and `keytool` in a fresh directory:
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
        let result = try runProcess("bash", ["-c", script, "tls-fixtures", directory.path], timeout: 120)
        guard result.status == 0 else {
            throw ZooKeeperServerError(action: "tls fixtures", directory: directory, status: result.status,
                                       diagnostics: result.stdoutText + result.stderrText)
        }
        return TLSFixtures(directory: directory)
    }

    private static let script = #"""
    set -euo pipefail
    cd "$1"
    umask 077
    pw=test-store-pw
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ca() { # NAME CN
        key "$1.key"
        openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    }
    leaf() { # NAME CN CA DAYS USAGE SAN
        key "$1.key"
        openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n%s\n' "$5" "${6:+subjectAltName=$6}" > "$1.ext"
        openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days "$4" \
            -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        rm -f "$1.csr" "$1.ext"
    }
    stores() { # DIR CERT
        mkdir -p "$1"
        printf '%s\n' "$pw" > "$1/password"
        openssl pkcs12 -export -in "$2.pem" -inkey "$2.key" -certfile ca.pem -name server \
            -out "$1/keystore.p12" -passout "pass:$pw"
        keytool -importcert -noprompt -alias ca -file ca.pem -keystore "$1/truststore.p12" \
            -storetype PKCS12 -storepass "$pw" >/dev/null 2>&1
    }
    ca ca "zkctl test CA"
    ca other-ca "unrelated test CA"
    leaf server 127.0.0.1 ca 30 serverAuth "IP:127.0.0.1,DNS:zk.example.test"
    leaf client zkctl-client ca 30 clientAuth "IP:127.0.0.1"
    leaf other-client zkctl-client other-ca 30 clientAuth "IP:127.0.0.1"
    leaf expired 127.0.0.1 ca -1 serverAuth "IP:127.0.0.1"
    stores stores server
    stores expired-stores expired
    chmod 644 ./*.pem
    """#
}
