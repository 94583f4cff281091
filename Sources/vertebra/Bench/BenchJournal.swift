import ArgumentParser
import Foundation
import VertebraJournal

/// `vertebra bench journal`: journal records committed per second and per-record latency, with
/// 1, 16 and 256 concurrent submitters, under `full` and `normal`, group commit on and off.
///
/// Each submitter owns one conversation and journals inbound `data` stanzas (~200 bytes of XML),
/// one record per write, back to back, for a fixed time per cell. Every cell uses a new journal
/// in a temporary directory, removed afterwards. Build with `-c release` before quoting figures.
struct BenchJournal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Benchmark journal commits: records/s and p50/p99 latency, group commit vs per-record.",
        discussion: """
            Prints one row per durability and submitter count with both commit modes and the \
            group/per-record throughput ratio. Goals: group commit >= 20x per-record at 256 \
            submitters; > 50,000 records/s under normal. Default run: about a minute.
            """)

    @Option(name: .long, parsing: .unconditional, help: "Seconds measured per cell (12 cells by default).")
    var seconds: Double = 4

    @Option(name: .long, help: "Comma-separated submitter counts.")
    var submitters: String = "1,16,256"

    @Option(name: .long, help: "Comma-separated durabilities (full, normal).")
    var durability: String = "full,normal"

    @Option(name: .customLong("max-delay-ms"), parsing: .unconditional, help: "Group commit: wait this long for more records (0 = flush when the writer is free).")
    var maxDelayMilliseconds: Double = 0

    @Option(name: .customLong("max-batch"), parsing: .unconditional, help: "Group commit: flush at this many records.")
    var maxBatch: Int = 1024

    @Option(name: .customLong("checkpoint-pages"), parsing: .unconditional, help: "Checkpoint the WAL every this many 4 KiB pages (the journal's default: 4096).")
    var checkpointPages: Int = 4096

    @Option(name: .long, help: "Directory for the temporary journals (default: the system temp dir).")
    var directory: String?

    func validate() throws {
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be more than 0 and at most 3600 (got \(seconds)).") }
        guard !submitterCounts.isEmpty, submitterCounts.allSatisfy({ (1...10_000).contains($0) }) else {
            throw ValidationError("--submitters: give counts from 1 to 10000, e.g. 1,16,256.")
        }
        guard !durabilities.isEmpty else { throw ValidationError("--durability: give full, normal or both.") }
        guard checkpointPages >= 1 else { throw ValidationError("--checkpoint-pages must be >= 1.") }
        guard maxBatch >= 1, maxDelayMilliseconds >= 0, maxDelayMilliseconds <= 10_000 else {
            throw ValidationError("--max-batch must be >= 1 and --max-delay-ms from 0 to 10000.")
        }
    }

    private var submitterCounts: [Int] { submitters.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    private var durabilities: [Durability] {
        durability.split(separator: ",").compactMap { Durability(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    }

    struct Measurement {
        var recordsPerSecond: Double
        var p50: Duration
        var p99: Duration
        var records: Int
        var transactions: Int
    }

    func run() async throws {
        let root = URL(fileURLWithPath: try BenchCleanup.shared.scratchDirectory("vertebra-bench-journal", under: directory))
        defer { BenchCleanup.shared.remove(root.path) }
        let group = ExchangeJournal.CommitMode.group(.init(
            maxRecords: maxBatch, maxDelay: .microseconds(Int64(maxDelayMilliseconds * 1000))))
        print("vertebra bench journal: \(seconds)s per cell, one ~200-byte stanza record per write, journals in \(root.path)")
        print("group commit: max batch \(maxBatch), max delay \(maxDelayMilliseconds) ms; WAL checkpoint every \(checkpointPages) pages")
        var rows: [[String]] = []
        var ratioAt256: [Durability: Double] = [:]
        var bestNormal = 0.0
        for durability in durabilities {
            for count in submitterCounts {
                var results: [Measurement] = []
                for mode in [ExchangeJournal.CommitMode.perRecord, group] {
                    let path = root.appendingPathComponent("\(durability)-\(count)-\(mode == .perRecord ? "single" : "group").sqlite").path
                    let measurement = try await reportingJournalErrors {
                        try await Self.measure(
                            path: path, durability: durability, mode: mode, submitters: count, seconds: seconds,
                            checkpointPages: checkpointPages)
                    }
                    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
                    results.append(measurement)
                }
                let ratio = results[1].recordsPerSecond / max(results[0].recordsPerSecond, 1)
                if count == 256 { ratioAt256[durability] = ratio }
                if durability == .normal { bestNormal = max(bestNormal, results[1].recordsPerSecond) }
                rows.append([durability.rawValue, String(count)]
                    + results.flatMap { [Self.rate($0.recordsPerSecond), Self.latency($0.p50), Self.latency($0.p99)] }
                    + [String(format: "%.1fx", ratio), String(format: "%.1f", Double(results[1].records) / Double(max(1, results[1].transactions)))])
                printError("  measured \(durability) x \(count) submitters")
            }
        }
        var table = TextTable(
            headers: ["DURABILITY", "SUBMITTERS", "PER-RECORD rec/s", "p50", "p99", "GROUP rec/s", "p50", "p99", "GROUP/PER-RECORD", "RECORDS/TXN"],
            caps: Array(repeating: 20, count: 10))
        table.rows = rows
        print(table.render())
        for (durability, ratio) in ratioAt256.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print("goal group >= 20x per-record at 256 submitters, \(durability): \(String(format: "%.1fx", ratio)) \(ratio >= 20 ? "met" : "NOT met")")
        }
        if durabilities.contains(.normal) {
            print("goal > 50,000 records/s under normal: \(Self.rate(bestNormal)) \(bestNormal > 50_000 ? "met" : "NOT met")")
        }
    }

    static func measure(
        path: String, durability: Durability, mode: ExchangeJournal.CommitMode, submitters: Int, seconds: Double,
        checkpointPages: Int
    ) async throws -> Measurement {
        let journal = try ExchangeJournal(
            path: path, options: .init(durability: durability, commit: mode, checkpointPages: checkpointPages))
        var conversations: [Int64] = []
        for submitter in 0..<submitters {
            let token = String(format: "%032x", submitter)
            let outcomes = try await journal.write([
                .createJob(NewJob(token: token, operation: "/bench/noop", state: .running)),
                .openConversation(NewConversation(job: token, token: "\(token):b", peer: "peer\(submitter)@bench/r", role: .performer)),
            ])
            if case .conversation(let id) = outcomes.last { conversations.append(id) }
        }
        let body = "<data xmlns='http://xmlschema.engineyard.com/agent/api' token='0123456789abcdef0123456789abcdef:b'><string name='chunk'>"
            + String(repeating: "x", count: 64) + "</string></data>"
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start.advanced(by: .milliseconds(Int64(seconds * 1000)))
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for (submitter, conversation) in conversations.enumerated() {
                group.addTask {
                    var samples: [Duration] = []
                    samples.reserveCapacity(4096)
                    var number = 0
                    while clock.now < deadline {
                        number += 1
                        let begin = clock.now
                        try await journal.write(.recordStanza(NewStanza(
                            conversation: .id(conversation), direction: .inbound, iqID: "\(submitter)-\(number)",
                            kind: .data, body: body, answer: "<iq type='result'/>")))
                        samples.append(clock.now - begin)
                    }
                    return samples
                }
            }
            return try await group.reduce(into: [Duration]()) { $0 += $1 }
        }
        let elapsed = clock.now - start
        let transactions = await journal.committedBatches - submitters
        await journal.close()
        let sorted = latencies.sorted()
        func percentile(_ fraction: Double) -> Duration {
            sorted.isEmpty ? .zero : sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
        }
        let elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Measurement(
            recordsPerSecond: Double(sorted.count) / elapsedSeconds, p50: percentile(0.5), p99: percentile(0.99),
            records: sorted.count, transactions: transactions)
    }

    static func rate(_ value: Double) -> String {
        let whole = Int(value.rounded())
        return whole.formatted(.number.grouping(.automatic))
    }

    static func latency(_ duration: Duration) -> String {
        let microseconds = Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
        return microseconds < 1000 ? String(format: "%.0fus", microseconds) : String(format: "%.2fms", microseconds / 1000)
    }
}
