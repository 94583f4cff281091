import Foundation
import Logging
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraXML

/// A retryable echo whose result names the attempt that ran it.
struct Echo: VertebraOperation {
    static let path: Resource = "/test/echo"
    static let isRetryable = true
    struct Result: Codable, Sendable, Equatable {
        var text: String
        var worker: String
    }
    var text: String
}

/// Handler runs, by attempt token; which workers' handlers wait instead of answering; how
/// many runs fail on purpose.
final class RunLog: Sendable {
    private let runs = NIOLockedValueBox<[String: Int]>([:])
    private let blocked = NIOLockedValueBox<Set<String>>([])
    private let failures = NIOLockedValueBox(0)

    func record(_ attempt: String) { runs.withLockedValue { $0[attempt, default: 0] += 1 } }
    var byAttempt: [String: Int] { runs.withLockedValue { $0 } }
    var total: Int { byAttempt.values.reduce(0, +) }

    /// While blocked, `worker`'s handlers wait (cancellably) instead of answering.
    func block(_ worker: String, _ on: Bool = true) { blocked.withLockedValue { if on { $0.insert(worker) } else { $0.remove(worker) } } }
    func isBlocked(_ worker: String) -> Bool { blocked.withLockedValue { $0.contains(worker) } }

    /// The next `count` runs fail (retryably).
    func failNext(_ count: Int) { failures.withLockedValue { $0 = count } }
    func takeFailure() -> Bool {
        failures.withLockedValue {
            guard $0 > 0 else { return false }
            $0 -= 1
            return true
        }
    }
}

/// A coordinator and workers on an ``InMemoryNetwork``, with journals in a temporary folder.
final class MemoryCluster: Sendable {
    static let coordinatorJID = JID("coordinator@localhost/coordinator")!
    let network = InMemoryNetwork()
    let clock: any RuntimeClock
    let directory: String
    let runs = RunLog()

    /// How long one request waits for its answer: 5 s on the real clock (short, so the crash
    /// tests end fast, yet far above an answer's time on a loaded machine or under a
    /// sanitizer); long on a manual clock, which moves by whole steps while the answer is on
    /// its way.
    let answerTimeout: Duration

    init(clock: any RuntimeClock = SystemClock()) throws {
        self.clock = clock
        answerTimeout = clock is ManualClock ? .seconds(10) : .seconds(5)
        directory = NSTemporaryDirectory() + "memory-cluster-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    static let quiet: Logger = {
        var logger = Logger(label: "memory-cluster")
        logger.logLevel = ProcessInfo.processInfo.environment["MEMORY_CLUSTER_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    func journal(_ name: String, crash: ExchangeJournal.SimulatedCrash? = nil) throws -> ExchangeJournal {
        var options = ExchangeJournal.Options(durability: .normal)
        options.simulatedCrash = crash
        return try ExchangeJournal(path: "\(directory)/\(name).sqlite", options: options)
    }

    /// Short timeouts, so that real-clock tests end quickly too.
    func coordinatorOptions() -> Coordinator.Options {
        var options = Coordinator.Options(
            lease: .milliseconds(300), maxAttempts: 5, retryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(100),
            workerWait: .seconds(3), answerTimeout: answerTimeout, relayGiveUp: .seconds(5), silenceTimeout: .seconds(2))
        options.clock = clock
        options.accessList = (try? AccessList(parsing: "serve w1@localhost /test/echo\nserve w2@localhost /test/echo\nalice@localhost /test")) ?? AccessList()
        return options
    }

    func startCoordinator(journal: ExchangeJournal, adjust: (inout Coordinator.Options) -> Void = { _ in }) async throws -> Coordinator {
        let coordinator = makeCoordinator(journal: journal, adjust: adjust)
        try await coordinator.start()
        return coordinator
    }

    /// A coordinator as ``startCoordinator(journal:adjust:)`` makes it, not started.
    func makeCoordinator(journal: ExchangeJournal, adjust: (inout Coordinator.Options) -> Void = { _ in }) -> Coordinator {
        var options = coordinatorOptions()
        adjust(&options)
        let transport = network.transport(Self.coordinatorJID, clock: clock, requestTimeout: answerTimeout)
        return Coordinator(client: transport, journal: journal, options: options, logger: Self.quiet)
    }

    /// A worker serving ``Echo``: records each run, waits while the run log is blocked, and
    /// answers with the text and its own name.
    func startWorker(_ name: String, journal: ExchangeJournal, fastPath: Bool = true) async throws -> Worker {
        let worker = try await makeWorker(name, journal: journal, fastPath: fastPath)
        try await worker.start()
        return worker
    }

    /// A worker as ``startWorker(_:journal:fastPath:)`` makes it, not started.
    func makeWorker(
        _ name: String, journal: ExchangeJournal, fastPath: Bool = true, logger: Logger = quiet,
        adjust: (inout Worker.Options) -> Void = { _ in }
    ) async throws -> Worker {
        let jid = JID("\(name)@localhost/w")!
        var options = Worker.Options(coordinator: Self.coordinatorJID, advertiseTTL: .seconds(60), deliveryGiveUp: .seconds(5))
        options.answerTimeout = answerTimeout
        // A generous budget: a slow machine must not turn the fast path classic.
        options.fastPathBudget = fastPath ? .milliseconds(500) : .zero
        options.clock = clock
        adjust(&options)
        let worker = Worker(client: network.transport(jid, clock: clock, requestTimeout: answerTimeout), journal: journal, options: options, logger: logger)
        let runs = self.runs
        try await worker.register(Echo.self) { op, context in
            runs.record(context.attempt)
            while runs.isBlocked(name) { try await Task.sleep(for: .milliseconds(2)) }
            if runs.takeFailure() { throw OperationFailure("failing on purpose") }
            return Echo.Result(text: op.text, worker: name)
        }
        return worker
    }

    /// Waits (real time) until `condition` holds; on a ``ManualClock`` the time moves on by
    /// `step` between looks, each time once the network has gone quiet. Fails the test after
    /// `limit` of real time.
    func eventually(
        _ what: String, step: Duration = .milliseconds(50), limit: Duration = .seconds(20), _ condition: @Sendable () async -> Bool
    ) async throws {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if await condition() { return }
            guard let manual = clock as? ManualClock else {
                try await Task.sleep(for: .milliseconds(1))
                continue
            }
            try await settle()
            if await condition() { return }
            manual.advance(by: step)
        }
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }

    /// Moves the manual clock on by `total` in steps shorter than the workers' advertisements
    /// (60 s), letting the network settle after each, as time passes in production: one jump
    /// past an advertisement's expiry would race its renewal against whatever the jump wakes.
    func advance(_ clock: ManualClock, by total: Duration, step: Duration = .seconds(20)) async throws {
        var left = total
        while left > .zero {
            let next = min(step, left)
            clock.advance(by: next)
            left -= next
            try await settle()
        }
    }

    /// Returns once no stanza was routed for a few milliseconds (what is in flight has landed).
    func settle() async throws {
        var last = network.routedCount
        var quiet = 0
        while quiet < 2 {
            try await Task.sleep(for: .milliseconds(2))
            let now = network.routedCount
            quiet = now == last ? quiet + 1 : 0
            last = now
        }
    }

    /// Waits until `coordinator` knows `count` workers offering ``Echo``.
    func waitForWorkers(_ coordinator: Coordinator, _ count: Int) async throws {
        try await eventually("\(count) workers", step: .zero) { await coordinator.workers.count >= count }
    }

    /// Submits an ``Echo``.
    func submit(_ coordinator: Coordinator, _ text: String = "x", deadline: Duration? = nil) async throws -> JobHandle {
        try await coordinator.submit(Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: text)), deadline: deadline)
    }

    /// A submitter (alice, allowed to dispatch /test) on the network, as `vertebra dispatch`.
    /// A started coordinator (journal "coordinator") and a started worker `w1` it knows.
    func startCoordinatorAndWorker() async throws -> (journal: ExchangeJournal, coordinator: Coordinator, worker: Worker) {
        let journal = try self.journal("coordinator")
        let coordinator = try await startCoordinator(journal: journal)
        let worker = try await startWorker("w1", journal: try self.journal("w1"))
        try await waitForWorkers(coordinator, 1)
        return (journal, coordinator, worker)
    }

    func startSubmitter() async throws -> Submitter {
        let transport = network.transport(JID("alice@localhost/submitter")!, clock: clock, requestTimeout: answerTimeout)
        let submitter = Submitter(client: transport, coordinator: Self.coordinatorJID, answerTimeout: answerTimeout)
        try await submitter.start()
        return submitter
    }

    /// Submits an ``Echo`` through `submitter`; returns once the coordinator accepted it.
    func submit(_ submitter: Submitter, _ text: String) async throws -> Submitter.Job {
        try await submitter.submit(Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: text)))
    }

    /// The job's end state in `journal` (nil while unfinished).
    func endState(of job: String, in journal: ExchangeJournal) async -> JobState? {
        guard let state = try? await journal.job(job)?.state, state.isTerminal else { return nil }
        return state
    }
}
