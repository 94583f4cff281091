import Foundation

/// Runs `body` once and returns its duration and result.
func measure<T>(_ body: () throws -> T) rethrows -> (Duration, T) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try body()
    return (clock.now - start, result)
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

func mbps(_ bytes: Int, _ time: Duration) -> String {
    String(format: "%.1f", Double(bytes) / 1_000_000 / max(time.seconds, 1e-9))
}

func rate(_ count: Int, _ time: Duration) -> String {
    String(format: "%.0f", Double(count) / max(time.seconds, 1e-9))
}

func micros(_ time: Duration, _ count: Int) -> String {
    String(format: "%.2f", time.seconds * 1e6 / Double(count))
}

/// How many times faster `candidate` is than `baseline`.
func ratio(_ baseline: Duration, _ candidate: Duration) -> String {
    String(format: "%.2fx", baseline.seconds / max(candidate.seconds, 1e-9))
}

/// A plain-text table with aligned columns.
final class Table {
    private let header: [String]
    private var rows: [[String]] = []

    init(header: [String]) { self.header = header }

    func add(_ row: [String]) { rows.append(row) }

    func print() {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            row.enumerated().map { column, cell in
                column == 0
                    ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        Swift.print(line(header))
        Swift.print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        rows.forEach { Swift.print(line($0)) }
    }
}

/// Peak resident memory of this process.
enum ResidentMemory {
    static func peakKiB() -> Int {
        var usage = rusage()
        #if os(Linux)
            getrusage(Int32(truncatingIfNeeded: RUSAGE_SELF.rawValue), &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        return usage.ru_maxrss
    }
}
