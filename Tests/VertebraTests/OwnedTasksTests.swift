import Synchronization
import Testing
@testable import Vertebra

/// The tasks a coordinator or worker starts are children of one group: closing it cancels
/// them, and the close returns only once every one has ended.
@Suite(.timeLimit(.minutes(1))) struct OwnedTasksTests {
    final class Log: Sendable {
        private let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// A task that runs until cancelled, then takes a little longer to end.
    static func untilCancelled(_ name: String, _ log: Log) -> OwnedTasks.Body {
        {
            log.add("\(name) started")
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(10)) }
            try? await Task.sleep(for: .milliseconds(0))
            await Task.yield()
            log.add("\(name) ended")
        }
    }

    @Test func closeAndWaitReturnsOnceEveryTaskEnded() async throws {
        let tasks = OwnedTasks()
        let log = Log()
        tasks.runUnlessRunning()
        tasks.runUnlessRunning()  // one group, however often asked
        for name in ["a", "b", "c"] { #expect(tasks.spawn(Self.untilCancelled(name, log))) }
        while log.all.count < 3 { try await Task.sleep(for: .milliseconds(1)) }
        await tasks.closeAndWait()
        #expect(Set(log.all) == ["a started", "b started", "c started", "a ended", "b ended", "c ended"])
        #expect(!tasks.spawn { log.add("late") }, "a closed group takes no task")
        try await Task.sleep(for: .milliseconds(20))
        #expect(!log.all.contains("late"))
        await tasks.closeAndWait()  // again: at once
    }

    @Test func aGroupThatNeverRanClosesAtOnce() async {
        let tasks = OwnedTasks()
        await tasks.closeAndWait()
        #expect(!tasks.spawn {})
    }

    @Test func ownReturnsOnlyAfterItsTasksEnded() async throws {
        let tasks = OwnedTasks()
        let log = Log()
        let value = try await tasks.own {
            tasks.runUnlessRunning()  // owned already: no second group
            tasks.spawn(Self.untilCancelled("a", log))
            while log.all.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
            return 7
        }
        #expect(value == 7)
        #expect(log.all == ["a started", "a ended"])
    }

    @Test func ownClosesTheGroupWhenItsBodyThrows() async throws {
        struct Failed: Error {}
        let tasks = OwnedTasks()
        let log = Log()
        await #expect(throws: Failed.self) {
            try await tasks.own {
                tasks.spawn(Self.untilCancelled("a", log))
                while log.all.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
                throw Failed()
            }
        }
        #expect(log.all == ["a started", "a ended"])
    }

    @Test func aCancellableTaskEndsAloneAndTheOthersGoOn() async throws {
        let tasks = OwnedTasks()
        let log = Log()
        tasks.runUnlessRunning()
        let first = try #require(tasks.spawnCancellable(Self.untilCancelled("a", log)))
        tasks.spawn(Self.untilCancelled("b", log))
        while log.all.count < 2 { try await Task.sleep(for: .milliseconds(1)) }
        first.cancel()
        while !log.all.contains("a ended") { try await Task.sleep(for: .milliseconds(1)) }
        #expect(!log.all.contains("b ended"))
        await tasks.closeAndWait()
        #expect(log.all.contains("b ended"))
    }

    @Test func aCancellableTaskThatEndsByItselfLeavesNothingWaiting() async throws {
        let tasks = OwnedTasks()
        let ended = Log()
        tasks.runUnlessRunning()
        let handle = try #require(tasks.spawnCancellable { ended.add("done") })
        while ended.all.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        handle.cancel()  // after its end: nothing happens
        await tasks.closeAndWait()
        #expect(ended.all == ["done"])
    }

    /// `start()` then `run()` (a service started by hand first): one group, and `run()` still
    /// returns only once its tasks have ended.
    @Test func ownAfterAStartUsesTheRunningGroup() async throws {
        let tasks = OwnedTasks()
        let log = Log()
        try await tasks.starting {}
        tasks.spawn(Self.untilCancelled("a", log))
        try await tasks.own {
            tasks.spawn(Self.untilCancelled("b", log))
            while log.all.count < 2 { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(Set(log.all) == ["a started", "b started", "a ended", "b ended"])
    }

    /// A stopped coordinator or worker does not start again: its tasks could not run.
    @Test func startingAfterACloseIsAnError() async throws {
        let tasks = OwnedTasks()
        await tasks.closeAndWait()
        await #expect(throws: VertebraError.self) { try await tasks.starting {} }
    }
}
