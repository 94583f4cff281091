import Foundation

/// A five-field cron expression (`minute hour day-of-month month day-of-week`), in one time zone.
///
/// Each field takes `*`, a number, a range `a-b`, a list `a,b,c` and steps `*/n` or `a-b/n`;
/// day of week is 0–7 (0 and 7 are Sunday). As in cron, when both day of month and day of week
/// are restricted, a day matching either one fires. `@hourly`, `@daily` (`@midnight`),
/// `@weekly`, `@monthly` and `@yearly` (`@annually`) stand for their usual expressions.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    public let description: String
    public let timeZone: TimeZone

    static let shortcuts = [
        "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
    ]

    public init(_ text: String, timeZone: TimeZone = .current) throws {
        let expanded = Self.shortcuts[text.lowercased()] ?? text
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(description: "'\(text)' is not a cron expression: it needs five fields (minute hour day-of-month month day-of-week) or @daily and the like")
        }
        minutes = try Self.field(fields[0], "minute", 0...59)
        hours = try Self.field(fields[1], "hour", 0...23)
        daysOfMonth = try Self.field(fields[2], "day of month", 1...31)
        months = try Self.field(fields[3], "month", 1...12)
        daysOfWeek = Set(try Self.field(fields[4], "day of week", 0...7).map { $0 % 7 })
        dayOfMonthRestricted = fields[2] != "*"
        dayOfWeekRestricted = fields[4] != "*"
        description = text
        self.timeZone = timeZone
        guard next(after: Date(timeIntervalSince1970: 0)) != nil else {
            throw ParseError(description: "'\(text)' never fires (no such date)")
        }
    }

    private static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws -> Set<Int> {
        var values: Set<Int> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed >= 1, parsed <= range.upperBound else {
                    throw ParseError(description: "bad step '\(pieces[1])' in the \(name) field '\(text)'")
                }
                step = parsed
            }
            let base = pieces[0]
            let bounds: ClosedRange<Int>
            if base == "*" {
                bounds = range
            } else if let dash = base.firstIndex(of: "-") {
                guard let low = Int(base[..<dash]), let high = Int(base[base.index(after: dash)...]), low <= high,
                    range.contains(low), range.contains(high)
                else { throw ParseError(description: "bad range '\(base)' in the \(name) field: \(range.lowerBound)–\(range.upperBound)") }
                bounds = low...high
            } else {
                guard let value = Int(base), range.contains(value) else {
                    throw ParseError(description: "bad value '\(base)' in the \(name) field: \(range.lowerBound)–\(range.upperBound), *, a-b, a,b or */n")
                }
                bounds = pieces.count == 2 ? value...range.upperBound : value...value
            }
            values.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
        }
        return values
    }

    /// The first time strictly after `date` (to the minute) that the expression fires, within
    /// the next eight years; nil if there is none.
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        guard var day = calendar.date(from: calendar.dateComponents([.year, .month, .day], from: date)) else { return nil }
        for _ in 0..<(366 * 8) {
            let parts = calendar.dateComponents([.month, .day, .weekday], from: day)
            if let month = parts.month, let dayOfMonth = parts.day, let weekday = parts.weekday, months.contains(month),
                matchesDay(dayOfMonth: dayOfMonth, dayOfWeek: weekday - 1)
            {
                for hour in hours.sorted() {
                    for minute in minutes.sorted() {
                        guard let time = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day) else { continue }
                        // A wall time that does not exist (a DST gap) maps elsewhere; it must still be this hour.
                        if time > date, calendar.component(.hour, from: time) == hour { return time }
                    }
                }
            }
            guard let following = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = following
        }
        return nil
    }

    private func matchesDay(dayOfMonth: Int, dayOfWeek: Int) -> Bool {
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): daysOfMonth.contains(dayOfMonth) || daysOfWeek.contains(dayOfWeek)
        case (true, false): daysOfMonth.contains(dayOfMonth)
        case (false, true): daysOfWeek.contains(dayOfWeek)
        case (false, false): true
        }
    }
}
