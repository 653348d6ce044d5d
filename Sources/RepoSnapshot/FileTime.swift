import RepoPrimitives
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file timestamp with nanosecond precision, written as RFC 3339 UTC with nine fractional
/// digits (`2026-11-21T00:59:43.123456789Z`) so that `mtime` restores exactly.
public struct FileTime: Sendable, Equatable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) { self.seconds = seconds; self.nanoseconds = nanoseconds }

    public init(_ ts: timespec) { self.init(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec)) }

    public var timespec: Glibc.timespec { Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds)) }

    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9) }

    public static func < (a: FileTime, b: FileTime) -> Bool { (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds) }

    public var rfc3339: String {
        // Hand-rolled (no String(format:), no gmtime): this runs several times per file in a
        // backup. Days-to-civil conversion after Howard Hinnant's public-domain algorithm.
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = Int(seconds - days * 86400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        var out = [UInt8]()
        out.reserveCapacity(30)
        func digits(_ v: Int, _ n: Int) {
            var buf = [UInt8](repeating: 48, count: n)
            var x = v
            for i in stride(from: n - 1, through: 0, by: -1) { buf[i] = UInt8(48 + x % 10); x /= 10 }
            out.append(contentsOf: buf)
        }
        digits(year, 4); out.append(45); digits(month, 2); out.append(45); digits(day, 2)
        out.append(84); digits(secs / 3600, 2); out.append(58); digits(secs / 60 % 60, 2); out.append(58)
        digits(secs % 60, 2); out.append(46); digits(Int(nanoseconds), 9); out.append(90)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; nil if malformed.
    public init?(rfc3339 text: String) {
        guard let (s, ns) = RFC3339.parse(text) else { return nil }
        self.init(seconds: s, nanoseconds: ns)
    }
}
