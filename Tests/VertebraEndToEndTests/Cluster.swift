import Foundation
import Logging
import Natter
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// A coordinator and workers in this process, talking through a real XMPP server.
final class Cluster: Sendable {
    let server: XMPPServerProcess
    let directory: String
    let coordinator: Coordinator
    let coordinatorJournal: ExchangeJournal
    let workers: [Worker]
    let workerJournals: [ExchangeJournal]

    static let users = ["coordinator", "w1", "w2", "w3", "alice", "mallory"]

    static func configuration(_ server: XMPPServerProcess, user: String, resource: String) -> ClientConfiguration {
        guard let jid = JID(local: user, domain: server.domain, resource: resource) else {
            preconditionFailure("test JID")
        }
        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: server.port, jid: jid, password: .value(XMPPServerProcess.password), tls: .required,
            trustedCAFile: server.caFile)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))
        configuration.requestTimeout = .seconds(10)
        return configuration
    }

    var coordinatorJID: JID { Self.jid(server, "coordinator", "coordinator") }

    static func jid(_ server: XMPPServerProcess, _ user: String, _ resource: String) -> JID {
        guard let jid = JID(local: user, domain: server.domain, resource: resource) else { preconditionFailure("test JID") }
        return jid
    }

    /// Starts a server of `kind`, a coordinator and `workerCount` workers with the diagnostic
    /// operations.
    static func start(
        _ kind: XMPPServerProcess.Kind, workers workerCount: Int = 2, acl: String = "alice@* /vertebra\nserve w1@* /\nserve w2@* /\nserve w3@* /",
        workerOptions: (Int, inout Worker.Options) -> Void = { _, _ in }, inspector: (any StanzaInspector)? = nil,
        coordinatorOptions: (inout Coordinator.Options) -> Void = { _ in }
    ) async throws -> Cluster {
        let server = try await XMPPServerProcess.start(kind, users: users)
        do {
            return try await start(on: server, workers: workerCount, acl: acl, workerOptions: workerOptions, inspector: inspector, coordinatorOptions: coordinatorOptions)
        } catch {
            server.stop()
            throw error
        }
    }

    /// Starts a cluster (as ``start(_:workers:acl:workerOptions:inspector:coordinatorOptions:)``),
    /// runs `body` with it and stops it however `body` ends: also when a `#require` fails or
    /// anything in it throws.
    static func with<T>(
        _ kind: XMPPServerProcess.Kind, workers workerCount: Int = 2, acl: String = "alice@* /vertebra\nserve w1@* /\nserve w2@* /\nserve w3@* /",
        workerOptions: (Int, inout Worker.Options) -> Void = { _, _ in }, inspector: (any StanzaInspector)? = nil,
        coordinatorOptions: (inout Coordinator.Options) -> Void = { _ in }, _ body: (Cluster) async throws -> T
    ) async throws -> T {
        let cluster = try await start(
            kind, workers: workerCount, acl: acl, workerOptions: workerOptions, inspector: inspector, coordinatorOptions: coordinatorOptions)
        do {
            let result = try await body(cluster)
            await cluster.stop()
            return result
        } catch {
            await cluster.stop()
            throw error
        }
    }

    private static func start(
        on server: XMPPServerProcess, workers workerCount: Int, acl: String, workerOptions: (Int, inout Worker.Options) -> Void,
        inspector: (any StanzaInspector)?, coordinatorOptions: (inout Coordinator.Options) -> Void
    ) async throws -> Cluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var options = Coordinator.Options(
            accessList: try AccessList(parsing: acl.replacingOccurrences(of: "@*", with: "@\(server.domain)")),
            lease: .seconds(2), retryDelay: .milliseconds(100), workerWait: .seconds(3))
        coordinatorOptions(&options)
        let coordinatorJournal = try ExchangeJournal(path: directory + "/coordinator.sqlite")
        let coordinator = Coordinator(
            client: XMPPClient(configuration: configuration(server, user: "coordinator", resource: "coordinator"), logger: Logger(label: "coordinator"), inspector: inspector),
            journal: coordinatorJournal, options: options)
        try await coordinator.start()
        var workers: [Worker] = []
        var journals: [ExchangeJournal] = []
        for index in 1...max(1, workerCount) where workerCount > 0 {
            let journal = try ExchangeJournal(path: directory + "/w\(index).sqlite")
            var settings = Worker.Options(coordinator: jid(server, "coordinator", "coordinator"), advertiseTTL: .seconds(30))
            workerOptions(index, &settings)
            let worker = Worker(
                client: XMPPClient(configuration: configuration(server, user: "w\(index)", resource: "w\(index)"), logger: Logger(label: "w\(index)"), inspector: inspector),
                journal: journal, options: settings)
            try await Diagnostics.register(on: worker)
            try await worker.start()
            workers.append(worker)
            journals.append(journal)
        }
        if workerCount > 0 {
            try await coordinator.waitForWorkers(workerCount, offering: Diagnostics.Echo.path)
        }
        return Cluster(
            server: server, directory: directory, coordinator: coordinator, coordinatorJournal: coordinatorJournal,
            workers: workers, workerJournals: journals)
    }

    private init(
        server: XMPPServerProcess, directory: String, coordinator: Coordinator, coordinatorJournal: ExchangeJournal,
        workers: [Worker], workerJournals: [ExchangeJournal]
    ) {
        self.server = server
        self.directory = directory
        self.coordinator = coordinator
        self.coordinatorJournal = coordinatorJournal
        self.workers = workers
        self.workerJournals = workerJournals
    }

    /// A submitter logged in as `user`.
    func submitter(_ user: String = "alice") async throws -> Submitter {
        let submitter = Submitter(
            client: XMPPClient(configuration: Self.configuration(server, user: user, resource: "submit-\(UUID().uuidString.prefix(6))")),
            coordinator: coordinatorJID)
        try await submitter.start()
        return submitter
    }

    func stop() async {
        for worker in workers { await worker.stop() }
        await coordinator.stop()
        for journal in workerJournals { await journal.close() }
        await coordinatorJournal.close()
        server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// How many times each job's handler ran on the workers: performer conversations per job.
    func handlerRuns() async throws -> [String: Int] {
        var runs: [String: Int] = [:]
        for journal in workerJournals {
            for job in try await journal.jobs(matching: JobFilter(limit: 1_000_000)) {
                runs[job.token, default: 0] += try await journal.conversations(ofJob: job.token).filter { $0.role == .performer }.count
            }
        }
        return runs
    }
}

/// Collects a submitter job's events until its end.
func outcome(of job: Submitter.Job) async -> (chunks: [[XElement]], error: VertebraError?, progress: [JobProgress]) {
    var chunks: [[XElement]] = []
    var progress: [JobProgress] = []
    for await event in job.events {
        switch event {
        case .data(let values): chunks.append(values)
        case .progress(let report): progress.append(report)
        case .done: return (chunks, nil, progress)
        case .failed(let error): return (chunks, error, progress)
        case .accepted: continue
        }
    }
    return (chunks, VertebraError(.shutDown, "events ended without an end"), progress)
}
