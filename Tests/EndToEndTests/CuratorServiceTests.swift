import Foundation
import XCTest
import ZKTestSupport

/// `zkctl service` against a real Apache Curator application (Tests/Peers/CuratorPeer.java, its
/// ServiceDiscovery with a Map payload), both ways, on a real server.
final class CuratorServiceTests: XCTestCase {
    var kit: CoordinationKit!
    var servicesRoot: String { kit.root + "/services" }

    override func setUpWithError() throws {
        kit = try CoordinationKit(server: try SharedServers.standalone(), label: "curator-service")
    }

    override func tearDown() {
        kit?.finish()
    }

    func zkctl(_ args: [String]) throws -> ProcessResult {
        try kit.zkctl(["--services-root", servicesRoot] + args)
    }

    /// The JSON lines Curator's `discover` printed, by id.
    func curatorDiscover(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: [String: Any]] {
        let r = try kit.curator(["discover", servicesRoot, name])
        XCTAssertEqual(r.status, 0, "Curator could not read the instances: \(r.stderrText)", file: file, line: line)
        var byID: [String: [String: Any]] = [:]
        for text in r.stdoutText.split(separator: "\n") {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], String(text))
            byID[try XCTUnwrap(object["id"] as? String)] = object
        }
        return byID
    }

    func testCuratorMapApplicationReadsInstancesWithPayloadAndWithout() throws {
        let payload = #"{"@class":"java.util.HashMap","zone":"a"}"#
        var r = try zkctl(["service", "register", "orders", "10.0.0.1", "8001", "--id", "with-payload", "--payload", payload])
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try zkctl(["service", "register", "orders", "10.0.0.2", "8002", "--id", "no-payload", "--no-payload"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        r = try zkctl(["service", "register", "orders", "10.0.0.3", "8003", "--id", "map-class", "--payload-class", "java.util.HashMap",
                       "--metadata", #"{"version":"2"}"#])
        XCTAssertEqual(r.status, 0, r.stderrText)

        let seen = try curatorDiscover("orders")
        XCTAssertEqual(Set(seen.keys), ["with-payload", "no-payload", "map-class"])
        XCTAssertEqual(seen["with-payload"]?["address"] as? String, "10.0.0.1")
        XCTAssertEqual(seen["with-payload"]?["port"] as? Int, 8001)
        XCTAssertEqual(seen["with-payload"]?["serviceType"] as? String, "STATIC")
        XCTAssertEqual((seen["with-payload"]?["payload"] as? [String: Any])?["zone"] as? String, "a")
        XCTAssertTrue(seen["no-payload"]?["payload"] is NSNull, "\(seen["no-payload"] ?? [:])")
        let spring = try XCTUnwrap(seen["map-class"]?["payload"] as? [String: Any])
        XCTAssertEqual(spring["name"] as? String, "orders")
        XCTAssertEqual((spring["metadata"] as? [String: Any])?["version"] as? String, "2")

        // The default stays Spring's, which such an application cannot read (the issue's report):
        // that is what the options are for.
        r = try zkctl(["service", "register", "spring", "10.0.0.4", "8004", "--id", "spring-default"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        let plain = try kit.curator(["discover", servicesRoot, "spring"])
        XCTAssertEqual(plain.status, 1, plain.stdoutText)
        XCTAssertTrue(plain.stderrText.contains("org.springframework.cloud.zookeeper.discovery.ZookeeperInstance"), plain.stderrText)
    }

    func testPayloadOptionsAreCheckedBeforeAnythingIsWritten() throws {
        for (args, status, message) in [
            (["--payload", "{}", "--no-payload"], Int32(64), "give one of --payload, --payload-class and --no-payload, not --payload and --no-payload"),
            (["--payload", "{", ], 65, "bad --payload"),
            (["--no-payload", "--metadata", "{}"], 64, "--no-payload writes none"),
            (["--payload", "{}", "--metadata", "{}"], 64, "with --payload put it in the JSON given"),
            (["--payload-class", "java..Map"], 64, "bad --payload-class 'java..Map'"),
        ] {
            let r = try zkctl(["service", "register", "checked", "h", "1"] + args)
            XCTAssertEqual(r.status, status, "\(args): \(r.stderrText)")
            XCTAssertEqual(r.stdoutText, "", "\(args)")
            XCTAssertTrue(r.stderrText.hasPrefix("zkctl: ") && r.stderrText.contains(message), "\(args): \(r.stderrText)")
        }
        let listed = try zkctl(["service", "discover", "checked"])
        XCTAssertEqual(listed.status, 1, "nothing was registered: \(listed.stdoutText)")
    }

    func testZkctlDiscoversCuratorInstances() throws {
        let ready = kit.file("dynamic-ready"), release = kit.file("dynamic-release")
        let kit = self.kit!, root = servicesRoot
        let dynamic = kit.background {
            try kit.curator(["register", root, "billing", "curator-dynamic", "10.1.0.1", "9001", "DYNAMIC",
                              #"{"zone":"b","weight":3}"#, ready, release])
        }
        defer { kit.touch(release); _ = try? dynamic.wait() }
        let staticReady = kit.file("static-ready")
        let stat = try kit.curator(["register", servicesRoot, "billing", "curator-static", "10.1.0.2", "9002", "STATIC", "-",
                                    staticReady, staticReady])
        XCTAssertEqual(stat.status, 0, stat.stderrText)
        try kit.waitForFile(ready)

        let r = try zkctl(["-o", "json", "service", "discover", "billing"])
        XCTAssertEqual(r.status, 0, r.stderrText)
        XCTAssertEqual(r.stderrText, "")
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]])
        let byID = Dictionary(uniqueKeysWithValues: list.map { ($0["id"] as? String ?? "?", $0) })
        XCTAssertEqual(Set(byID.keys), ["curator-dynamic", "curator-static"])
        let dyn = try XCTUnwrap(byID["curator-dynamic"])
        XCTAssertEqual(dyn["serviceType"] as? String, "DYNAMIC")
        XCTAssertEqual(dyn["ephemeral"] as? Bool, true)
        XCTAssertEqual(dyn["url"] as? String, "http://10.1.0.1:9001")
        let dynPayload = try XCTUnwrap(dyn["payload"] as? [String: Any])
        XCTAssertEqual(dynPayload["zone"] as? String, "b")
        XCTAssertEqual(dynPayload["weight"] as? Int, 3)
        XCTAssertNotNil(dynPayload["@class"] as? String, "Curator types its payload: \(dynPayload)")
        let st = try XCTUnwrap(byID["curator-static"])
        XCTAssertEqual(st["serviceType"] as? String, "STATIC")
        XCTAssertEqual(st["ephemeral"] as? Bool, false)
        XCTAssertTrue(st["payload"] is NSNull)

        // The table shows the Map payload in a column of its own.
        let table = try zkctl(["service", "discover", "billing"])
        XCTAssertEqual(table.status, 0, table.stderrText)
        let lines = table.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, table.stdoutText)
        XCTAssertTrue(lines[0].hasSuffix("PAYLOAD"), lines[0])
        let dynLine = try XCTUnwrap(lines.first { $0.hasPrefix("curator-dynamic") })
        XCTAssertTrue(dynLine.contains(#""zone":"b""#), dynLine)

        // Once Curator unregisters, the dynamic instance is gone for zkctl too.
        kit.touch(release)
        XCTAssertEqual(try dynamic.wait().status, 0)
        let after = try zkctl(["service", "discover", "billing", "--all-urls"])
        XCTAssertEqual(after.stdoutText, "http://10.1.0.2:9002\n", after.stderrText)
    }
}

extension CoordinationKit {
    /// The Curator peer (Tests/Peers/CuratorPeer.java) against this kit's server.
    func curator(_ args: [String], timeout: TimeInterval = 120) throws -> ProcessResult {
        try CuratorPeer.run(hosts: server.connectString, args, timeout: timeout)
    }
}
