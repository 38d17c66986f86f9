import Glibc

// The few text helpers zkctl took from Foundation, written over the standard library so that no
// module the tool links needs more than FoundationEssentials. Each gives the text its Foundation
// counterpart gave (Tests/ZKCtlTests/TextSupportTests.swift compares them on many inputs).

extension Unicode.Scalar {
    /// Foundation's `CharacterSet.whitespaces`: the space separators (Zs), the tab, and the zero
    /// width space (U+200B, a space separator in older Unicode, which Foundation kept).
    package var isBlank: Bool {
        value == 0x09 || value == 0x200B || properties.generalCategory == .spaceSeparator
    }

    /// Foundation's `CharacterSet.whitespacesAndNewlines`: blanks, U+000A-U+000D, U+0085, and the
    /// line and paragraph separators (U+2028, U+2029).
    package var isBlankOrNewline: Bool {
        isBlank || (0x0A...0x0D).contains(value) || value == 0x85 || value == 0x2028 || value == 0x2029
    }
}

extension Unicode.Scalar {
    /// A mark that joins the character before it (Mn, Mc, Me).
    fileprivate var isCombiningMark: Bool {
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }
}

extension Array where Element == String {
    /// The strings with `separator` between them, as `joined(separator:)` gives them. The
    /// standard library's generic `joined` looks up conformances at run time on its first call,
    /// about a tenth of a millisecond of a one-shot command's start (benchmarks/FINDINGS.md §14);
    /// this one is plain concatenation.
    package func joinedText(_ separator: String) -> String {
        var text = ""
        for (i, part) in enumerated() {
            if i > 0 { text += separator }
            text += part
        }
        return text
    }
}

extension StringProtocol {
    /// The text without leading and trailing blanks (`trimmingCharacters(in: .whitespaces)`).
    package func trimmingBlanks() -> String {
        trimmingScalars(where: \.isBlank)
    }

    /// The text without leading and trailing blanks and line ends
    /// (`trimmingCharacters(in: .whitespacesAndNewlines)`).
    package func trimmingBlanksAndNewlines() -> String {
        trimmingScalars(where: \.isBlankOrNewline)
    }

    private func trimmingScalars(where drop: (Unicode.Scalar) -> Bool) -> String {
        let scalars = Substring(self).unicodeScalars
        guard let first = scalars.firstIndex(where: { !drop($0) }) else { return "" }
        var end = scalars.endIndex
        while end > first {
            let before = scalars.index(before: end)
            if !drop(scalars[before]) { break }
            end = before
        }
        return String(scalars[first..<end])
    }

    /// Whether `needle`'s bytes occur in this text's UTF-8, by a plain scan. The standard
    /// library's `firstRange(of:)` sets up a searcher, 1.5 % of a one-shot `get`'s profile.
    package func containsBytes(of needle: String) -> Bool {
        let hay = Array(utf8), pattern = Array(needle.utf8)
        guard !pattern.isEmpty else { return true }
        guard hay.count >= pattern.count else { return false }
        for start in 0...(hay.count - pattern.count) where hay[start] == pattern[0] {
            var i = 1
            while i < pattern.count && hay[start + i] == pattern[i] { i += 1 }
            if i == pattern.count { return true }
        }
        return false
    }

    /// The text cut or filled with spaces to `length` UTF-16 units, as Foundation's
    /// `padding(toLength:withPad:" ",startingAt:0)` (the same as characters for ASCII).
    package func padded(to length: Int) -> String {
        let units = utf16.count
        if units < length { return String(self) + String(repeating: " ", count: length - units) }
        if units == length { return String(self) }
        return String(decoding: Array(utf16.prefix(length)), as: UTF16.self)
    }

    /// Every occurrence of `target` replaced by `replacement`, from the left without overlaps,
    /// as Foundation's `replacingOccurrences(of:with:)` replaced: matched scalar by scalar (the
    /// line feed of a CR LF is found), but not where a combining mark follows (a quote with an
    /// accent on it is not a quote).
    package func replacingEvery(_ target: String, with replacement: String) -> String {
        let needle = Array(target.unicodeScalars)
        guard !needle.isEmpty else { return String(self) }
        let scalars = Array(unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            let end = i + needle.count
            if scalars[i] == needle[0], end <= scalars.count, scalars[i..<end].elementsEqual(needle),
               end == scalars.count || !scalars[end].isCombiningMark {
                out.append(contentsOf: replacement.unicodeScalars)
                i = end
            } else {
                out.append(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    /// Every `target` scalar replaced by `replacement`, whatever follows it. For quoting and
    /// escaping (shell, SQL, Prometheus labels): there a quote with a combining mark after it
    /// still ends the quoted text, so `replacingEvery`'s Foundation rule (which leaves such a
    /// quote alone) would let the rest of the value out of the quotes.
    package func replacingEveryScalar(_ target: Unicode.Scalar, with replacement: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            if scalar == target { out.append(contentsOf: replacement.unicodeScalars) } else { out.append(scalar) }
        }
        return String(out)
    }
}

/// `0x` and the lower-case hex digits of `value` (printf's `0x%llx`).
package func hexText(_ value: UInt64) -> String {
    "0x" + String(value, radix: 16)
}

/// A session id or zxid as `0x...`, its bits read as unsigned (printf's `0x%llx` of an Int64).
package func hexText(_ value: Int64) -> String {
    hexText(UInt64(bitPattern: value))
}

/// `value` in lower-case hex, zero-padded to `width` digits (printf's `%0<width>x`).
package func paddedHex(_ value: UInt32, width: Int) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

/// `value` with one decimal, rounded as printf's `%.1f` rounds (C's own formatter does it, so
/// 0.05 gives "0.1" or "0.0" by its exact binary value, as before).
package func oneDecimal(_ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 32)
    let needed = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.1f", $0) }
    if needed >= buffer.count {
        buffer = [CChar](repeating: 0, count: Int(needed) + 1)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.1f", $0) }
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Milliseconds since the epoch as ISO 8601 UTC with milliseconds: `2024-05-01T12:00:00.000Z`.
package func isoText(milliseconds ms: Int64) -> String {
    let (secondsTotal, millis) = ms.quotientAndRemainder(dividingBy: 1000)
    var seconds = secondsTotal
    var milli = millis
    if milli < 0 { milli += 1000; seconds -= 1 }
    var days = seconds / 86400
    var secondOfDay = seconds % 86400
    if secondOfDay < 0 { secondOfDay += 86400; days -= 1 }
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's civil_from_days.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
    let milliText = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
    let yearText = year >= 0 && year < 1000 ? String(repeating: "0", count: 4 - String(year).count) + String(year) : String(year)
    return "\(yearText)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)).\(milliText)Z"
}
