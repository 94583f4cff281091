import Foundation
import Testing
import VertebraJournal
@testable import VertebraWeb

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Every route of the web view over real HTTP, against a journal being written.
@Suite(.serialized, .timeLimit(.minutes(2))) struct WebViewTests {
    /// A journal with a done, a failed (hostile text in its arguments) and a running job, and
    /// the view serving it on a free loopback port.
    final class Fixture: @unchecked Sendable {
        let directory: String
        let journal: ExchangeJournal
        let server: RunningWebView
        let base: URL
        let done = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let failed = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let running = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()

        init() async throws {
            directory = NSTemporaryDirectory() + "web-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            journal = try ExchangeJournal(path: directory + "/journal.sqlite", options: .init(durability: .normal))
            let arguments = #"<op xmlns="http://xmlschema.engineyard.com/agent/api" type="/image/resize"><string name="path">a.png</string></op>"#
            let hostile = #"<op xmlns="http://xmlschema.engineyard.com/agent/api" type="/image/crop"><string name="path">&lt;script&gt;alert(1)&lt;/script&gt;</string></op>"#
            try await journal.write([
                .createJob(NewJob(token: done, operation: "/image/resize", arguments: arguments, state: .pending, created: Date().addingTimeInterval(-120))),
                .openConversation(NewConversation(job: done, peer: "w1@localhost/w1", role: .requester)),
                .transition(job: done, to: .running), .transition(job: done, to: .done),
                .createJob(NewJob(token: failed, operation: "/image/crop", arguments: hostile, state: .pending, created: Date().addingTimeInterval(-60))),
                .transition(job: failed, to: .failed, error: "failed: <b>disk full</b>"),
                .createJob(NewJob(token: running, operation: "/db/vacuum", arguments: "", state: .pending)),
                .transition(job: running, to: .running),
            ])
            let view = try WebView(options: .init(host: "127.0.0.1", port: 0, journalPath: directory + "/journal.sqlite", pollInterval: .milliseconds(100)))
            server = try await view.start()
            base = try #require(URL(string: "http://127.0.0.1:\(server.port)"))
        }

        func get(_ path: String) async throws -> (Int, String, String) {
            let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: base.absoluteString + path)))
            let http = try #require(response as? HTTPURLResponse)
            return (http.statusCode, http.value(forHTTPHeaderField: "Content-Type") ?? "", String(decoding: data, as: UTF8.self))
        }

        func finish() async {
            await server.stop()
            await journal.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test func theJobsPageListsFiltersAndEscapes() async throws {
        let fixture = try await Fixture()
        let (status, type, page) = try await fixture.get("/jobs")
        #expect(status == 200 && type.hasPrefix("text/html"))
        for id in [fixture.done, fixture.failed, fixture.running] { #expect(page.contains("id=\"job-\(id)\"")) }
        // Newest first.
        let positions = [fixture.running, fixture.failed, fixture.done].compactMap { page.range(of: "job-\($0)")?.lowerBound }
        #expect(positions == positions.sorted() && positions.count == 3)
        // Hostile text renders as text.
        #expect(page.contains("failed: &lt;b&gt;disk full&lt;/b&gt;"))
        #expect(!page.contains("<b>disk full</b>"))
        let failedOnly = try await fixture.get("/jobs?state=failed")
        #expect(failedOnly.2.contains(fixture.failed) && !failedOnly.2.contains("job-\(fixture.done)"))
        let prefix = try await fixture.get("/jobs?op=/image/*")
        #expect(prefix.2.contains("job-\(fixture.done)") && prefix.2.contains("job-\(fixture.failed)") && !prefix.2.contains("job-\(fixture.running)"))
        let text = try await fixture.get("/jobs?q=a.png")
        #expect(text.2.contains("job-\(fixture.done)") && !text.2.contains("job-\(fixture.failed)"))
        let recent = try await fixture.get("/jobs?since=90s")
        #expect(!recent.2.contains("job-\(fixture.done)") && recent.2.contains("job-\(fixture.running)"))
        let older = try await fixture.get("/jobs?until=" + ISO8601DateFormatter().string(from: Date().addingTimeInterval(-90)))
        #expect(older.2.contains("job-\(fixture.done)") && !older.2.contains("job-\(fixture.failed)"))
        let byWorker = try await fixture.get("/jobs?worker=w1@localhost")
        #expect(byWorker.2.contains("job-\(fixture.done)") && !byWorker.2.contains("job-\(fixture.running)"))
        let secondPage = try await fixture.get("/jobs?page=2")
        #expect(secondPage.0 == 200 && secondPage.2.contains("No jobs match.") && secondPage.2.contains("rel=\"prev\""))
        let bad = try await fixture.get("/jobs?state=bogus&since=yesterday&page=0")
        #expect(bad.0 == 200 && bad.2.contains("Ignored: unknown state &#39;bogus&#39;"))
        let reflected = try await fixture.get("/jobs?q=%3Cscript%3Ealert(2)%3C/script%3E")
        #expect(!reflected.2.contains("<script>alert(2)") && reflected.2.contains("&lt;script&gt;alert(2)"))
        await fixture.finish()
    }

    @Test func aJobsDetailShowsTypedValuesTimelineAndLinks() async throws {
        let fixture = try await Fixture()
        let (status, _, page) = try await fixture.get("/jobs/\(fixture.failed.prefix(10))")
        #expect(status == 200)
        #expect(page.contains("/image/crop"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>alert(1)"))
        #expect(page.contains("<dt>path <span class=\"muted\">string</span></dt>"))
        #expect(page.contains("<h2>Timeline</h2>"))
        let missing = try await fixture.get("/jobs/ffffffff")
        #expect(missing.0 == 404 && missing.2.contains("No such job"))
        await fixture.finish()
    }

    @Test func jsonWorkersChartsAndTheRoot() async throws {
        let fixture = try await Fixture()
        let (status, type, body) = try await fixture.get("/api/jobs?state=done")
        #expect(status == 200 && type == "application/json")
        let array = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]])
        #expect(array.count == 1 && array.first?["id"] as? String == fixture.done && array.first?["state"] as? String == "done")
        // The fields of `vertebra jobs --json`, every one present.
        let keys = Set(array.first?.keys.map { $0 } ?? [])
        #expect(keys == ["id", "op", "state", "worker", "attempts", "created", "updated", "finished", "duration", "scope", "submitter",
                         "deadline", "error", "error_code", "retry_of", "key", "not_before"], "\(keys.sorted())")
        let bad = try await fixture.get("/api/jobs?state=bogus")
        #expect(bad.0 == 400 && bad.2.contains("unknown state 'bogus'"), "\(bad)")
        // The filters `vertebra jobs` takes, read alike: a state given twice, a sum of durations.
        let twice = try await fixture.get("/api/jobs?state=failed&state=done&since=1h30m")
        let both = try #require(try JSONSerialization.jsonObject(with: Data(twice.2.utf8)) as? [[String: Any]], "\(twice)")
        #expect(Set(both.compactMap { $0["id"] as? String }) == [fixture.done, fixture.failed])
        let noSlash = try await fixture.get("/api/jobs?op=image")
        #expect(noSlash.0 == 400 && noSlash.2.contains("is not an operation path"), "\(noSlash)")
        let workers = try await fixture.get("/workers")
        #expect(workers.0 == 200 && workers.2.contains("id=\"not-connected\""))
        let charts = try await fixture.get("/charts")
        #expect(charts.0 == 200 && charts.2.contains("<svg") && charts.2.contains("/image/resize"))
        // No inline script (the CSP allows none): the live updates load from /live.js.
        let jobs = try await fixture.get("/jobs")
        #expect(!jobs.2.contains("<script>") && jobs.2.contains("<script src=\"/live.js\" data-events=\"/events?"))
        let script = try await fixture.get("/live.js")
        #expect(script.0 == 200 && script.1.hasPrefix("text/javascript") && script.2.contains("new EventSource(me.dataset.events)"))
        let root = try await fixture.get("/")
        #expect(root.0 == 200 && root.2.contains("<h1>Jobs</h1>"), "the root redirects to /jobs")
        await fixture.finish()
    }

    @Test func liveEventsCarryANewJob() async throws {
        let fixture = try await Fixture()
        let fresh = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let stream = try EventStream(port: fixture.base.port ?? 0, path: "/events")
        defer { stream.close() }
        let head = try await RawHTTP.offPool { try stream.read(until: ": connected") }
        #expect(head.contains("Content-Type: text/event-stream") || head.contains("content-type: text/event-stream"), "\(head)")
        try await fixture.journal.write(.createJob(NewJob(token: fresh, operation: "/live/new", arguments: "", state: .pending)))
        let events = try await RawHTTP.offPool { try stream.read(until: fresh) }
        #expect(events.contains("event: job") && events.contains("\"op\":\"/live/new\""))
        await fixture.finish()
    }

    @Test func stoppingEndsOpenLiveStreamsAndTheServer() async throws {
        let fixture = try await Fixture()
        let stream = try EventStream(port: fixture.base.port ?? 0, path: "/events")
        defer { stream.close() }
        _ = try await RawHTTP.offPool { try stream.read(until: ": connected") }
        // Before, an open stream held a graceful stop forever (the timeout below cut it).
        let began = ContinuousClock.now
        await fixture.server.stop(timeout: .seconds(60))
        #expect(ContinuousClock.now - began < .seconds(30))
        let rest = try await RawHTTP.offPool { try stream.readToEnd() }
        #expect(rest.hasSuffix("0\r\n\r\n"), "the stream ends with its last chunk, not a reset: \(rest.suffix(80))")
        await #expect(throws: (any Error).self) { _ = try await fixture.get("/jobs") }
        await fixture.finish()
    }
}

/// A plain socket reading a server-sent event stream (FoundationNetworking on Linux cannot stream).
final class EventStream: @unchecked Sendable {
    private let socket: Int32
    private var received = ""

    init(port: Int, path: String) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        _ = request.withCString { Glibc.send(socket, $0, strlen($0), 0) }
    }

    /// Reads until `marker` has arrived (10 s per read at most); returns everything so far.
    func read(until marker: String) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !received.contains(marker) {
            let count = Glibc.recv(socket, &buffer, buffer.count, 0)
            guard count > 0 else { throw POSIXError(.ETIMEDOUT) }
            received += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return received
    }

    /// Reads until the server closes the connection; returns everything received.
    func readToEnd() throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = Glibc.recv(socket, &buffer, buffer.count, 0)
            guard count >= 0 else { throw POSIXError(.ETIMEDOUT) }
            if count == 0 { return received }
            received += String(decoding: buffer[0..<count], as: UTF8.self)
        }
    }

    func close() { Glibc.close(socket) }
}
