import ArgumentParser
import RepoRepository
import RepoSnapshot
import Foundation

/// Time arguments on the command line, all parsed by `TimeArgument` (one strict grammar).
enum TimeInput {
    /// Help text for a time option: what it accepts and where times without an offset live.
    static func help(_ what: String, zoneFlag: String = "--tz") -> String {
        "\(what) Accepted: RFC 3339 (2024-05-10T18:00:00Z, 2024-05-10T20:00:00+02:00), YYYY-MM-DD HH:MM[:SS[.frac]] (space or T) and YYYY-MM-DD (midnight), the last two read in \(zoneFlag) (default: the local zone)."
    }

    static func zone(_ name: String?) throws -> TimeZone {
        guard let name else { return TimeZone.current }
        guard let z = TimeZone(identifier: name) else {
            throw ValidationError("--tz: unknown time zone \"\(name)\" (use an IANA name like Europe/Berlin or UTC)")
        }
        return z
    }

    /// `text` as a date, or a usage error naming the flag and the value (exit 2).
    static func parse(_ text: String, flag: String, zone: TimeZone) throws -> Date {
        do { return try TimeArgument.parse(text, zone: zone) } catch {
            throw RepoError(.usage, "\(flag): \(error)")
        }
    }

    /// As `parse`, for `validate()`: an ArgumentParser validation error (exit 2, with usage).
    static func check(_ text: String?, flag: String, zone: TimeZone) throws {
        guard let text else { return }
        do { _ = try TimeArgument.parse(text, zone: zone) } catch {
            throw ValidationError("\(flag): \(error)")
        }
    }
}
