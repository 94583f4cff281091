import ArgumentParser
import Foundation
import VertebraJournal

/// `vertebra jobs stats`: counts per state and operation, duration percentiles.
struct JobsStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Count jobs per state and per operation; p50/p99 durations.")

    @OptionGroup var location: JournalLocation

    @Flag(name: .long, help: "Print JSON instead of tables.")
    var json = false

    func run() async throws {
        let (info, stats) = try await reportingJournalErrors {
            let reader = try JournalReader(path: location.path)
            return (try await reader.info(), try await reader.statistics())
        }
        if json {
            print(try jsonText(StatsJSON(info: info, stats: stats)))
            return
        }
        print("Journal     \(info.path)")
        print("Schema      v\(info.schemaVersion), durability \(info.durability?.rawValue ?? "unknown")")
        print("Jobs        \(stats.total)")
        print("Duration    p50 \(stats.p50Duration.map(TimeText.compact) ?? "-")  p99 \(stats.p99Duration.map(TimeText.compact) ?? "-")  (finished jobs, created to finished)")
        print("")
        var states = TextTable(headers: ["STATE", "JOBS"], caps: [10, 12])
        for state in JobState.allCases { states.rows.append([state.rawValue, String(stats.byState[state] ?? 0)]) }
        print(states.render())
        print("")
        var operations = TextTable(
            headers: ["OPERATION", "JOBS"] + JobState.allCases.map { $0.rawValue.uppercased() },
            caps: [40, 10, 10, 10, 10, 10, 10, 10])
        for operation in stats.byOperation {
            operations.rows.append(
                [operation.operation, String(operation.total)]
                    + JobState.allCases.map { String(operation.byState[$0] ?? 0) })
        }
        print(stats.byOperation.isEmpty ? "No jobs." : operations.render())
    }
}

/// `vertebra jobs stats --json`: `{journal, schema, durability, total, states: {state: n},
/// operations: [{op, total, states}], p50, p99}` (durations in seconds or null).
private struct StatsJSON: Encodable {
    struct Operation: Encodable {
        var op: String
        var total: Int
        var states: [String: Int]
    }
    var journal: String
    var schema: Int
    var durability: String?
    var total: Int
    var states: [String: Int]
    var operations: [Operation]
    var p50: Double?
    var p99: Double?

    init(info: JournalInfo, stats: JournalStatistics) {
        journal = info.path
        schema = info.schemaVersion
        durability = info.durability?.rawValue
        total = stats.total
        states = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, stats.byState[$0] ?? 0) })
        operations = stats.byOperation.map {
            Operation(op: $0.operation, total: $0.total,
                      states: Dictionary(uniqueKeysWithValues: $0.byState.map { ($0.key.rawValue, $0.value) }))
        }
        p50 = stats.p50Duration
        p99 = stats.p99Duration
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(journal, forKey: .journal)
        try container.encode(schema, forKey: .schema)
        try container.encode(durability, forKey: .durability)
        try container.encode(total, forKey: .total)
        try container.encode(states, forKey: .states)
        try container.encode(operations, forKey: .operations)
        try container.encode(p50, forKey: .p50)
        try container.encode(p99, forKey: .p99)
    }

    private enum CodingKeys: String, CodingKey {
        case journal, schema, durability, total, states, operations, p50, p99
    }
}
