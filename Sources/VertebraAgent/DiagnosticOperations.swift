import Foundation
import Vertebra
import VertebraXML

/// The built-in operations `vertebra worker` hosts, for trying a setup out and for tests.
public enum Diagnostics {
    /// `/vertebra/echo`: answers its text (retryable: running it twice is harmless).
    public struct Echo: VertebraOperation {
        public static let path: Resource = "/vertebra/echo"
        public static let isRetryable = true
        public typealias Result = String
        public var text: String
        public init(text: String) { self.text = text }
    }

    /// `/vertebra/sleep`: sleeps `milliseconds`, answers how long it slept. Not retryable, like
    /// any operation with effects.
    public struct Sleep: VertebraOperation {
        public static let path: Resource = "/vertebra/sleep"
        public struct Result: Codable, Sendable, Equatable {
            public var slept: Int
            public init(slept: Int) { self.slept = slept }
        }
        public var milliseconds: Int
        public init(milliseconds: Int) { self.milliseconds = milliseconds }
    }

    /// `/vertebra/idempotent-sleep`: like sleep, but retryable.
    public struct IdempotentSleep: VertebraOperation {
        public static let path: Resource = "/vertebra/idempotent-sleep"
        public static let isRetryable = true
        public typealias Result = Sleep.Result
        public var milliseconds: Int
        public init(milliseconds: Int) { self.milliseconds = milliseconds }
    }

    /// `/vertebra/count`: streams `count` chunks `{index, of}`, `intervalMilliseconds` apart.
    public struct Count: VertebraOperation {
        public static let path: Resource = "/vertebra/count"
        public static let isRetryable = true
        public struct Result: Codable, Sendable, Equatable {
            public var index: Int
            public var of: Int
            public init(index: Int, of: Int) {
                self.index = index
                self.of = of
            }
        }
        public var count: Int
        public var intervalMilliseconds: Int?
        public init(count: Int, intervalMilliseconds: Int? = nil) {
            self.count = count
            self.intervalMilliseconds = intervalMilliseconds
        }
    }

    /// `/vertebra/fail`: fails with `message` (fatal: never retried).
    public struct Fail: VertebraOperation {
        public static let path: Resource = "/vertebra/fail"
        public typealias Result = String
        public var message: String
        public init(message: String) { self.message = message }
    }

    /// `/vertebra/journal-counters`: the worker journal's counters since it opened (what
    /// `vertebra bench jobs` reports per job for the workers). Retryable: it only reads.
    public struct JournalCounters: VertebraOperation {
        public static let path: Resource = "/vertebra/journal-counters"
        public static let isRetryable = true
        public struct Result: Codable, Sendable, Equatable {
            /// Transactions committed.
            public var commits: Int
            /// Writes whose caller waited for their commit.
            public var awaitedWrites: Int
            /// Writes queued without waiting.
            public var lazyWrites: Int
            /// Records written.
            public var records: Int
            public init(commits: Int, awaitedWrites: Int, lazyWrites: Int, records: Int) {
                self.commits = commits
                self.awaitedWrites = awaitedWrites
                self.lazyWrites = lazyWrites
                self.records = records
            }
        }
        public init() {}
    }

    /// Registers all of them.
    public static func register(on worker: Worker) async throws {
        try await worker.register(Echo.self) { op, _ in op.text }
        try await worker.register(Sleep.self) { op, _ in try await sleep(op.milliseconds) }
        try await worker.register(IdempotentSleep.self) { op, _ in try await sleep(op.milliseconds) }
        try await worker.registerStreaming(Count.self) { op, context, results in
            guard (0...100_000).contains(op.count) else { throw OperationFailure("count must be 0...100000, not \(op.count)", fatal: true) }
            for index in 0..<op.count {
                if let interval = op.intervalMilliseconds, interval > 0 { try await Task.sleep(for: .milliseconds(interval)) }
                try await results.yield(Count.Result(index: index, of: op.count))
            }
            context.logger.debug("counted", metadata: ["count": "\(op.count)"])
        }
        try await worker.register(Fail.self) { op, _ in throw OperationFailure(op.message, fatal: true) }
        let journal = worker.journal
        try await worker.register(JournalCounters.self) { _, _ in
            JournalCounters.Result(
                commits: await journal.committedBatches, awaitedWrites: await journal.awaitedWrites,
                lazyWrites: await journal.lazyWrites, records: await journal.recordsWritten)
        }
    }

    private static func sleep(_ milliseconds: Int) async throws -> Sleep.Result {
        guard (0...86_400_000).contains(milliseconds) else {
            throw OperationFailure("milliseconds must be 0...86400000, not \(milliseconds)", fatal: true)
        }
        try await Task.sleep(for: .milliseconds(milliseconds))
        return Sleep.Result(slept: milliseconds)
    }
}
