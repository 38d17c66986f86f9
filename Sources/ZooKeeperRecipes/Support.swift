import Foundation
import ZooKeeper

/// `86400s`, `500ms`: a duration as zkctl's parser reads it back (whole seconds when exact).
public func durationText(_ d: Duration) -> String {
    let ms = d.milliseconds
    return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
}

/// Milliseconds since the epoch as ISO 8601 UTC.
public func isoTime(_ ms: Int64) -> String {
    let date = Date(timeIntervalSince1970: Double(ms) / 1000)
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: date)
}

/// An ISO 8601 time as stored (run-once records) in milliseconds since the epoch, for JSON
/// output; nil when it does not parse.
public func isoMilliseconds(_ text: String) -> Int64? {
    let f = ISO8601DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
        f.formatOptions = options
        if let date = f.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    }
    return nil
}

/// Milliseconds since the epoch, now.
public func nowMilliseconds() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
}

/// This machine's name, without a DNS lookup.
public func localHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
