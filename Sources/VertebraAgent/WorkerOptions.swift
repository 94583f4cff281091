import ArgumentParser
import Foundation
import Logging
import Natter
import ServiceLifecycle
import UnixSignals
import Vertebra
import VertebraJournal
import VertebraXML

/// The options every worker executable takes (agents in `Agents/` and `vertebra worker`).
public struct WorkerOptions: ParsableArguments {
    @OptionGroup public var connection: ConnectionOptions

    @Option(help: ArgumentHelp("The coordinator's full JID. Default: $VERTEBRA_COORDINATOR, else coordinator@DOMAIN/coordinator.", valueName: "jid"))
    public var coordinator: String?

    @Option(help: ArgumentHelp("This worker's journal. Default: STATE/worker-NAME-RESOURCE.sqlite.", valueName: "path"))
    public var journal: String?

    @Option(help: "Journal durability: normal (survives a crash) or full (survives power loss).")
    public var durability: String = "normal"

    @Option(help: ArgumentHelp(
        "Cap the journal's size (e.g. 512m, 2g; k, m, g are powers of 1024). When it is full, the job whose step cannot be journalled ends with journal-failed (retried elsewhere when retryable) and new ops are refused. Default: no cap.",
        valueName: "size"))
    public var journalMaxSize: String?

    @Option(parsing: .unconditional, help: "Jobs run at once, 1 to 100000; more are refused (nack busy).")
    public var maxJobs: Int = 16

    @Option(parsing: .unconditional, help: "Seconds an advertisement is valid (refreshed at 0.9 x).")
    public var ttl: Int = 60

    @Option(help: ArgumentHelp("A resource to advertise, as name=/path (repeatable).", valueName: "name=/path"))
    public var resource: [String] = []

    @Option(help: ArgumentHelp("Another bare JID allowed to dispatch here (repeatable).", valueName: "jid"))
    public var allow: [String] = []

    @Flag(help: "Ask the coordinator (/security/authorize) about other requesters.")
    public var askCoordinator = false

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Fast path: a job whose handler ends within this many milliseconds ends in the answer to its op (2 stanzas instead of 8; offered to the coordinator, never used with Vertebra 0.4 peers). 0 turns it off.",
        valueName: "ms"))
    public var fastPathBudget: Int = 50

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "On SIGTERM or SIGINT: seconds running jobs may take to finish (no new ones are taken) before they are cancelled; a second signal stops at once.",
        valueName: "seconds"))
    public var drainTimeout: Int = 30

    @OptionGroup public var metrics: MetricsOptions

    public init() {}

    public func validate() throws {
        guard Durability(rawValue: durability) != nil else { throw ValidationError("--durability must be normal or full") }
        guard (1...Worker.maxConcurrentJobsLimit).contains(maxJobs) else {
            throw ValidationError("--max-jobs must be from 1 to \(Worker.maxConcurrentJobsLimit), not \(maxJobs)")
        }
        for text in allow {
            guard let jid = JID(text), jid.local != nil else {
                throw ValidationError("--allow: '\(text)' is not a JID (e.g. alice@example.org)")
            }
            // Every resource of the account may dispatch: a full JID would read as less.
            guard !jid.isFull else { throw ValidationError("--allow: '\(text)' names a resource; give the bare JID \(jid.bare), which allows all of its resources") }
        }
        guard ttl >= 5 else { throw ValidationError("--ttl must be at least 5 seconds") }
        guard ttl <= 86_400 else { throw ValidationError("--ttl must be at most 86400 seconds (a day)") }
        guard (0...86_400).contains(drainTimeout) else { throw ValidationError("--drain-timeout must be from 0 to 86400 seconds, not \(drainTimeout)") }
        guard (0...FastPath.maxBudgetMilliseconds).contains(fastPathBudget) else {
            throw ValidationError("--fast-path-budget must be from 0 to \(FastPath.maxBudgetMilliseconds) ms, not \(fastPathBudget)")
        }
        _ = try resources()
        _ = try journalMaxPages()
    }

    func resources() throws -> [String: [Resource]] {
        var result: [String: [Resource]] = [:]
        for item in resource {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[1].hasPrefix("/") else {
                throw ValidationError("--resource '\(item)' is not name=/path")
            }
            result[String(parts[0]), default: []].append(Resource(String(parts[1])))
        }
        return result
    }

    /// `--journal-max-size` in journal pages (4 KiB).
    func journalMaxPages() throws -> Int? {
        guard let text = journalMaxSize?.lowercased() else { return nil }
        let units: [Character: Int] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        var digits = Substring(text)
        var unit = 1
        if let last = digits.last, let factor = units[last] {
            unit = factor
            digits = digits.dropLast()
        }
        guard let count = Int(digits), count > 0, count <= (1 << 50) / unit else {
            throw ValidationError("--journal-max-size '\(journalMaxSize ?? "")' is not a size such as 200k, 512m or 2g")
        }
        let pages = count * unit / 4096
        guard pages >= 16 else { throw ValidationError("--journal-max-size must be at least 64k") }
        return pages
    }

    func coordinatorJID(domain: String) throws -> JID {
        let text = coordinator ?? ProcessInfo.processInfo.environment["VERTEBRA_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "coordinator@\(domain)/coordinator"
        guard let jid = JID(text), jid.isFull else {
            throw ValidationError("coordinator '\(text)' is not a full JID (user@domain/resource)")
        }
        return jid
    }

    /// Connects a worker, lets `register` add its operations, starts it, and runs it as a
    /// service until SIGINT or SIGTERM (``runUntilSignalled(_:logger:onSignal:)``).
    public func run(name: String, register: (Worker) async throws -> Void) async throws {
        connection.bootstrapLogging()
        let logger = Logger(label: name)
        // Before the worker is made: its metrics are bound to the backend at creation.
        let endpoint = try await metrics.start()
        var configuration = try connection.clientConfiguration(defaultResource: name)
        configuration.requestTimeout = .seconds(15)
        let coordinatorJID = try coordinatorJID(domain: configuration.jid.domain)
        let path = try journalPath(configuration)
        let journal = try ExchangeJournal(
            path: path, options: .init(durability: Durability(rawValue: durability), maxPageCount: try journalMaxPages()))
        var options = Worker.Options(
            coordinator: coordinatorJID, maxConcurrentJobs: maxJobs, advertiseTTL: .seconds(ttl), resources: try resources(),
            authorizedRequesters: allow.compactMap(JID.init), askCoordinatorToAuthorize: askCoordinator)
        options.fastPathBudget = .milliseconds(fastPathBudget)
        options.drainTimeout = .seconds(drainTimeout)
        let client = XMPPClient(configuration: configuration, logger: logger)
        let worker = Worker(client: client, journal: journal, options: options, logger: logger)
        try await register(worker)
        try await worker.start()
        let bound = await client.boundJID?.description ?? "?"
        let operations = await worker.operations.map(\.path)
        logger.info("worker ready", metadata: [
            "jid": "\(bound)", "operations": "\(operations)",
            "journal": "\(path)", "coordinator": "\(coordinatorJID)"])
        // The first signal drains (running jobs may finish, within --drain-timeout); a second
        // cuts the drain short.
        let services: [any Service] = [endpoint.map { endpoint in StopsAtShutdown("metrics endpoint") { await endpoint.stop() } }, worker].compactMap { $0 }
        try await runUntilSignalled(services, logger: logger) { signal in
            logger.info(signal == 1 ? "stopping: draining" : "second signal: stopping at once")
        }
        await journal.close()
    }

    private func journalPath(_ configuration: ClientConfiguration) throws -> String {
        if let journal { return journal }
        let directory = vertebraStateDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return "\(directory)/worker-\(configuration.jid.local ?? "worker")-\(configuration.resource ?? "worker").sqlite"
    }
}

/// Waits for SIGINT or SIGTERM; false when the waiting task was cancelled instead.
@discardableResult
public func waitForTerminationSignal() async -> Bool {
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    for await _ in signals { return true }
    return false
}
