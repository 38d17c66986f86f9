import Foundation
import XCTest
@testable import ZKCtl
import ZooKeeperRecipes

/// The Curator service-instance model: reading documents others wrote, what zkctl writes, URLs
/// and the argument rules of `zkctl service`.
final class ServiceUnitTests: XCTestCase {
    /// A document as Spring Cloud ZooKeeper (through Curator 5) writes it.
    let springDocument = """
    {"name":"backend","id":"6d4e5121-6c17-4023-8f7b-8922f8b70cae","address":"10.1.2.3","port":8005,"sslPort":null,\
    "payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","id":"application-1",\
    "name":"backend","metadata":{"instance_status":"UP","zone":"a"}},"registrationTimeUTC":1610116500446,\
    "serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},\
    {"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]},"enabled":true}
    """

    func parse(_ text: String, name: String = "backend", id: String = "node-id") throws -> ServiceInstance {
        try ServiceInstance.parse(Data(text.utf8), name: name, id: id)
    }

    // MARK: Reading

    func testReadsSpringCloudDocument() throws {
        let i = try parse(springDocument)
        XCTAssertEqual(i.name, "backend")
        XCTAssertEqual(i.id, "6d4e5121-6c17-4023-8f7b-8922f8b70cae")
        XCTAssertEqual(i.address, "10.1.2.3")
        XCTAssertEqual(i.port, 8005)
        XCTAssertNil(i.sslPort)
        XCTAssertEqual(i.registrationTimeUTC, 1_610_116_500_446)
        XCTAssertEqual(i.serviceType, "DYNAMIC")
        XCTAssertTrue(i.isDynamic)
        XCTAssertTrue(i.enabled)
        XCTAssertEqual(i.metadata, JSONObject([("instance_status", "UP"), ("zone", "a")]))
        XCTAssertNil(i.uriScheme)
        XCTAssertEqual(i.uriPortVariable, "port")
        XCTAssertEqual(i.url, "http://10.1.2.3:8005")
    }

    func testSummaryJSONHasTheDocumentedKeys() throws {
        let json = try parse(springDocument).summaryJSON(ephemeral: true)
        let o = try XCTUnwrap(json.objectValue)
        XCTAssertEqual(o.keys, ["id", "name", "address", "port", "sslPort", "serviceType", "registrationTimeUTC",
                                "enabled", "ephemeral", "metadata", "url", "payload"])
        XCTAssertEqual(o["payload"]?.objectValue?["@class"], .string(ServiceInstance.springPayloadClass))
        XCTAssertEqual(o["sslPort"], .null)
        XCTAssertEqual(o["registrationTimeUTC"], .number("1610116500446"))
        XCTAssertEqual(o["url"], .string("http://10.1.2.3:8005"))
    }

    func testLenientReading() throws {
        // Missing fields come from the znode path or are absent; unknown ones are no error.
        let i = try parse(#"{"address":"h","port":"81","future":{"x":[1,2]},"enabled":false}"#, name: "svc", id: "abc")
        XCTAssertEqual(i.name, "svc")
        XCTAssertEqual(i.id, "abc")
        XCTAssertEqual(i.port, 81)
        XCTAssertNil(i.serviceType)
        XCTAssertFalse(i.isDynamic)
        XCTAssertFalse(i.enabled)
        XCTAssertEqual(i.metadata, JSONObject())
        XCTAssertEqual(i.document["future"], .object(JSONObject([("x", .array([1, 2]))])))
        // A payload that is not an object (Curator allows any type) gives no metadata.
        XCTAssertEqual(try parse(#"{"payload":"text","address":"h","port":1}"#).metadata, JSONObject())
        XCTAssertEqual(try parse(#"{"payload":null,"address":"h","port":1}"#).url, "http://h:1")
    }

    func testRefusesWhatIsNotAnObject() {
        for text in ["", "not json", "[1]", "\"s\"", "null"] {
            XCTAssertThrowsError(try parse(text), text) { error in
                XCTAssertEqual(ExitCode.code(for: error), ExitCode.badData, text)
            }
        }
    }

    // MARK: URLs

    func testURLRules() throws {
        // Only an SSL port: https on it.
        XCTAssertEqual(try parse(#"{"address":"h","port":null,"sslPort":8443}"#).url, "https://h:8443")
        // Both ports and no fixed scheme: http on the plain port.
        XCTAssertEqual(try parse(#"{"address":"h","port":80,"sslPort":443}"#).url, "http://h:80")
        // A literal scheme in the uriSpec, as one part or two, with the port variable it names.
        let oneFirstPart = #"{"address":"h","port":80,"sslPort":443,"uriSpec":{"parts":[{"value":"https://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"ssl-port","variable":true}]}}"#
        XCTAssertEqual(try parse(oneFirstPart).url, "https://h:443")
        let twoParts = #"{"address":"h","port":80,"uriSpec":{"parts":[{"value":"grpc","variable":false},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]}}"#
        XCTAssertEqual(try parse(twoParts).url, "grpc://h:80")
        // IPv6 addresses go in brackets.
        XCTAssertEqual(try parse(#"{"address":"::1","port":80}"#).url, "http://[::1]:80")
        // No address or no port: no URL.
        XCTAssertNil(try parse(#"{"port":80}"#).url)
        XCTAssertNil(try parse(#"{"address":"h"}"#).url)
        // A uriSpec of null (Curator allows it) is the default rule.
        XCTAssertEqual(try parse(#"{"address":"h","port":1,"uriSpec":null}"#).url, "http://h:1")
    }

    // MARK: Writing

    func registration(scheme: String? = nil, sslPort: Int? = nil, dynamic: Bool = false) -> ServiceInstance.Registration {
        ServiceInstance.Registration(name: "backend", id: "i-1", address: "localhost", port: 8000, sslPort: sslPort,
                                     scheme: scheme, metadata: JSONObject([("version", "1.0")]), dynamic: dynamic,
                                     registrationTimeUTC: 1_700_000_000_123)
    }

    func testWrittenDocumentIsCuratorShaped() throws {
        let doc = registration().document()
        XCTAssertEqual(doc.keys, ["name", "id", "address", "port", "sslPort", "payload", "registrationTimeUTC",
                                  "serviceType", "uriSpec", "enabled"])
        XCTAssertEqual(JSONValue.object(doc).compact(), """
        {"name":"backend","id":"i-1","address":"localhost","port":8000,"sslPort":null,\
        "payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","id":"i-1","name":"backend","metadata":{"version":"1.0"}},\
        "registrationTimeUTC":1700000000123,"serviceType":"STATIC",\
        "uriSpec":{"parts":[{"value":"http://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]},\
        "enabled":true}
        """)
        XCTAssertEqual(registration(dynamic: true).document()["serviceType"], .string("DYNAMIC"))
    }

    func testWrittenDocumentReadsBack() throws {
        let cases: [(ServiceInstance.Registration, String)] = [
            (registration(), "http://localhost:8000"),
            (registration(sslPort: 8443), "http://localhost:8000"),
            (registration(scheme: "https", sslPort: 8443), "https://localhost:8443"),
            (registration(scheme: "https"), "https://localhost:8000"),
            (registration(scheme: "redis"), "redis://localhost:8000"),
        ]
        for (reg, url) in cases {
            let data = Data(JSONValue.object(reg.document()).compact().utf8)
            let back = try ServiceInstance.parse(data, name: "x", id: "y")
            XCTAssertEqual(back.url, url)
            XCTAssertEqual(back.id, "i-1")
            XCTAssertEqual(back.name, "backend")
            XCTAssertEqual(back.sslPort, reg.sslPort)
            XCTAssertEqual(back.metadata, reg.metadata)
            XCTAssertEqual(back.registrationTimeUTC, 1_700_000_000_123)
        }
    }

    func testUpdateKeepsWhatOthersWrote() throws {
        var existing = try XCTUnwrap(try JSONValue.parse(springDocument).objectValue)
        existing["futureField"] = .string("kept")
        var payload = try XCTUnwrap(existing["payload"]?.objectValue)
        payload["extra"] = .bool(true)
        existing["payload"] = .object(payload)
        let doc = registration(dynamic: true).document(updating: existing)
        // Same key order as before, the unknown field still there.
        XCTAssertEqual(doc.keys, existing.keys)
        XCTAssertEqual(doc["futureField"], .string("kept"))
        XCTAssertEqual(doc["port"], .int(8000))
        XCTAssertEqual(doc["address"], .string("localhost"))
        // The payload keeps its class and fields; only the metadata is ours.
        let newPayload = try XCTUnwrap(doc["payload"]?.objectValue)
        XCTAssertEqual(newPayload["@class"], .string(ServiceInstance.springPayloadClass))
        XCTAssertEqual(newPayload["id"], .string("application-1"))
        XCTAssertEqual(newPayload["extra"], .bool(true))
        XCTAssertEqual(newPayload["metadata"], .object(JSONObject([("version", "1.0")])))
    }

    func testPayloadChoices() throws {
        var reg = registration()
        reg.payload = .verbatim(.object(JSONObject([("@class", "java.util.HashMap"), ("zone", "a")])))
        XCTAssertEqual(reg.document()["payload"].map { $0.compact() }, #"{"@class":"java.util.HashMap","zone":"a"}"#)
        reg.payload = .none
        XCTAssertEqual(reg.document()["payload"], .null)
        reg.payload = .spring(className: "com.example.Meta")
        XCTAssertEqual(reg.document()["payload"].map { $0.compact() },
                       #"{"@class":"com.example.Meta","id":"i-1","name":"backend","metadata":{"version":"1.0"}}"#)
        // Registering again: a verbatim payload or none replaces what was there; another class
        // renames the payload, keeping its other fields.
        let existing = try XCTUnwrap(try JSONValue.parse(springDocument).objectValue)
        XCTAssertEqual(reg.document(updating: existing)["payload"]?.objectValue?["@class"], .string("com.example.Meta"))
        XCTAssertEqual(reg.document(updating: existing)["payload"]?.objectValue?["id"], .string("application-1"))
        reg.payload = .none
        XCTAssertEqual(reg.document(updating: existing)["payload"], .null)
        // Reading: any payload is kept in the document; only Spring's shape has metadata.
        let map = try parse(#"{"address":"h","port":1,"payload":{"@class":"java.util.HashMap","zone":"b"}}"#)
        XCTAssertFalse(map.hasSpringShapedPayload)
        XCTAssertEqual(map.summaryJSON(ephemeral: nil).objectValue?["payload"]?.objectValue?["zone"], .string("b"))
        XCTAssertTrue(try parse(#"{"payload":null}"#).hasSpringShapedPayload)
        XCTAssertTrue(try parse(springDocument).hasSpringShapedPayload)
    }

    // MARK: Argument rules

    func testSegmentRule() {
        for good in ["backend", "my-service_2", "a.b", "v1:blue", "zé", "Dienst-ü", "サービス", "x", String(repeating: "a", count: 255)] {
            XCTAssertNil(ServiceInstance.segmentProblem(good), good)
        }
        let bad: [(String, String)] = [
            ("", "must not be empty"), (".", "must not be '.' or '..'"), ("..", "must not be '.' or '..'"),
            ("a/b", "must not contain '/'"), ("a b", "must not contain spaces"), ("a\u{1}b", "must not contain control characters"),
            ("a\nb", "must not contain control characters"), (String(repeating: "a", count: 256), "must be at most 255 bytes"),
            ("a*b", "must not contain '*' (allowed: letters, digits, '.', '_', ':', '-')"),
        ]
        for (value, problem) in bad {
            XCTAssertEqual(ServiceInstance.segmentProblem(value), problem, value.debugDescription)
        }
    }

    func testHostAndSchemeRules() {
        for good in ["localhost", "10.0.0.1", "::1", "[::1]", "host.example.com", "bücher.example"] {
            XCTAssertNil(ServiceInstance.hostProblem(good), good)
        }
        XCTAssertEqual(ServiceInstance.hostProblem(""), "must not be empty")
        XCTAssertEqual(ServiceInstance.hostProblem("a b"), "must not contain spaces")
        XCTAssertEqual(ServiceInstance.hostProblem("h/x"), "must not contain '/'")
        XCTAssertEqual(ServiceInstance.hostProblem("u@h"), "must not contain '@'")
        XCTAssertEqual(ServiceInstance.normalizedHost("[::1]"), "::1")
        XCTAssertEqual(ServiceInstance.normalizedHost("localhost"), "localhost")

        for good in ["http", "https", "grpc+tls", "svn+ssh", "x-y.z"] {
            XCTAssertNil(ServiceInstance.schemeProblem(good), good)
        }
        for bad in ["", "1http", "ht tp", "http:", "é"] {
            XCTAssertNotNil(ServiceInstance.schemeProblem(bad), bad)
        }
    }

    func testCommandTableDeclaresTheServiceFamily() throws {
        let service = try XCTUnwrap(CommandTable.root.subcommand(named: "service"))
        XCTAssertEqual(service.subcommands.map(\.name), ["register", "discover", "list", "deregister"])
        for sub in service.subcommands {
            XCTAssertFalse(sub.summary.isEmpty, sub.name)
            XCTAssertFalse(sub.description.isEmpty, sub.name)
            XCTAssertFalse(sub.examples.isEmpty, sub.name)
            XCTAssertFalse(sub.jsonOutput.isEmpty, sub.name)
            XCTAssertNotNil(sub.handler, sub.name)
            let globals = Set(CommandTable.globalOptions.map(\.long))
            for option in sub.options { XCTAssertFalse(globals.contains(option.long), "\(sub.name) --\(option.long)") }
        }
        let register = try XCTUnwrap(service.subcommand(named: "register"))
        XCTAssertTrue(register.takesCommand)
        XCTAssertNotNil(register.option(long: "acl"))
    }

    func testParsingRegisterWithAndWithoutCommand() throws {
        let root = CommandTable.root
        let plain = try Parser.parse(["service", "register", "web", "h", "80", "--ephemeral"], root: root)
        XCTAssertEqual(plain.positionals, ["web", "h", "80"])
        XCTAssertEqual(plain.command, [])
        let sidecar = try Parser.parse(["service", "register", "web", "h", "80", "--ephemeral", "--", "sh", "-c", "exit 3"], root: root)
        XCTAssertEqual(sidecar.command, ["sh", "-c", "exit 3"])
        XCTAssertThrowsError(try Parser.parse(["service", "register", "web", "h", "0"], root: root))
        XCTAssertThrowsError(try Parser.parse(["service", "register", "web", "h", "80", "--ssl-port", "70000"], root: root))
    }

    func testLaunchProblems() {
        XCTAssertNil(Sidecar.launchProblem("sh"))
        XCTAssertNil(Sidecar.launchProblem("/bin/sh"))
        XCTAssertEqual(Sidecar.launchProblem("no-such-command-zkctl")?.code, 127)
        XCTAssertEqual(Sidecar.launchProblem("/no/such/file")?.code, 127)
        XCTAssertEqual(Sidecar.launchProblem("/etc/passwd")?.code, 126)
    }
}
