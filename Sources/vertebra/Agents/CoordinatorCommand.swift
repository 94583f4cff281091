import ArgumentParser
import Foundation
import Logging
import Natter
import ServiceLifecycle
import Vertebra
import VertebraWeb
import VertebraAgent
import VertebraJournal

/// `vertebra coordinator`: publishes jobs to workers and serves /security/*.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: worker registry, ACL, job dispatch and its journal.",
        discussion: """
            Workers advertise to it (/security/advertise) and send it directed presence; \
            submitters (`vertebra dispatch`, programs, Vertebra 0.4 clients) send it ops, which it \
            journals, forwards to workers and relays back. Submitters other than the \
            coordinator's own account need a rule in the ACL file (--acl): one rule per line, \
            `SUBMITTER /op/path...`, where SUBMITTER is a bare JID, *@domain or *. Workers need a \
            `serve WORKER /op/path...` rule for each operation they advertise (without one, \
            their advertisement is refused: nobody else may read job arguments). On start it \
            resumes every unfinished job of its journal. `vertebra jobs --journal PATH` reads the \
            same journal while it runs.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var location: JournalLocation
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var traceFile: TraceFileOptions
    @OptionGroup var otlp: OTLPOptions
    @Option(help: ArgumentHelp("Access-control list of submitters and the operations they may dispatch.", valueName: "path"))
    var acl: String?
    @Option(help: "Journal durability: normal (survives a crash) or full (survives power loss).")
    var durability: String = "normal"
    @Option(parsing: .unconditional, help: "Seconds a worker may be gone before its attempt is declared lost.")
    var lease: Int = 10
    @Option(parsing: .unconditional, help: "Attempts per retryable job before it fails.")
    var maxAttempts: Int = 3
    @Option(help: """
        Seconds a job waits when no live worker offers its operation at all; jobs whose workers \
        are merely busy wait queued (pending, first in first out) as long as it takes.
        """)
    var workerWait: Int = 30
    @Option(help: """
        Seconds an attempt may go without a word from its worker before the worker is asked \
        for its status (looked at every quarter of this, or every --lease if shorter); unconfirmed, the attempt is lost (worker-silent): retried when the \
        operation is retryable, failed otherwise. Vertebra 0.4 performers cannot confirm, so a \
        0.4 handler silent this long is treated as lost.
        """)
    var silenceTimeout: Int = 120
    @Flag(help: "Never use the fast path, even with workers that offer it (every job gets the classic 8-stanza conversation).")
    var noFastPath = false
    @Option(help: ArgumentHelp("""
        Periodic jobs: one per line, CRON [missed=run|skip] OPERATION name=type:value ..., CRON \
        being five fields (minute hour day-of-month month day-of-week, local time) or @hourly, \
        @daily, @weekly, @monthly, @yearly. missed= says what a restart does about runs missed \
        while the coordinator was down: run (one job, at once; the default) or skip.
        """, valueName: "path"))
    var schedule: String?
    @Option(help: ArgumentHelp("Also serve the web view (as `vertebra web`) on this address, e.g. 127.0.0.1:8080.", valueName: "host:port"))
    var web: String?

    /// The schedule file's entries (checked by validate()).
    private func scheduleEntries() throws -> [ScheduleEntry] {
        guard let schedule else { return [] }
        let text: String
        do { text = try String(contentsOfFile: schedule, encoding: .utf8) } catch {
            throw ValidationError("cannot read the schedule \(schedule): \(error.localizedDescription)")
        }
        do { return try ScheduleFile.parse(text, name: schedule) } catch { throw ValidationError("\(error)") }
    }

    /// A year: longer settings are mistakes (and would overflow durations).
    static let maxSeconds = 31_536_000

    func validate() throws {
        guard Durability(rawValue: durability) != nil else { throw ValidationError("--durability must be normal or full") }
        let ranged = [("--lease", lease), ("--worker-wait", workerWait), ("--silence-timeout", silenceTimeout)]
        for (name, value) in ranged where !(1...Self.maxSeconds).contains(value) {
            throw ValidationError("\(name) must be from 1 to \(Self.maxSeconds) seconds, not \(value)")
        }
        guard (1...1_000).contains(maxAttempts) else { throw ValidationError("--max-attempts must be from 1 to 1000, not \(maxAttempts)") }
        _ = try scheduleEntries()
        if let web { _ = try WebAddress.parse(web) }
    }

    func run() async throws {
        connection.bootstrapLogging()
        let logger = Logger(label: "coordinator")
        do {
            let endpoint = try await metrics.start()
            let traces = try traceFile.start()
            let exporter = try otlp.start(serviceName: "vertebra-coordinator", traces: traces == nil, metrics: endpoint == nil)
            let configuration = try connection.clientConfiguration(defaultResource: "coordinator")
            let accessList = try loadAccessList()
            let directory = (location.path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let journal = try ExchangeJournal(path: location.path, options: .init(durability: Durability(rawValue: durability)))
            var options = Coordinator.Options(
                accessList: accessList, lease: .seconds(lease), maxAttempts: maxAttempts, workerWait: .seconds(workerWait),
                silenceTimeout: .seconds(silenceTimeout))
            options.fastPath = !noFastPath
            options.schedule = try scheduleEntries()
            let client = XMPPClient(configuration: configuration, logger: logger)
            let coordinator = Coordinator(client: client, journal: journal, options: options, logger: logger)
            // The web view first: an address it cannot listen on stops the start.
            let webView = try await startWeb(coordinator: coordinator)
            try await coordinator.start()
            let bound = await client.boundJID?.description ?? "?"
            logger.info("coordinator ready", metadata: [
                "jid": "\(bound)", "journal": "\(location.path)",
                "acl submit rules": "\(accessList.rules.count)", "acl serve rules": "\(accessList.serveRules.count)", "schedule entries": "\(options.schedule.count)"])
            // One group: at the first signal its services stop in reverse order (the web view,
            // the coordinator, then the metrics endpoint and the span exporters); a second
            // signal cancels them.
            let optional: [(any Service)?] = [
                endpoint.map { endpoint in StopsAtShutdown("metrics endpoint") { await endpoint.stop() } },
                traces.map { traces in StopsAtShutdown("trace file") { await traces.stop() } },
                exporter.map { exporter in StopsAtShutdown("OTLP exporter") { await exporter.stop() } },
                coordinator,
                webView.map { webView in StopsAtShutdown("web view") { await webView.stop() } },
            ]
            try await runUntilSignalled(optional.compactMap { $0 }, logger: logger) { signal in
                if signal == 1 { logger.info("stopping; unfinished jobs resume at the next start") }
            }
            await journal.close()
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

extension CoordinatorCommand {
    /// `--acl PATH`, or the empty list. An error names the file and the line, without the wire's
    /// error code (the file is local).
    private func loadAccessList() throws -> AccessList {
        guard let acl else { return AccessList() }
        do { return try AccessList(contentsOf: acl) } catch let error as VertebraError {
            throw AccessListFileError(description: error.message.hasPrefix("ACL line") ? "\(acl): \(error.message)" : error.message)
        }
    }

    /// `--web`: the web view of this coordinator's journal, with its live roster.
    private func startWeb(coordinator: Coordinator) async throws -> RunningWebView? {
        guard let web else { return nil }
        let (host, port) = try WebAddress.parse(web)
        var options = WebView.Options(host: host, port: port, journalPath: location.path, roster: { await coordinator.roster() })
        let configuration = try connection.clientConfiguration(defaultResource: "coordinator")
        let own = JID("\(configuration.jid.bare)/\(configuration.resource ?? "coordinator")") ?? configuration.jid
        let signIn = try connection.webActions(coordinator: own)
        options.actions = WebActions(domain: own.domain) { account, password in try await signIn.signIn(account: account, password: password) }
        do {
            return try await WebView(options: options).start { port in WebAddress.announce(host: host, port: port) }
        } catch {
            throw WebViewError(description: "the web view cannot serve on \(web): \(error)")
        }
    }
}

struct AccessListFileError: Error, CustomStringConvertible {
    let description: String
}

struct WebViewError: Error, CustomStringConvertible {
    let description: String
}
