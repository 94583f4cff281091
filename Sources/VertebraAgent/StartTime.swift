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
    public static func parseTime(_ text: String, now: Date = Date(), timeZone: TimeZone = .current) throws -> Date {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime]
        var date = iso.date(from: trimmed)
        if date == nil {
            iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            date = iso.date(from: trimmed)
        }
        if date == nil {
            let local = DateFormatter()
            local.locale = Locale(identifier: "en_US_POSIX")
            local.timeZone = timeZone
            for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm"] where date == nil {
                local.dateFormat = format
                date = local.date(from: trimmed)
            }
        }
        guard let date else {
            throw StartTimeError("'\(text)' is not a time (e.g. 2026-12-01T02:00:00Z, or local: 2026-12-01 02:00)")
        }
        guard date.timeIntervalSince(now) <= maxDelaySeconds else { throw StartTimeError("'\(text)' is more than ten years ahead") }
        return date
    }
}

public struct StartTimeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
