import ArgumentParser
import Foundation
import VertebraJournal

/// `vertebra jobs prune --older-than 30d`: retention.
struct JobsPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete finished jobs (done, failed, cancelled) older than an age, with their stanzas.",
        discussion: """
            Deletes in small transactions, so an agent writing to the same journal is delayed by \
            at most one batch at a time. Jobs that are still pending, dispatched or running are kept.
            """)

    @OptionGroup var location: JournalLocation

    @Option(name: .customLong("older-than"), help: "Prune jobs that finished longer ago than this (\(TimeText.durationHelp)).")
    var olderThan: String

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Jobs deleted per transaction.")
    var batchSize: Int = 500

    func validate() throws {
        guard TimeText.duration(olderThan) != nil else {
            throw ValidationError("--older-than: '\(olderThan)' is not \(TimeText.durationHelp).")
        }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1.") }
    }

    func run() async throws {
        let age = TimeText.duration(olderThan) ?? 0
        let cutoff = Date().addingTimeInterval(-age)
        let count = try await reportingJournalErrors {
            let journal = try ExchangeJournal(path: location.path, options: .init(createIfMissing: false))
            let count = try await journal.prune(finishedBefore: cutoff, batchSize: batchSize)
            await journal.close()
            return count
        }
        print("Pruned \(count) job\(count == 1 ? "" : "s") finished before \(TimeText.iso(cutoff)) from \(location.path).")
    }
}
