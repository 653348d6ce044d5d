import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 timestamps without Foundation's date formatters (which build an ICU formatter per
/// use and dominated `forget` over hundreds of snapshots).
public enum RFC3339 {
    /// Parses `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|±HH:MM)` into seconds since the epoch and
    /// nanoseconds; nil if malformed. Fractions beyond nine digits are truncated.
    public static func parse(_ text: String) -> (seconds: Int64, nanoseconds: Int32)? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for c in b[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 20, let year = num(0, 4), let mon = num(5, 2), let day = num(8, 2),
              let hour = num(11, 2), let min = num(14, 2), let sec = num(17, 2),
              b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58,
              (1...12).contains(mon), (1...31).contains(day), hour < 24, min < 60, sec <= 60
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48 && b[i] <= 57 {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 48); digits += 1 }
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanos *= 10 }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let om = num(i + 4, 2) else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else { return nil }
        guard i == b.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900); parts.tm_mon = Int32(mon - 1); parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour); parts.tm_min = Int32(min); parts.tm_sec = Int32(sec)
        return (Int64(timegm(&parts)) - Int64(offset), Int32(nanos))
    }
}
