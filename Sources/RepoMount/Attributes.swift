public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `stat` shows for one entry of the mount.
public struct Attributes: Equatable, Sendable {
    public enum Kind: Sendable { case directory, file, symlink }

    public var kind: Kind
    /// Permission bits (no file-type bits).
    public var mode: UInt32
    public var size: Int
    public var mtime: FileTime
    /// Owner; nil shows the mounting user.
    public var uid: UInt32?
    public var gid: UInt32?
    public var links: Int

    public init(kind: Kind, mode: UInt32, size: Int, mtime: FileTime, uid: UInt32? = nil, gid: UInt32? = nil, links: Int = 1) {
        self.kind = kind; self.mode = mode; self.size = size; self.mtime = mtime
        self.uid = uid; self.gid = gid; self.links = links
    }
}

/// Seconds and nanoseconds since the Unix epoch.
public struct FileTime: Equatable, Comparable, Sendable {
    public var seconds: Int
    public var nanoseconds: Int

    public init(seconds: Int, nanoseconds: Int = 0) { self.seconds = seconds; self.nanoseconds = nanoseconds }

    public init(_ date: Date) {
        let t = date.timeIntervalSince1970
        let s = t.rounded(.down)
        self.init(seconds: Int(s), nanoseconds: Int(((t - s) * 1e9).rounded()) % 1_000_000_000)
    }

    public static let zero = FileTime(seconds: 0)

    public static func < (a: FileTime, b: FileTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// Parses RFC 3339 (`2024-05-01T12:00:00.123456789Z`, `…+02:00`) exactly, nanoseconds
    /// included, without a formatter (directories of many files parse thousands of these).
    public static func parse(_ text: String) -> FileTime? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= b.count else { return nil }
            var v = 0
            for i in from..<(from + n) {
                let c = b[i]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
              b[10] == 84 || b[10] == 116 || b[10] == 32, let h = num(11, 2), b[13] == 58, let mi = num(14, 2),
              b[16] == 58, let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s <= 60
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count && b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48 && b[i] <= 57 {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 48); digits += 1 }
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanos *= 10 }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let om = num(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        return FileTime(seconds: daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset, nanoseconds: nanos)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// `2024-05-01T12:00:00Z` (UTC, whole seconds): the name of a snapshot's time in the mount.
    public var directoryName: String {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1,
                      Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }
}

/// Turns any stored name into one path component: `/` (allowed in stream names), NUL, `.`,
/// `..` and the empty name cannot appear in a directory listing, so they are percent-escaped,
/// and `%` itself too so that the mapping stays one-to-one.
public enum PathName {
    public static func escape(_ name: String) -> String {
        if name.isEmpty { return "%" }
        if name == "." { return "%2E" }
        if name == ".." { return "%2E%2E" }
        guard name.contains(where: { $0 == "/" || $0 == "%" || $0 == "\0" }) else { return name }
        var out = ""
        for ch in name.unicodeScalars {
            switch ch {
            case "%": out += "%25"
            case "/": out += "%2F"
            case "\0": out += "%00"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
