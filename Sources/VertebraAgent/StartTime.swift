import Foundation

/// `vertebra dispatch --at TIME | --in DURATION`: when a delayed job starts.
public enum StartTime {
    /// The longest delay accepted: ten years, as for deadlines.
    public static let maxDelaySeconds: Double = 315_360_000

    /// A duration such as `90s`, `15m`, `2h`, `1d`, `1h30m` or plain seconds (`45`).
    public static func parseDuration(_ text: String) throws -> TimeInterval {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var total: Double = 0
        var digits = ""
        var sawUnit = false
        for character in text.trimmingCharacters(in: .whitespaces).lowercased() {
            if character.isASCII && character.isNumber {
                digits.append(character)
            } else if let unit = units[character], let value = Double(digits), !digits.isEmpty {
                total += value * unit
                digits = ""
                sawUnit = true
            } else {
                throw StartTimeError("'\(text)' is not a duration (e.g. 90s, 15m, 2h, 1d, 1h30m)")
            }
        }
        if !digits.isEmpty {
            guard !sawUnit, let value = Double(digits) else { throw StartTimeError("'\(text)' is not a duration (e.g. 90s, 15m, 2h, 1d, 1h30m)") }
            total += value
        }
        guard sawUnit || !text.isEmpty, total > 0, total <= maxDelaySeconds else {
            throw StartTimeError("a delay must be from 1 s to ten years, not '\(text)'")
        }
        return total
    }

    /// A time as ISO 8601 with a zone (`2026-12-01T02:00:00Z`, `2026-12-01T02:00:00+01:00`) or
    /// local time (`2026-12-01 02:00`, `2026-12-01T02:00:00`), not more than ten years ahead.
    /// A date or time that does not exist (`2026-02-30`, `24:10`) is an error, not rolled over.
    public static func parseTime(_ text: String, now: Date = Date(), timeZone: TimeZone = .current) throws -> Date {
        guard let fields = TimeFields(text.trimmingCharacters(in: .whitespaces)) else {
            throw StartTimeError("'\(text)' is not a time (e.g. 2026-12-01T02:00:00Z, or local: 2026-12-01 02:00)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = fields.zone ?? timeZone
        let components = DateComponents(
            calendar: calendar, timeZone: calendar.timeZone, year: fields.year, month: fields.month, day: fields.day,
            hour: fields.hour, minute: fields.minute, second: fields.second, nanosecond: fields.nanosecond)
        guard components.isValidDate, let date = calendar.date(from: components) else {
            throw StartTimeError("'\(text)' is not a date and time that exist")
        }
        guard date.timeIntervalSince(now) <= maxDelaySeconds else { throw StartTimeError("'\(text)' is more than ten years ahead") }
        return date
    }
}

/// The fields of `YYYY-MM-DD`, `T` or a space, `HH:MM`, optional `:SS` with an optional
/// fraction, optional `Z` or `±HH:MM`, as written (their ranges are checked by the calendar).
private struct TimeFields {
    var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, nanosecond = 0
    var zone: TimeZone?

    init?(_ text: String) {
        var rest = Substring(text)
        func digits(_ count: Int) -> Int? {
            let head = rest.prefix(count)
            guard head.count == count, head.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            rest = rest.dropFirst(count)
            return Int(head)
        }
        func take(_ characters: String) -> Character? {
            guard let first = rest.first, characters.contains(first) else { return nil }
            rest = rest.dropFirst()
            return first
        }
        guard let year = digits(4), take("-") != nil, let month = digits(2), take("-") != nil, let day = digits(2),
            take("T ") != nil, let hour = digits(2), take(":") != nil, let minute = digits(2)
        else { return nil }
        (self.year, self.month, self.day, self.hour, self.minute) = (year, month, day, hour, minute)
        if take(":") != nil {
            guard let second = digits(2) else { return nil }
            self.second = second
            if take(".") != nil {
                let fraction = rest.prefix { $0.isASCII && $0.isNumber }
                guard (1...9).contains(fraction.count), let value = Int(fraction) else { return nil }
                rest = rest.dropFirst(fraction.count)
                nanosecond = value * Int(pow(10, Double(9 - fraction.count)))
            }
        }
        if take("Z") != nil {
            zone = TimeZone(secondsFromGMT: 0)
        } else if let sign = take("+-") {
            guard let hours = digits(2), take(":") != nil, let minutes = digits(2), hours <= 18, minutes <= 59 else { return nil }
            zone = TimeZone(secondsFromGMT: (sign == "-" ? -1 : 1) * (hours * 3600 + minutes * 60))
        }
        guard rest.isEmpty else { return nil }
    }
}

public struct StartTimeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
