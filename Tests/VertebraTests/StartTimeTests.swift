import Foundation
import Testing
import VertebraAgent

/// `vertebra dispatch --at TIME | --in DURATION`.
@Suite struct StartTimeTests {
    @Test(arguments: [("90s", 90.0), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45), (" 2H ", 7200)])
    func durationsParse(text: String, seconds: Double) throws {
        #expect(try StartTime.parseDuration(text) == seconds)
    }

    @Test(arguments: ["", "0s", "5x", "h", "1.5h", "-3m", "10m5", "4000d"])
    func badDurationsAreRefused(text: String) {
        #expect(throws: StartTimeError.self) { try StartTime.parseDuration(text) }
    }

    @Test func timesParseWithAZoneOrAsLocalTime() throws {
        let utc = try StartTime.parseTime("2026-12-01T02:00:00Z")
        #expect(utc.timeIntervalSince1970 == 1_796_090_400)
        #expect(try StartTime.parseTime("2026-12-01T03:00:00+01:00") == utc)
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        #expect(try StartTime.parseTime("2026-12-01 03:00", timeZone: berlin) == utc)
        #expect(try StartTime.parseTime("2026-12-01T03:00:00", timeZone: berlin) == utc)
        #expect(try StartTime.parseTime("2026-12-01T01:30:00-00:30") == utc)
        #expect(try StartTime.parseTime("2026-12-01T02:00:00.250Z") == utc.addingTimeInterval(0.25))
        #expect(try StartTime.parseTime("2028-02-29 03:00", timeZone: berlin) == Date(timeIntervalSince1970: 1_835_402_400))
    }

    @Test(arguments: [
        "tomorrow", "2026-13-01 02:00", "2040-01-01T00:00:00Z", "12:00",
        // Dates and times that do not exist are refused, not rolled over into the next month.
        "2026-02-30T02:00:00Z", "2027-02-29 03:00", "2026-12-01 24:10", "2026-12-01 23:60", "2026-12-01T02:00:61Z",
        "2026-12-01T02:00:00+19:00", "2026-12-01T02:00:00Zjunk", "2026-12-1 02:00", "2026-12-01T02:00:00.Z",
    ])
    func badTimesAreRefused(text: String) {
        let now = Date(timeIntervalSince1970: 1_796_000_000)
        #expect(throws: StartTimeError.self) { try StartTime.parseTime(text, now: now) }
    }
}
