import Foundation
import Hummingbird
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

    /// Serves until the task is cancelled (or, with `stopOnSignals`, the process gets SIGTERM or
    /// SIGINT); `onRunning` gets the port (the chosen one for port 0).
    public func run(stopOnSignals: Bool = true, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        var configuration = ApplicationConfiguration(address: .hostname(options.host, port: options.port), serverName: "vertebra-web")
        configuration.reuseAddress = true
        let app = Application(
            router: makeRouter(), configuration: configuration,
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) })
        try await app.runService(gracefulShutdownSignals: stopOnSignals ? [.sigterm, .sigint] : [])
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        let pages = Pages(reader: reader, roster: options.roster, actionsEnabled: options.actions != nil)
        let sessions = WebSessions()
        @Sendable func viewer(_ request: Request) async -> Pages.Viewer? {
            await sessions.session(request.cookies[WebSessions.cookie]?.value).map { Pages.Viewer(account: $0.account, csrf: $0.csrf) }
        }
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/jobs"]) }
        router.get("/jobs") { request, _ in try await pages.jobs(JobQuery(request.uri.queryParameters), viewer: await viewer(request)) }
        router.get("/api/jobs") { request, _ in try await pages.jobsJSON(JobQuery(request.uri.queryParameters)) }
        router.get("/jobs/{id}") { request, context in
            try await pages.job(context.parameters.get("id") ?? "", viewer: await viewer(request), note: request.uri.queryParameters.get("note"))
        }
        router.get("/workers") { request, _ in await pages.workers(viewer: await viewer(request)) }
        router.get("/charts") { request, _ in try await pages.charts(now: Date(), viewer: await viewer(request)) }
        router.get("/events") { request, _ in
            LiveEvents(reader: reader, query: JobQuery(request.uri.queryParameters), parameters: request.uri.queryParameters, interval: options.pollInterval).response()
        }
        if let actions = options.actions { addActions(to: router, pages: pages, actions: actions, sessions: sessions) }
        return router
    }
}
