import ArgumentParser
import Foundation

/// `--tz` for commands that take a time argument (`store`/`backup --time`, `pin --until`):
/// the zone in which a time without an offset, or a plain date, is read.
struct TimeZoneOption: ParsableArguments {
    @Option(help: ArgumentHelp("Time zone for --time/--until values without an offset and for plain dates: an IANA name such as Europe/Berlin or UTC (default: the local zone, i.e. TZ or /etc/localtime).", valueName: "TZ"))
    var tz: String?

    /// The zone named by `--tz`, or the local one.
    func zone() throws -> TimeZone {
        try TimeInput.zone(tz)
    }
}
