import Foundation
import Testing
import VertebraJournal

/// The durations and times `vertebra jobs` and the web view's filters take.
@Suite struct TimeFilterTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func durationsAndTheirSums() {
        #expect(TimeFilter.duration("90s") == 90)
        #expect(TimeFilter.duration("1h30m") == 5_400)
        #expect(TimeFilter.duration("2w") == 1_209_600)
        for bad in ["", "3x", "1h30", "-5m", "99999999999999d", "inf"] { #expect(TimeFilter.duration(bad) == nil, "\(bad)") }
    }

    @Test func timesInTheirFormsAndNothingElse() throws {
        #expect(TimeFilter.time("1h", now: now) == now.addingTimeInterval(-3_600))
        #expect(TimeFilter.time("2025-01-31T12:00:00Z", now: now) == Date(timeIntervalSince1970: 1_738_324_800))
        let local = try #require(TimeFilter.time("2025-01-31T12:00", now: now))
        #expect(TimeFilter.time("2025-01-31 12:00", now: now) == local)
        #expect(TimeFilter.time("2025-01-31T12:00:30", now: now) == local.addingTimeInterval(30))
        let midnight = try #require(TimeFilter.time("2025-01-31", now: now))
        #expect(local.timeIntervalSince(midnight) == 43_200, "the time of day counts (it was ignored)")
        // Trailing characters and impossible dates are no time (they were read as the day).
        for bad in ["2025-01-31xyz", "2025-01-31T25:00", "2025-02-30", "yesterday", "2025-1-3"] {
            #expect(TimeFilter.time(bad, now: now) == nil, "\(bad)")
        }
    }
}
