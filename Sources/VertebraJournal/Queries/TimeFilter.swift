import Foundation

/// The durations and times the job filters take, read the same by `vertebra jobs` and the web
/// view: `90s`, `30m`, `1h`, `7d`, `2w` or sums such as `1h30m` (at most 100 years); a time as
/// `2025-01-31` (local midnight), `2025-01-31T12:00` or `2025-01-31T12:00:30` (local; a space
/// for the `T` too), or ISO 8601 with a zone (`2025-01-31T12:00:00Z`). Anything else, trailing
/// characters included, is no time.
public enum TimeFilter {
    /// The longest duration taken: a journal's times are milliseconds in 64 bits, and far beyond
    /// this a date before now no longer exists on the calendar.
    public static let maxDuration: TimeInterval = 100 * 365.25 * 86_400

    /// Says what ``duration(_:)`` takes.
    public static let durationHelp = "a duration such as 90s, 30m, 1h, 7d, 2w (at most 100 years)"
    /// Says what ``time(_:now:)`` takes besides a duration.
    public static let timeHelp = "a time such as 2025-01-31, 2025-01-31T12:00 (local) or 2025-01-31T12:00:00Z"

    /// Seconds, or nil when `text` is no duration.
    public static func duration(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        var total: TimeInterval = 0
        var number = ""
        var sawUnit = false
        for character in text.lowercased() {
            if character.isASCII, character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number), value >= 0 {
                total += value * unit
                number = ""
                sawUnit = true
            } else {
                return nil
            }
        }
        return sawUnit && number.isEmpty && total.isFinite && total <= maxDuration ? total : nil
    }

    /// A duration before `now`, or a time; nil for anything else.
    public static func time(_ text: String, now: Date) -> Date? {
        if let seconds = duration(text) { return now.addingTimeInterval(-seconds) }
        for style in [Date.ISO8601FormatStyle(), Date.ISO8601FormatStyle(includingFractionalSeconds: true)] {
            if let date = try? Date(text, strategy: style) { return date }
        }
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = .current
        let shapes = [
            ("yyyy-MM-dd", 10), ("yyyy-MM-dd'T'HH:mm", 16), ("yyyy-MM-dd HH:mm", 16), ("yyyy-MM-dd'T'HH:mm:ss", 19), ("yyyy-MM-dd HH:mm:ss", 19),
        ]
        // The length too: a formatter reads what it can and may ignore the rest.
        for (format, length) in shapes where text.count == length {
            local.dateFormat = format
            if let date = local.date(from: text), local.string(from: date) == text { return date }
        }
        return nil
    }
}
