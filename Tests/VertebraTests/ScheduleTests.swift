import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraAgent
import VertebraXML

/// Cron expressions, and periodic jobs across coordinator restarts on a manual clock.
@Suite(.timeLimit(.minutes(1))) struct ScheduleTests {
    static let utc = TimeZone(identifier: "UTC") ?? .current
    /// 2026-11-30T00:00:30Z
    static let base = Date(timeIntervalSince1970: 1_796_083_230)

    private func time(_ text: String) -> Date { ISO8601DateFormatter().date(from: text) ?? .distantPast }

    @Test func cronExpressionsFindTheirNextTime() throws {
        let everyTen = try CronExpression("*/10 * * * *", timeZone: Self.utc)
        #expect(everyTen.next(after: time("2026-11-30T00:00:30Z")) == time("2026-11-30T00:10:00Z"))
        #expect(everyTen.next(after: time("2026-11-30T00:10:00Z")) == time("2026-11-30T00:20:00Z"))
        let nightly = try CronExpression("30 2 * * 1-5", timeZone: Self.utc)  // weekdays 02:30
        #expect(nightly.next(after: time("2026-12-04T03:00:00Z")) == time("2026-12-07T02:30:00Z"))  // Friday -> Monday
        let either = try CronExpression("0 0 1 * 0", timeZone: Self.utc)  // the 1st, or any Sunday
        #expect(either.next(after: time("2026-11-30T00:00:00Z")) == time("2026-12-01T00:00:00Z"))
        #expect(either.next(after: time("2026-12-01T00:00:00Z")) == time("2026-12-06T00:00:00Z"))
        #expect(try CronExpression("@daily", timeZone: Self.utc).next(after: time("2026-11-30T12:00:00Z")) == time("2026-12-01T00:00:00Z"))
        #expect(try CronExpression("0 12 29 2 *", timeZone: Self.utc).next(after: time("2026-03-01T00:00:00Z")) == time("2028-02-29T12:00:00Z"))
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        #expect(try CronExpression("0 2 * * *", timeZone: berlin).next(after: time("2026-11-30T00:00:00Z")) == time("2026-11-30T01:00:00Z"))
    }

    @Test(arguments: ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *",
                      "5-1 * * * *", "a * * * *", "0 0 30 2 *", "@often"])
    func badCronExpressionsAreRefused(text: String) {
        #expect(throws: CronExpression.ParseError.self) { try CronExpression(text) }
    }

    /// A cluster whose coordinator's wall clock follows the manual clock from ``base``.
    private func start(_ cluster: MemoryCluster, _ journal: ExchangeJournal, _ clock: ManualClock, _ entries: [ScheduleEntry]) async throws -> Coordinator {
        let origin = clock.now
        return try await cluster.startCoordinator(journal: journal) {
            $0.schedule = entries
            $0.wallClock = { Self.base.addingTimeInterval(TimeInterval((clock.now - origin).components.seconds)) }
        }
    }

    private func entry(_ cron: String, _ text: String, missed: ScheduleEntry.Missed = .runOnce) throws -> ScheduleEntry {
        ScheduleEntry(
            cron: try CronExpression(cron, timeZone: Self.utc), path: Echo.path,
            arguments: try TypedValueEncoder().encodeFields(Echo(text: text)), missed: missed, id: "\(cron) \(text)")
    }

    private func jobs(_ journal: ExchangeJournal, _ text: String) async throws -> [Job] {
        try await journal.jobs(matching: JobFilter(operation: Echo.path.path, limit: 1000)).filter { $0.arguments.contains(">\(text)<") }
    }

    @Test func aPeriodicEntryFiresOncePerPeriodAcrossARestart() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let schedule = [try entry("*/10 * * * *", "tick")]
        var coordinator = try await start(cluster, journal, clock, schedule)
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        try await cluster.advance(clock, by: .seconds(9 * 60))  // 00:09:30
        // From here in 2 s steps: a job's op must not time out (10 s) between two looks.
        #expect(try await jobs(journal, "tick").isEmpty)
        try await cluster.eventually("the 00:10 run", step: .seconds(2)) { (try? await self.jobs(journal, "tick").count) == 1 }
        // A restart at about 00:12 neither repeats the 00:10 run nor loses the 00:20 one.
        await coordinator.stop()
        coordinator = try await cluster.startCoordinator(journal: journal) {
            $0.schedule = schedule
            let origin = clock.now
            $0.wallClock = { Self.base.addingTimeInterval(TimeInterval(12 * 60 + (clock.now - origin).components.seconds)) }
        }
        try await cluster.waitForWorkers(coordinator, 1)
        try await cluster.advance(clock, by: .seconds(60))
        #expect(try await jobs(journal, "tick").count == 1)
        try await cluster.eventually("the 00:20 run", step: .seconds(2)) { (try? await self.jobs(journal, "tick").count) == 2 }
        try await cluster.eventually("both runs' ends") {
            (try? await self.jobs(journal, "tick").allSatisfy { $0.state == .done }) == true
        }
        await worker.stop()
        await coordinator.stop()
    }

    @Test func runsMissedWhileDownRunOnceOrAreSkippedPerEntry() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let schedule = [try entry("*/10 * * * *", "catch-up"), try entry("*/10 * * * *", "skipped", missed: .skip)]
        let first = try await start(cluster, journal, clock, schedule)  // 00:00:30: both entries start now
        await first.stop()
        // Down from 00:00:30 to 00:45: the 00:10, 00:20, 00:30 and 00:40 runs were missed.
        let coordinator = try await cluster.startCoordinator(journal: journal) {
            $0.schedule = schedule
            let origin = clock.now
            $0.wallClock = { Self.base.addingTimeInterval(TimeInterval(44 * 60 + 30 + (clock.now - origin).components.seconds)) }
        }
        try await cluster.eventually("the catch-up run", step: .zero) { (try? await self.jobs(journal, "catch-up").count) == 1 }
        try await cluster.settle()
        #expect(try await jobs(journal, "skipped").isEmpty)
        #expect(try await jobs(journal, "catch-up").count == 1)
        // Both go on at 00:50.
        try await cluster.eventually("the 00:50 runs", step: .seconds(10)) {
            let skipped = (try? await self.jobs(journal, "skipped").count) ?? 0
            let caughtUp = (try? await self.jobs(journal, "catch-up").count) ?? 0
            return skipped == 1 && caughtUp == 2
        }
        await coordinator.stop()
    }
}

/// `--schedule PATH`: the file's syntax and its errors.
@Suite struct ScheduleFileTests {
    @Test func entriesParseWithTheirMissedPolicy() throws {
        let text = """
            # nightly report, and a tick every 15 minutes that skips what it missed
            30 2 * * *  /reports/nightly day=i4:1
            */15 * * * * missed=skip /vertebra/echo text="tick tock"
            @hourly /vertebra/echo
            """
        let entries = try ScheduleFile.parse(text, name: "s.txt", timeZone: TimeZone(identifier: "UTC") ?? .current)
        #expect(entries.count == 3)
        #expect(entries[0].path == "/reports/nightly" && entries[0].missed == .runOnce && entries[0].arguments.count == 1)
        #expect(entries[1].missed == .skip && entries[1].arguments.first?.text == "tick tock")
        #expect(entries[2].cron.description == "@hourly" && entries[2].arguments.isEmpty)
        #expect(Set(entries.map(\.id)).count == 3)
        let crlf = try ScheduleFile.parse(text.replacingOccurrences(of: "\n", with: "\r\n"), name: "s.txt", timeZone: TimeZone(identifier: "UTC") ?? .current)
        #expect(crlf.map(\.id) == entries.map(\.id), "Windows line ends read the same")
    }

    @Test(arguments: [
        ("61 * * * * /a", "s.txt:1:"), ("* * * * * missed=later /a", "missed= takes run or skip"), ("* * * * * echo", "operation path"),
        ("", "no entries"), ("@daily /a\n@daily /a", "twice"), ("* * * * *", "CRON [missed=run|skip] OPERATION"),
        ("* * * * * /a count=i4:x", "s.txt:1:"), ("0 2 * * /vertebra/echo", "the cron expression has 4 fields; it takes 5"),
    ])
    func badLinesNameTheLine(text: String, message: String) {
        #expect {
            _ = try ScheduleFile.parse(text, name: "s.txt")
        } throws: { error in
            "\(error)".contains(message)
        }
    }
}
