import XCTest
import Foundation
@testable import RepoSnapshot

/// The strict parser every time argument goes through (`--time`, `--now`, `pin --until`).
final class TimeArgumentTests: XCTestCase {
    let utc = TimeZone(identifier: "UTC")!
    let berlin = TimeZone(identifier: "Europe/Berlin")!
    let newYork = TimeZone(identifier: "America/New_York")!

    private func seconds(_ text: String, _ zone: TimeZone? = nil, file: StaticString = #filePath, line: UInt = #line) -> Double? {
        do { return try TimeArgument.parse(text, zone: zone ?? utc).timeIntervalSince1970 } catch {
            XCTFail("\(text): \(error)", file: file, line: line)
            return nil
        }
    }

    private func rejects(_ text: String, _ fragment: String, zone: TimeZone? = nil, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let d = try TimeArgument.parse(text, zone: zone ?? utc)
            XCTFail("\(text) was accepted as \(d)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.value, text, file: file, line: line)
            XCTAssertTrue(error.description.contains(fragment), "\(text): \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains("\"\(text)\""), "the message names the value: \(error)", file: file, line: line)
        }
    }

    func testTimeOfDayIsKeptWithSpaceOrT() {
        // The tracker's example: the time of day used to be dropped (filed at midnight).
        XCTAssertEqual(seconds("2024-05-10 18:00:00"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10T18:00:00"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10t18:00"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10 18:00"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10"), 1_715_299_200)
    }

    func testRFC3339WithOffsets() {
        XCTAssertEqual(seconds("2024-05-10T18:00:00Z"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10T18:00:00z"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10T20:00:00+02:00"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10T13:30:00-04:30"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10 18:00Z"), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-11T17:59:00+23:59"), 1_715_364_000)
        // An offset wins over the zone.
        XCTAssertEqual(seconds("2024-05-10T18:00:00Z", berlin), 1_715_364_000)
    }

    func testFractions() throws {
        XCTAssertEqual(seconds("2024-05-10T18:00:00.5Z"), 1_715_364_000.5)
        XCTAssertEqual(seconds("2024-05-10T18:00:00.250"), 1_715_364_000.25)
        let ns = try TimeArgument.parse("1970-01-01T00:00:01.123456789Z", zone: utc).timeIntervalSince1970
        XCTAssertEqual(ns, 1.123456789, accuracy: 1e-6)   // Date holds ~0.1 µs here
        // Beyond nanoseconds the digits are read and dropped.
        let long = try TimeArgument.parse("1970-01-01T00:00:01.1234567891234Z", zone: utc).timeIntervalSince1970
        XCTAssertEqual(long, 1.123456789, accuracy: 1e-6)
        rejects("2024-05-10T18:00:00.Z", "digits after")
        rejects("2024-05-10T18:00.5", "unexpected text")
    }

    func testLeapYears() {
        XCTAssertNotNil(seconds("2024-02-29"))
        XCTAssertNotNil(seconds("2000-02-29"))
        XCTAssertNotNil(seconds("1600-02-29T12:00:00Z"))
        rejects("2023-02-29", "has 28 days")
        rejects("1900-02-29", "has 28 days")
        rejects("2100-02-29T00:00:00Z", "has 28 days")
        rejects("2024-02-30", "has 29 days")
        XCTAssertEqual(seconds("2000-03-01"), 951_868_800)
        XCTAssertEqual(seconds("1969-12-31T23:59:59Z"), -1)
        XCTAssertEqual(seconds("0001-01-01T00:00:00Z"), -62_135_596_800)
        XCTAssertEqual(seconds("9999-12-31T23:59:59Z"), 253_402_300_799)
    }

    func testDaysOfEveryMonth() {
        for (month, days) in [1: 31, 2: 28, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31] {
            let m = month < 10 ? "0\(month)" : "\(month)"
            XCTAssertNotNil(seconds("2023-\(m)-\(days)"))
            rejects("2023-\(m)-\(days + 1)", "has \(days) days")
            rejects("2023-\(m)-00", "does not exist")
        }
    }

    func testTheTrackersInvalidExamples() {
        rejects("2023-02-29", "day 29")
        rejects("2024-04-31", "day 31")
        rejects("2024-05-10T25:00", "hour 25")
        rejects("2024-05-10T23:60", "minute 60")
        rejects("2024-05-10T12:00:00+25:00", "offset hours 25")
    }

    func testOtherMalformedValues() {
        for bad in ["", "now", "yesterday", "2024", "2024-05", "2024-5-10", "24-05-10", "2024/05/10", "2024-05-10T",
                    "2024-05-10 ", " 2024-05-10", "2024-05-10T18", "2024-05-10T18:0", "2024-05-10T1:00",
                    "2024-05-10T18:00:0", "2024-05-10T18:00:60", "2024-05-10T18:00:00+0200", "2024-05-10T18:00:00+02",
                    "2024-05-10T18:00:00+02:60", "2024-05-10T18:00:00 Z", "2024-05-10T18:00:00ZZ", "2024-05-10x18:00",
                    "2024-05-10  18:00", "2024-13-01", "2024-00-10", "0000-01-01", "2024-05-10T18:00:00UTC",
                    "1715364000", "2024-05-10T18:00:00.123+", "２０２４-05-10"] {
            XCTAssertThrowsError(try TimeArgument.parse(bad, zone: utc), "\(bad) must be rejected")
        }
    }

    func testTimesWithoutOffsetAreReadInTheZone() {
        // Summer: Berlin is UTC+2, New York UTC-4.
        XCTAssertEqual(seconds("2024-05-10 20:00:00", berlin), 1_715_364_000)
        XCTAssertEqual(seconds("2024-05-10T14:00", newYork), 1_715_364_000)
        // Winter: UTC+1; a plain date is midnight there.
        XCTAssertEqual(seconds("2024-01-15", berlin), 1_705_273_200)
        // The hour skipped in spring does not exist; the hour repeated in autumn is the first.
        rejects("2024-03-31 02:30", "does not exist in Europe/Berlin", zone: berlin)
        XCTAssertEqual(seconds("2024-03-31 03:00", berlin), 1_711_846_800)
        XCTAssertEqual(seconds("2024-10-27 02:30", berlin), 1_729_989_000)
        XCTAssertEqual(seconds("2024-10-27 03:30", berlin), 1_729_996_200)
    }

    func testTheLocalZoneComesFromTZ() {
        // The CLI passes TimeZone.current when --tz is absent; Foundation reads it from TZ.
        let zone = TimeZone.current
        let wall = "2024-05-10 18:00:00"
        let expected = 1_715_364_000 - Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: 1_715_364_000)))
        XCTAssertEqual(seconds(wall, zone), expected)
    }
}
