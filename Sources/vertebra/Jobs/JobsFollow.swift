import Foundation
import VertebraAgent
import VertebraJournal

/// `vertebra jobs --follow`: the jobs that match, then every new or changed one as it happens.
struct JobsFollower {
    let path: String
    let filter: JobFilter
    let json: Bool
    var interval: Duration = .milliseconds(500)

    /// Prints `initial` (oldest first) and then each change until a termination signal.
    func run(after initial: [Job]) async throws {
        let watch = Task { try await watchChanges(after: initial) }
        _ = await waitForTerminationSignal()
        watch.cancel()
        _ = await watch.result
    }

    private func watchChanges(after initial: [Job]) async throws {
        let reader = try await reportingJournalErrors { try JournalReader(path: path) }
        var seen: [String: Date] = [:]
        var cursor = Date()
        for job in initial.reversed() {
            emit(job)
            seen[job.token] = job.updated
        }
        if !json { printUnbuffered("(following; Ctrl-C stops)") }
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            var changes = filter
            changes.changedSince = cursor.addingTimeInterval(-1)  // rows updated in the same instant are caught again
            changes.limit = 10_000
            let jobs = try await reportingJournalErrors { try await reader.jobs(matching: changes) }
            for job in jobs where seen[job.token] != job.updated {
                seen[job.token] = job.updated
                emit(job)
                cursor = max(cursor, job.updated)
            }
            if seen.count > 100_000 { seen = seen.filter { $0.value >= cursor.addingTimeInterval(-2) } }
        }
    }

    private func emit(_ job: Job) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            if let data = try? encoder.encode(JobJSON(job)) { printUnbuffered(String(decoding: data, as: UTF8.self)) }
            return
        }
        let fields = [
            TimeText.iso(job.updated), String(job.token.prefix(12)), job.state.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0),
            job.operation, job.worker ?? "-", job.error.map { "error: \($0)" } ?? "",
        ]
        printUnbuffered(fields.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
