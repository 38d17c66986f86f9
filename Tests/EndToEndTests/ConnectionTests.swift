import Foundation
import XCTest
import ZKTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Connecting as a user sees it (issue 23, items 4, 8 and 9): a chroot that does not exist, a
/// server on IPv6 loopback, something that is not ZooKeeper on the port, and `status` on a
/// terminal (through a pseudo-terminal made by script(1)).
final class ConnectionTests: XCTestCase {
    var server: ZooKeeperServer!

    override func setUpWithError() throws {
        server = try SharedServers.standalone()
    }

    func zkctl(_ args: [String], env: [String: String] = [:], timeout: TimeInterval = 60) throws -> ProcessResult {
        try runProcess(zkctlBinaryPath(), args, environment: faultEnvironment(env), timeout: timeout)
    }

    // MARK: Item 4: a chroot that does not exist

    func testAMissingChrootIsNamedAndCreateParentsCreatesIt() throws {
        let top = "/t-\(UUID().uuidString.prefix(8).lowercased())"
        let chroot = top + "/app"
        let under = server.connectString + chroot
        defer { _ = try? zkctl(["-s", server.connectString, "delete", "--recursive", top]) }

        // Every command names the chroot, exit 1, nothing on stdout.
        for args in [["get", "/x"], ["config", "list"], ["create", "/x", "v"], ["tree", "/"], ["exists", "/"]] {
            let r = try zkctl(["-s", under] + args)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderrText)")
            XCTAssertEqual(r.stderrText, "zkctl: chroot \(chroot) does not exist\n", "\(args)")
            XCTAssertEqual(r.stdoutText, "", "\(args)")
        }
        // status says it plainly, and exits 1 too (the servers themselves are fine).
        let status = try zkctl(["-s", under, "status"])
        XCTAssertEqual(status.status, 1, status.stdoutText + status.stderrText)
        XCTAssertTrue(status.stdoutText.contains("Session: none (chroot \(chroot) does not exist)"), status.stdoutText)
        XCTAssertTrue(status.stdoutText.contains("Verdict: unhealthy (chroot \(chroot) does not exist;"), status.stdoutText)
        let json = try zkctl(["-s", under, "-o", "json", "status"])
        XCTAssertEqual(json.status, 1)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        XCTAssertEqual(doc["healthy"] as? Bool, false)
        XCTAssertEqual(doc["sessionError"] as? String, "chroot \(chroot) does not exist")
        // Nothing was created by all that.
        XCTAssertEqual(try zkctl(["-s", server.connectString, "exists", top]).status, 1)

        // create --parents creates the chroot (both levels) and then the path under it.
        let created = try zkctl(["-s", under, "create", "--parents", "/a/b", "v"])
        XCTAssertEqual(created.status, 0, created.stderrText)
        XCTAssertEqual(created.stdoutText, "/a/b\n")
        XCTAssertEqual(created.stderrText, "")
        XCTAssertEqual(try zkctl(["-s", server.connectString, "get", chroot + "/a/b"]).stdoutText, "v")
        // From then on the chroot works as any other.
        XCTAssertEqual(try zkctl(["-s", under, "get", "/a/b"]).stdoutText, "v")
        let list = try zkctl(["-s", under, "config", "list"])
        XCTAssertEqual(list.status, 0, list.stderrText)
        XCTAssertEqual(try zkctl(["-s", under, "status"]).status, 0)
    }

    // MARK: Item 8: IPv6, and something else on the port

    /// `-s [::1]:PORT` reaches a server listening on ::1 (a relay on [::1] to the shared server,
    /// as the test servers listen on 127.0.0.1 only).
    func testBracketedIPv6LoopbackServerWorks() throws {
        let upstream = try XCTUnwrap(server.memberPorts.first)
        let relay = try LoopbackListener(ipv6: true) { client in relayConnection(client, toPort: upstream) }
        defer { relay.close() }
        let address = "[::1]:\(relay.port)"
        let top = "/t-\(UUID().uuidString.prefix(8).lowercased())"
        defer { _ = try? zkctl(["-s", server.connectString, "delete", "--recursive", top]) }

        let created = try zkctl(["-s", address, "--timeout", "5s", "create", top, "over-ipv6"])
        XCTAssertEqual(created.status, 0, created.stderrText)
        XCTAssertEqual(created.stdoutText, top + "\n")
        let read = try zkctl(["-s", "\(address)\(top)", "--timeout", "5s", "get", "/"])
        XCTAssertEqual(read.status, 0, read.stderrText)
        XCTAssertEqual(read.stdoutText, "over-ipv6")
        let status = try zkctl(["-s", address, "--timeout", "5s", "-o", "json", "status"])
        XCTAssertEqual(status.status, 0, status.stderrText)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])
        let servers = try XCTUnwrap(doc["servers"] as? [[String: Any]])
        XCTAssertEqual(servers.first?["address"] as? String, address)
        XCTAssertEqual(servers.first?["serving"] as? Bool, true)
        // Brackets around anything but an IPv6 address are refused, with a clear line.
        let bad = try zkctl(["-s", "[%31]:1090,[fe80::1%eth0]:2182", "get", "/x"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderrText.hasPrefix("zkctl: bad server list '[%31]:1090,[fe80::1%eth0]:2182' from flag --server: bad server '[%31]:1090': brackets hold only an IPv6 address"), bad.stderrText)
    }

    /// A port where something else answers (here an HTTP error page, as a proxy sends): its
    /// bytes once read as a read-only session, and every command said "/x: connection loss".
    /// The servers are to blame, and the line says so.
    func testSomethingElseOnThePortIsBlamedNotThePath() throws {
        let http = try LoopbackListener(ipv6: false) { client in answerWithHTTPError(client) }
        defer { http.close() }
        let address = "127.0.0.1:\(http.port)"
        for args in [["get", "/x"], ["config", "set", "k", "1"], ["exists", "/x"]] {
            let started = Date()
            let r = try zkctl(["-s", address, "--timeout", "2s"] + args, timeout: 30)
            XCTAssertEqual(r.status, 69, "\(args): \(r.stderrText)")
            assertOneErrorLine(r, "\(args)")
            XCTAssertFalse(r.stderrText.hasPrefix("zkctl: /"), "\(args): blames the path: \(r.stderrText)")
            XCTAssertEqual(r.stderrText, "zkctl: no ZooKeeper server reachable within 2000 ms; tried \(address): answers, but not as a ZooKeeper server\n", "\(args)")
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, "\(args)")
        }
    }

    /// Nothing listening: the probe says so, in a line naming the server.
    func testNothingListeningSaysConnectionRefused() throws {
        let port = try closedPort()
        let r = try zkctl(["-s", "127.0.0.1:\(port)", "--timeout", "1s", "get", "/x"], timeout: 30)
        XCTAssertEqual(r.status, 69)
        XCTAssertEqual(r.stderrText, "zkctl: no server reachable within 1000 ms; tried 127.0.0.1:\(port): connection refused\n")
    }

    // MARK: Item 9: status on a terminal

    /// Runs `zkctl ARGS` on a pseudo-terminal with `env`; returns what it printed.
    func onTerminal(_ args: [String], env: [String: String]) throws -> (text: String, status: Int32) {
        let r = try runOnTerminal(zkctlBinaryPath(), args, environment: faultEnvironment(env))
        return (r.stdoutText, r.status)
    }

    /// Checks that each column of a plain `status` table starts where its header does; returns
    /// the header line. Widths follow the data (a latency of `0/12.5/40` is wider than `0/0.0/0`),
    /// so two runs are compared by their column names, not by their widths.
    func assertStatusColumnsAlign(_ plain: String, _ context: String) throws -> String {
        let lines = plain.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("SERVER") }, "\(context): \(plain)")
        let up = try XCTUnwrap(lines.first { $0.hasPrefix(server.connectString) }, "\(context): \(plain)")
        let down = try XCTUnwrap(lines.first { $0.hasPrefix("127.0.0.1:") && $0.contains(" down ") }, "\(context): \(plain)")
        func column(_ line: String, _ word: String) -> Int? {
            line.range(of: word).map { line.distance(from: line.startIndex, to: $0.lowerBound) }
        }
        XCTAssertEqual(column(up, " ok ").map { $0 + 1 }, column(header, "STATUS"), "\(context): \(plain)")
        XCTAssertEqual(column(down, " down ").map { $0 + 1 }, column(header, "STATUS"), "\(context): \(plain)")
        XCTAssertEqual(column(up, "standalone"), column(header, "MODE"), "\(context): \(plain)")
        XCTAssertEqual(column(down, " - ").map { $0 + 1 }, column(header, "MODE"), "\(context): \(plain)")
        XCTAssertEqual(column(up, "3."), column(header, "VERSION"), "\(context): \(plain)")
        return header
    }

    func testStatusColumnsAlignOnATerminalAndColourFollowsTERMAndNO_COLOR() throws {
        let args = ["-s", server.connectString + ",127.0.0.1:\(try closedPort())", "--timeout", "3s", "status"]
        let coloured = try onTerminal(args, env: ["TERM": "xterm"])
        XCTAssertEqual(coloured.status, 69, coloured.text)   // one of the two is down: no quorum of 2
        XCTAssertTrue(coloured.text.contains("\u{1b}["), "no colour on a terminal: \(coloured.text.debugDescription)")
        // Without the escapes, each column starts where its header does.
        let plain = coloured.text.replacingOccurrences(of: "\u{1b}\\[[0-9;]*m", with: "", options: .regularExpression)
        let header = try assertStatusColumnsAlign(plain, "TERM=xterm")
        let names = header.split(separator: " ")

        // TERM=dumb and NO_COLOR: the same table, without a single escape.
        for env in [["TERM": "dumb"], ["TERM": "xterm", "NO_COLOR": "1"]] {
            let r = try onTerminal(args, env: env)
            XCTAssertEqual(r.status, 69, "\(env): \(r.text)")
            XCTAssertFalse(r.text.contains("\u{1b}"), "\(env): \(r.text.debugDescription)")
            let plainHeader = try assertStatusColumnsAlign(r.text, "\(env)")
            XCTAssertEqual(plainHeader.split(separator: " "), names, "\(env)")
        }
    }
}

// MARK: Loopback helpers

/// A TCP listener on 127.0.0.1 or ::1 whose connections `serve` handles, each on a thread of
/// its own, until `close()`.
final class LoopbackListener: @unchecked Sendable {
    // Unchecked: fd is set in init and only closed (once, under lock) by close().
    private let lock = NSLock()
    private var fd: Int32
    let port: Int

    init(ipv6: Bool, serve: @escaping @Sendable (Int32) -> Void) throws {
        fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FaultKitError("socket: errno \(errno)") }
        let descriptor = fd
        var ok = false
        var bound = 0
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_loopback
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            ok = withUnsafeMutablePointer(to: &address) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, length) == 0 && listen(descriptor, 64) == 0 && getsockname(descriptor, $0, &length) == 0
                }
            }
            bound = Int(UInt16(bigEndian: address.sin6_port))
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            ok = withUnsafeMutablePointer(to: &address) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, length) == 0 && listen(descriptor, 64) == 0 && getsockname(descriptor, $0, &length) == 0
                }
            }
            bound = Int(UInt16(bigEndian: address.sin_port))
        }
        guard ok else { Glibc.close(fd); throw FaultKitError("listen: errno \(errno)") }
        port = bound
        Thread.detachNewThread {
            // Ends when close() shuts the socket down (accept then fails).
            while true {
                let client = accept(descriptor, nil, nil)
                if client < 0 { if errno == EINTR { continue }; return }
                Thread.detachNewThread { serve(client) }
            }
        }
    }

    func close() {
        lock.lock(); defer { lock.unlock() }
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
        fd = -1
    }

    deinit { close() }
}

/// Copies bytes both ways between `client` and 127.0.0.1:`port` until either side ends; closes both.
func relayConnection(_ client: Int32, toPort port: Int) {
    let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = upstream >= 0 && withUnsafePointer(to: &address) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { Glibc.close(client); if upstream >= 0 { Glibc.close(upstream) }; return }
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread { pump(client, upstream); done.signal() }
    pump(upstream, client)
    done.wait()
    Glibc.close(client)
    Glibc.close(upstream)
}

/// Reads what the client sends first, answers with an HTTP error page and closes.
func answerWithHTTPError(_ client: Int32) {
    var buffer = [UInt8](repeating: 0, count: 4096)
    var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
    if poll(&p, 1, 2000) > 0 { _ = recv(client, &buffer, buffer.count, 0) }
    let page = Array("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request".utf8)
    _ = page.withUnsafeBufferPointer { send(client, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
    shutdown(client, Int32(SHUT_RDWR))
    Glibc.close(client)
}

/// Copies `from` to `to` until `from` ends or a write fails; then shuts both down.
private func pump(_ from: Int32, _ to: Int32) {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(from, &buffer, buffer.count, 0)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        var sent = 0
        while sent < n {
            let m = buffer.withUnsafeBufferPointer { send(to, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
            if m <= 0 { break }
            sent += m
        }
        if sent < n { break }
    }
    // Either side ending ends both directions.
    shutdown(from, Int32(SHUT_RDWR))
    shutdown(to, Int32(SHUT_RDWR))
}
