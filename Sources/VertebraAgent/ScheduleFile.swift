import Foundation
import Vertebra
import VertebraXML

/// `vertebra coordinator --schedule PATH`: one periodic job per line,
/// `CRON [missed=run|skip] OPERATION name=type:value ...`, where CRON is five fields
/// (`minute hour day-of-month month day-of-week`, in the coordinator's time zone) or `@hourly`,
/// `@daily`, `@weekly`, `@monthly`, `@yearly`. Blank lines and `#` comments are skipped.
public enum ScheduleFile {
    public static func parse(_ text: String, name: String, timeZone: TimeZone = .current) throws -> [ScheduleEntry] {
        var entries: [ScheduleEntry] = []
        var seen: Set<String> = []
        for (index, line) in text.fileLines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            do {
                var words = try BatchFile.split(trimmed)
                let fieldCount = words.first?.hasPrefix("@") == true ? 1 : 5
                if fieldCount == 5, let short = words.prefix(5).firstIndex(where: { $0.hasPrefix("/") }) {
                    throw BatchFile.LineError(
                        description: "the cron expression has \(short) fields; it takes 5 (minute hour day-of-month month day-of-week) or an @name")
                }
                guard words.count > fieldCount else {
                    throw BatchFile.LineError(description: "a line is CRON [missed=run|skip] OPERATION name=type:value ...")
                }
                let cron = try CronExpression(words.prefix(fieldCount).joined(separator: " "), timeZone: timeZone)
                words.removeFirst(fieldCount)
                var missed = ScheduleEntry.Missed.runOnce
                if let first = words.first, first.hasPrefix("missed=") {
                    guard let policy = ScheduleEntry.Missed(rawValue: String(first.dropFirst("missed=".count))) else {
                        throw BatchFile.LineError(description: "'\(first)': missed= takes run or skip")
                    }
                    missed = policy
                    words.removeFirst()
                }
                guard let path = words.first, path.hasPrefix("/") else {
                    throw BatchFile.LineError(description: "after the time comes an operation path such as /vertebra/echo")
                }
                let id = words.joined(separator: " ").isEmpty ? trimmed : "\(cron.description) \(words.joined(separator: " "))"
                guard seen.insert(id).inserted else { throw BatchFile.LineError(description: "the same entry is given twice") }
                entries.append(ScheduleEntry(
                    cron: cron, path: Resource(path), arguments: try TypedArguments.parse(Array(words.dropFirst())), missed: missed, id: id))
            } catch {
                throw BatchFile.LineError(description: "\(name):\(index + 1): \(error)")
            }
        }
        guard !entries.isEmpty else {
            throw BatchFile.LineError(description: "\(name): no entries (one per line: CRON [missed=run|skip] OPERATION name=type:value ...)")
        }
        return entries
    }
}
