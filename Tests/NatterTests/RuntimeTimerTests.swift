import Dispatch
import NIOConcurrencyHelpers
import Testing

@testable import Natter

/// Timers scheduled on a runtime clock fire at their time unless cancelled first.
@Suite(.timeLimit(.minutes(1))) struct RuntimeTimerTests {
    /// Waits (real time, up to 5 s) until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(5)
        while !condition(), ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(2)) }
    }

    @Test func theSystemClocksTimerFiresAtItsTimeAndACancelledOneNever() async throws {
        let clock = SystemClock()
        let fired = NIOLockedValueBox<[String]>([])
        let start = ContinuousClock.now
        _ = clock.schedule(at: clock.now + .milliseconds(30)) { fired.withLockedValue { $0.append("kept") } }
        let cancelled = clock.schedule(at: clock.now + .milliseconds(10)) { fired.withLockedValue { $0.append("cancelled") } }
        cancelled.cancel()
        try await eventually { !fired.withLockedValue { $0 }.isEmpty }
        #expect(ContinuousClock.now - start >= .milliseconds(30))
        try await Task.sleep(for: .milliseconds(50))
        #expect(fired.withLockedValue { $0 } == ["kept"])
    }

    @Test func aPassedDeadlineFiresAtOnceAndAFarOneIsLeftToATask() {
        let now = ContinuousClock.now
        #expect(SystemClock.interval(until: now - .seconds(3), now: now) == .nanoseconds(0))
        #expect(SystemClock.interval(until: now + .milliseconds(1500), now: now) == .nanoseconds(1_500_000_000))
        #expect(SystemClock.interval(until: now + .seconds(86_400 * 365 * 10), now: now) == nil, "a job's deadline years away")
    }

    @Test func aFarDeadlineOnTheSystemClockIsHonouredNotCutShort() async throws {
        let fired = NIOLockedValueBox(false)
        let timer = SystemClock().schedule(at: .now + .seconds(86_400 * 2)) { fired.withLockedValue { $0 = true } }
        try await Task.sleep(for: .milliseconds(20))
        #expect(!fired.withLockedValue { $0 })
        timer.cancel()
    }

    @Test func theManualClocksTimerFiresOnlyWhenTheTimeIsAdvancedPastIt() async throws {
        let clock = ManualClock()
        let fired = NIOLockedValueBox<[String]>([])
        _ = clock.schedule(at: clock.now + .seconds(10)) { fired.withLockedValue { $0.append("lease") } }
        let cancelled = clock.schedule(at: clock.now + .seconds(5)) { fired.withLockedValue { $0.append("budget") } }
        try await eventually { clock.sleeperCount == 2 }
        cancelled.cancel()
        try await eventually { clock.sleeperCount == 1 }
        clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(20))
        #expect(fired.withLockedValue { $0 }.isEmpty)
        clock.advance(by: .seconds(1))
        try await eventually { !fired.withLockedValue { $0 }.isEmpty }
        #expect(fired.withLockedValue { $0 } == ["lease"])
    }
}
