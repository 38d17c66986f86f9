import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// ZooKeeper's four-letter-word admin commands (`srvr`, `ruok`, `mntr`, ...): a plain-text
/// exchange on the client port, outside the session protocol. The server must allow the word
/// (`4lw.commands.whitelist`; `srvr` is allowed by default since 3.5).
public enum FourLetterWord {
    /// Sends `word` to `host:port` and returns the whole answer, within `timeout` for connecting
    /// and reading together. Blocking: call it off the cooperative pool (see `queryAsync`).
    public static func query(host: String, port: Int, word: String, timeout: Duration = .seconds(2)) throws -> String {
        let deadline = ContinuousClock.now + timeout
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let gai = getaddrinfo(host, String(port), &hints, &list)
        guard gai == 0, let first = list else {
            throw ZooKeeperError(.unavailable, message: "\(host): cannot resolve host: \(String(cString: gai_strerror(gai)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let ai = entry {
            entry = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            defer { close(fd) }
            if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = String(cString: strerror(errno)); continue
            }
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { lastError = "timed out"; continue }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            guard soError == 0 else { lastError = String(cString: strerror(soError)); continue }
            let bytes = Array(word.utf8)
            guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
                lastError = String(cString: strerror(errno)); continue
            }
            var answer = Data()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                guard wait(fd, for: Int16(POLLIN), until: deadline) else {
                    throw ZooKeeperError(.operationTimeout, message: "\(host):\(port): no answer to '\(word)' within \(timeout.milliseconds) ms")
                }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { answer.append(contentsOf: buffer[0..<n]); continue }
                if n == 0 { break }
                if errno == EAGAIN || errno == EINTR { continue }
                if answer.isEmpty { lastError = String(cString: strerror(errno)) }
                break
            }
            return String(decoding: answer, as: UTF8.self)
        }
        throw ZooKeeperError(.unavailable, message: "\(host):\(port): \(lastError)")
    }

    /// `query` on a thread of its own.
    public static func queryAsync(host: String, port: Int, word: String, timeout: Duration = .seconds(2)) async throws -> String {
        let result: Result<String, any Error> = await offload {
            Result { try query(host: host, port: port, word: word, timeout: timeout) }
        }
        return try result.get()
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
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

    /// The `key: value` lines of a `srvr` or `mntr` answer (`mntr` uses tabs).
    public static func fields(of answer: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in answer.split(whereSeparator: \.isNewline) {
            let sep = line.firstIndex(of: "\t") ?? line.firstIndex(of: ":")
            guard let sep else { continue }
            let key = line[..<sep].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
            out[key] = value
        }
        return out
    }
}
