import Foundation
import VertebraJournal

/// Parsing and printing of ages, durations and times for `vertebra jobs`.
enum TimeText {
    /// Parses `90s`, `30m`, `1h`, `7d`, `2w` (or combinations such as `1h30m`) into seconds.
    static func duration(_ text: String) -> TimeInterval? { TimeFilter.duration(text) }

    /// Parses `--since`: a duration before `now`, or a time (``TimeFilter``).
    static func since(_ text: String, now: Date) -> Date? { TimeFilter.time(text, now: now) }

    static let durationHelp = TimeFilter.durationHelp

    /// `2025-01-31T12:00:00.123Z`: the form used in `--json` output.
    static func iso(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }

    /// A compact age or duration: `850ms`, `12.3s`, `4m05s`, `3h12m`, `5d04h`.
    static func compact(_ seconds: TimeInterval) -> String {
        let value = max(0, seconds)
        if value < 1 { return "\(Int((value * 1000).rounded()))ms" }
        if value < 60 { return String(format: "%.1fs", value) }
        let whole = Int(value)
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        if whole < 86_400 { return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60) }
        return String(format: "%dd%02dh", whole / 86_400, (whole % 86_400) / 3600)
    }
}

/// A plain text table whose columns are as wide as their widest cell (up to a cap).
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []
    /// Columns longer than their cap are cut with `…`.
    var caps: [Int]

    func render() -> String {
        let widths = headers.indices.map { column in
            min(caps[column], ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0)
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let cut = cell.count > widths[column] ? String(cell.prefix(widths[column] - 1)) + "…" : cell
                return column == cells.count - 1 ? cut : cut.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

/// Encodes `value` as pretty, key-sorted JSON text.
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
