import Foundation
import Hummingbird
import ServiceLifecycle
import VertebraJournal

/// `GET /events`: server-sent events, one `job` event (a ``JobSummary``) per new or changed job
/// matching the page's filters, found by polling the journal (which another process writes).
struct LiveEvents: Sendable {
    let reader: JournalReader
    let query: JobQuery
    let interval: Duration
    var after: Date?

    init(reader: JournalReader, query: JobQuery, parameters: Parameters, interval: Duration) {
        self.reader = reader
        self.query = query
        self.interval = interval
        if let text = parameters.get("after"), let milliseconds = Int64(text), milliseconds > 0 {
            after = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
    }

    func response() -> Response {
        let reader = reader, query = query, interval = interval
        let start = after ?? Date()
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
                var cursor = start
                var seen: [String: Date] = [:]
                var quiet = 0
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    var filter = query.filter(limit: 1000)
                    filter.offset = 0
                    filter.changedSince = cursor.addingTimeInterval(-1)
                    var text = ""
                    for job in try await reader.jobs(matching: filter) where seen[job.token] != job.updated {
                        seen[job.token] = job.updated
                        cursor = max(cursor, job.updated)
                        text += "event: job\ndata: \(String(decoding: try encoder.encode(JobSummary(job)), as: UTF8.self))\n\n"
                    }
                    if seen.count > 10_000 { seen = seen.filter { $0.value >= cursor.addingTimeInterval(-2) } }
                    quiet = text.isEmpty ? quiet + 1 : 0
                    if quiet * Int(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000) >= 15_000 {
                        text = ": ping\n\n"
                        quiet = 0
                    }
                    if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
                    // A stopping server ends the stream at once; the page reconnects when it is back.
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                }
                try await writer.finish(nil)
            })
    }
}
