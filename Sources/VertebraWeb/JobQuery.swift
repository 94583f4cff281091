import Foundation
import Hummingbird
import VertebraJournal

/// The jobs page's filters, from its query string: `state` (comma separated), `op` (a trailing
/// `*` matches a prefix), `worker`, `q` (text in arguments, result or error), `since` (`15m`,
/// `1h`, `24h`, `7d`, or a time), `until` (a time), `page` (from 1). Bad values are ignored
/// and reported in ``problems``, never an error page.
struct JobQuery: Sendable {
    static let pageSize = 50

    var states: [JobState] = []
    var operation: String?
    var worker: String?
    var text: String?
    var since: String?
    var until: String?
    var page = 1
    var problems: [String] = []

    init(_ parameters: Parameters, now: Date = Date()) {
        func value(_ name: String) -> String? {
            parameters.get(name).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : String($0.prefix(500)) }
        }
        // `state=a,b` and `state=a&state=b` alike.
        let stateNames = parameters.getAll("state").flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for name in stateNames where !name.isEmpty {
            if let state = JobState(rawValue: String(name).lowercased()) { states.append(state) } else { problems.append("unknown state '\(name)'") }
        }
        operation = value("op")
        if let op = operation, !op.hasPrefix("/") {
            problems.append("op '\(op)' is not an operation path (e.g. /image/resize, or /image/* for a prefix)")
            operation = nil
        }
        worker = value("worker")
        text = value("q")
        since = value("since")
        until = value("until")
        if let since, Self.time(since, now: now) == nil { problems.append("since '\(since)' is not \(TimeFilter.durationHelp) or \(TimeFilter.timeHelp)"); self.since = nil }
        if let until, Self.time(until, now: now) == nil { problems.append("until '\(until)' is not \(TimeFilter.timeHelp)"); self.until = nil }
        if let text = value("page") {
            if let number = Int(text), (1...100_000).contains(number) { page = number } else { problems.append("page '\(text)' is not 1 to 100000") }
        }
    }

    /// The journal filter of this query, for `limit` jobs from the page's first.
    func filter(now: Date = Date(), limit: Int = pageSize) -> JobFilter {
        var filter = JobFilter(
            states: Set(states), operation: operation, worker: worker, since: since.flatMap { Self.time($0, now: now) }, limit: limit)
        filter.until = until.flatMap { Self.time($0, now: now) }
        filter.text = text
        filter.offset = (page - 1) * Self.pageSize
        return filter
    }

    /// These filters as query parameters (for links and the live updates).
    func parameters(page: Int? = nil) -> [(String, String?)] {
        [("state", states.isEmpty ? nil : states.map(\.rawValue).joined(separator: ",")), ("op", operation), ("worker", worker), ("q", text),
         ("since", since), ("until", until), ("page", page.map(String.init))]
    }

    /// A duration ago or a time, read as `vertebra jobs --since` reads it (``TimeFilter``).
    static func time(_ text: String, now: Date) -> Date? { TimeFilter.time(text, now: now) }
}
