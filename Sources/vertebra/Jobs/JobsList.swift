import ArgumentParser
import Foundation
import Natter
import VertebraJournal

/// `vertebra jobs [list]`: a table or JSON array of jobs, newest first.
struct JobsList: AsyncParsableCommand {
    /// The most rows `--limit` takes.
    static let maxLimit = 1_000_000_000

    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List jobs, newest first (the default subcommand).",
        discussion: """
            Columns: id (first 12 hex digits; `jobs show` takes any unique prefix), operation, \
            worker, state, attempts, age (since created), duration (created to finished).
            --json prints one JSON array; each job has id, op, state, worker, attempts, created, \
            updated, finished, duration (seconds), scope, submitter, deadline, error, error_code, \
            retry_of, key, \
            not_before (null when unset).
            --follow then keeps watching the journal and prints each new or changed job matching \
            the filters as it happens, one line each (with --json, one JSON object per line), \
            until Ctrl-C.
            """)

    @OptionGroup var location: JournalLocation

    @Option(name: .long, help: "Only jobs in these states (repeat or comma-separate): pending, dispatched, running, done, failed, cancelled.")
    var state: [String] = []

    @Option(name: .long, help: "Only this operation; a trailing * matches a prefix (/image/*).")
    var op: String?

    @Option(name: .long, help: "Only jobs run by this worker JID (a bare JID matches all its resources).")
    var worker: String?

    @Option(name: .long, help: "Only jobs created since: a duration ago (30m, 1h, 7d) or a date (2025-01-31, 2025-01-31T12:00:00Z).")
    var since: String?

    @Option(name: .long, parsing: .unconditional, help: "Show at most this many jobs.")
    var limit: Int = 50

    @Flag(name: .long, help: "Print a JSON array instead of a table.")
    var json = false

    @Flag(name: .long, help: "Keep watching: print each new or changed job as it happens, until Ctrl-C.")
    var follow = false

    @Option(name: .long, parsing: .unconditional, help: "With --follow, look for changes this often, in milliseconds.")
    var interval: Int = 500

    func validate() throws {
        guard (1...Self.maxLimit).contains(limit) else { throw ValidationError("--limit must be from 1 to \(Self.maxLimit) (got \(limit)).") }
        if !state.isEmpty, stateNames.isEmpty {
            throw ValidationError("--state needs a state: one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        for name in stateNames {
            guard JobState(rawValue: name.lowercased()) != nil else {
                throw ValidationError(
                    "--state: unknown state '\(name)'. Use one of: \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
        }
        if let since, TimeText.since(since, now: Date()) == nil {
            throw ValidationError(
                "--since: '\(since)' is neither \(TimeFilter.durationHelp) nor \(TimeFilter.timeHelp).")
        }
        if let worker, JID(worker) == nil {
            throw ValidationError("--worker: '\(worker)' is not a JID (e.g. w1@example.org or w1@example.org/worker).")
        }
        if let op, !op.hasPrefix("/") || op.contains(" ") {
            throw ValidationError("--op: '\(op)' is not an operation path (e.g. /image/resize, or /image/* for a prefix).")
        }
        guard (50...60_000).contains(interval) else { throw ValidationError("--interval must be from 50 to 60000 ms (got \(interval)).") }
    }

    private var stateNames: [String] {
        state.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
    }

    func run() async throws {
        let now = Date()
        var filter = JobFilter(
            states: Set(stateNames.compactMap { JobState(rawValue: $0.lowercased()) }), operation: op,
            worker: worker, since: since.flatMap { TimeText.since($0, now: now) }, limit: limit + 1)
        let jobs = try await reportingJournalErrors {
            try await JournalReader(path: location.path).jobs(matching: filter)
        }
        filter.limit = limit
        let shown = Array(jobs.prefix(limit))
        if json && !follow {
            print(try jsonText(shown.map(JobJSON.init)))
            return
        }
        if follow {
            try await JobsFollower(path: location.path, filter: filter, json: json, interval: .milliseconds(interval)).run(after: shown)
            return
        }
        guard !shown.isEmpty else {
            print("No jobs match.")
            return
        }
        var table = TextTable(
            headers: ["ID", "OPERATION", "WORKER", "STATE", "ATTEMPTS", "AGE", "DURATION"],
            caps: [12, 32, 32, 10, 8, 8, 8])
        for job in shown {
            table.rows.append([
                String(job.token.prefix(12)), job.operation, job.worker ?? "-", job.state.rawValue,
                String(job.attempts), TimeText.compact(now.timeIntervalSince(job.created)),
                job.duration.map(TimeText.compact) ?? "-",
            ])
        }
        print(table.render())
        if jobs.count > limit {
            print("(newest \(limit) shown; more match: raise --limit or narrow the filters)")
        }
    }
}
