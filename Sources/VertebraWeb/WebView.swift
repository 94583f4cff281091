import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Vertebra
import VertebraJournal

/// `vertebra web`: a live view of a journal's jobs (and, with a coordinator, its workers) in a
/// browser. Read-only; every page works on a journal file alone.
public struct WebView: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var journalPath: String
        /// The live roster, when connected to a coordinator (nil: the workers page says so).
        public var roster: (@Sendable () async throws -> [WorkerStatus])?
        /// How often the live updates look for changed jobs.
        public var pollInterval: Duration
        /// Sign-in for the cancel and retry buttons (nil: read-only).
        public var actions: WebActions?

        public init(host: String = "127.0.0.1", port: Int = 8080, journalPath: String, roster: (@Sendable () async throws -> [WorkerStatus])? = nil, pollInterval: Duration = .milliseconds(500)) {
            self.host = host
            self.port = port
            self.journalPath = journalPath
            self.roster = roster
            self.pollInterval = pollInterval
        }
    }

    public let options: Options
    let reader: JournalReader

    /// Opens the journal (read-only).
    /// - Throws: ``JournalError`` when the file is missing or not a journal.
    public init(options: Options) throws {
        self.options = options
        reader = try JournalReader(path: options.journalPath)
    }

    /// Serves until the process gets SIGTERM or SIGINT (or the task is cancelled); `onRunning`
    /// gets the port (the chosen one for port 0). At the signal it stops gracefully: it stops
    /// listening, open live-update streams end, and requests in progress finish.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await ServiceGroup(configuration: .init(
            services: [server(onRunning: onRunning)], gracefulShutdownSignals: [.sigterm, .sigint], logger: Self.logger)).run()
    }

    /// Serves in the background until ``RunningWebView/stop()``; returns once it listens.
    public func start(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws -> RunningWebView {
        let (ports, listening) = AsyncStream<Int>.makeStream()
        let group = ServiceGroup(configuration: .init(services: [server { port in
            await onRunning(port)
            listening.yield(port)
        }], logger: Self.logger))
        let task = Task {
            defer { listening.finish() }
            try await group.run()
        }
        for await port in ports { return RunningWebView(port: port, group: group, task: task) }
        // The server ended before it listened: its error says why.
        try await task.value
        throw CancellationError()
    }

    static let logger = Logger(label: "vertebra-web")

    private func server(onRunning: @escaping @Sendable (Int) async -> Void) -> some Service {
        var configuration = ApplicationConfiguration(address: .hostname(options.host, port: options.port), serverName: "vertebra-web")
        configuration.reuseAddress = true
        return Application(
            router: makeRouter(), configuration: configuration,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) }, logger: Self.logger)
    }

    func makeRouter() -> Router<BasicRequestContext> {
        // HEAD answers as GET would, without the body.
        let router = Router(options: .autoGenerateHeadEndpoints)
        let pages = Pages(reader: reader, roster: options.roster, actionsEnabled: options.actions != nil)
        let sessions = WebSessions()
        @Sendable func viewer(_ request: Request) async -> Pages.Viewer? {
            await sessions.session(request.cookies[WebSessions.cookie]?.value).map { Pages.Viewer(account: $0.account, csrf: $0.csrf) }
        }
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/jobs"]) }
        router.get("/jobs") { request, _ in try await pages.jobs(JobQuery(request.uri.queryParameters), viewer: await viewer(request)) }
        router.get("/api/jobs") { request, _ in try await pages.jobsJSON(JobQuery(request.uri.queryParameters)) }
        router.get("/jobs/{id}") { request, context in
            // Only the notes this view writes, by name: a link cannot put its own text on the page.
            let note = request.uri.queryParameters.get("note").flatMap { Pages.notes[String($0)] }
            return try await pages.job(context.parameters.get("id") ?? "", viewer: await viewer(request), note: note)
        }
        router.get("/live.js") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(string: Pages.liveScript)))
        }
        router.get("/workers") { request, _ in await pages.workers(viewer: await viewer(request)) }
        router.get("/charts") { request, _ in try await pages.charts(now: Date(), viewer: await viewer(request)) }
        router.get("/events") { request, _ in
            LiveEvents(reader: reader, query: JobQuery(request.uri.queryParameters), parameters: request.uri.queryParameters, interval: options.pollInterval).response()
        }
        if let actions = options.actions { addActions(to: router, pages: pages, actions: actions, sessions: sessions) }
        Self.refuseOtherMethods(on: router)
        return router
    }

    /// The read-only pages answer another method 405 with `Allow: GET, HEAD` (not 404: the page is there).
    private static func refuseOtherMethods(on router: Router<BasicRequestContext>) {
        for path in ["/", "/jobs", "/api/jobs", "/jobs/{id}", "/workers", "/charts", "/events", "/live.js"] {
            for method in [HTTPRequest.Method.post, .put, .delete, .patch] {
                router.on(RouterPath(path), method: method) { _, _ in
                    Response(
                        status: .methodNotAllowed, headers: [.allow: "GET, HEAD", .contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "\(method) is not allowed here; use GET\n")))
                }
            }
        }
    }
}

/// A web view serving in the background (``WebView/start(onRunning:)``).
public struct RunningWebView: Sendable {
    /// The port it listens on.
    public let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    /// Stops gracefully: stops listening, ends the live-update streams, lets requests in progress
    /// finish for up to `timeout`, then cancels what is left. Returns once the server is down.
    public func stop(timeout: Duration = .seconds(5)) async {
        await group.triggerGracefulShutdown()
        let task = task
        let deadline = Task {
            try await Task.sleep(for: timeout)
            task.cancel()
        }
        _ = await task.result
        deadline.cancel()
    }
}
