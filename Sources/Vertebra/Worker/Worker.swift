import CoreMetrics
import Foundation
import Logging
import Natter
import Synchronization
import Tracing
import VertebraJournal
import VertebraXML

/// Runs operations for a coordinator.
///
/// ```swift
/// let worker = Worker(client: XMPPClient(configuration: config), journal: journal,
///                     options: .init(coordinator: coordinatorJID))
/// try await worker.register(Resize.self) { op, context in
///     try await resize(op.source, to: op.width)
/// }
/// try await worker.start()          // connects, resumes journalled work, advertises
/// ```
///
/// Back-pressure: at most ``Options/maxConcurrentJobs`` run at once. The limit is advertised
/// to the coordinator (which queues beyond it); an `op` that still arrives over the limit is
/// accepted and answered with `nack` (reason `busy`), so the coordinator tries elsewhere.
public actor Worker: PerformerRole {
    /// The most jobs a worker may run at once: a coordinator refuses a larger advertised capacity.
    public static let maxConcurrentJobsLimit = Advertisement.maxCapacity
    public struct Options: Sendable {
        /// The coordinator's full JID: it is sent directed presence and advertisements, and may
        /// always dispatch.
        public var coordinator: JID
        /// Jobs run at once; more are refused with `nack`.
        public var maxConcurrentJobs: Int
        /// How long an advertisement is valid; it is refreshed at 0.9 × this.
        public var advertiseTTL: Duration
        /// Resources advertised beside the operations, e.g. `["cluster": ["/cluster/rd00"]]`.
        public var resources: [String: [Resource]]
        /// Bare JIDs besides the coordinator's that may dispatch directly.
        public var authorizedRequesters: [JID]
        /// Ask the coordinator (`/security/authorize`) about any other requester.
        public var askCoordinatorToAuthorize: Bool
        /// How long to keep retrying a result the requester has not acknowledged.
        public var deliveryGiveUp: Duration
        /// How long one try of a stanza waits for the requester's answer before it is sent again.
        public var answerTimeout: Duration = .seconds(10)
        /// The fast path (``FastPath``): a handler that ends within this budget ends its job in
        /// the answer to the `op` (2 stanzas instead of 8). Zero turns it off; it is offered in
        /// the advertisement, capped at ``FastPath/maxBudgetMilliseconds``.
        public var fastPathBudget: Duration = .milliseconds(50)
        /// Where time is read and slept on (a ``ManualClock`` in tests).
        public var clock: any RuntimeClock = SystemClock()
        /// How long a graceful shutdown of the worker as a service lets running handlers finish
        /// (``drain(timeout:)``).
        public var drainTimeout: Duration = .seconds(30)
        /// Where metrics go: the process's swift-metrics backend unless set (a test's own).
        public var metrics: any MetricsFactory = MetricsSystem.factory
        /// Where spans go (`vertebra.handler`): the process's swift-distributed-tracing backend
        /// unless set (a test's own).
        public var tracer: any Tracer = InstrumentationSystem.tracer

        public init(
            coordinator: JID, maxConcurrentJobs: Int = 16, advertiseTTL: Duration = .seconds(60),
            resources: [String: [Resource]] = [:], authorizedRequesters: [JID] = [],
            askCoordinatorToAuthorize: Bool = false, deliveryGiveUp: Duration = .seconds(3600)
        ) {
            self.coordinator = coordinator
            self.maxConcurrentJobs = maxConcurrentJobs
            self.advertiseTTL = advertiseTTL
            self.resources = resources
            self.authorizedRequesters = authorizedRequesters
            self.askCoordinatorToAuthorize = askCoordinatorToAuthorize
            self.deliveryGiveUp = deliveryGiveUp
        }
    }

    /// The XMPP client (started by ``start()``).
    public nonisolated let client: any StanzaTransport
    public nonisolated let options: Options
    nonisolated var clock: any RuntimeClock { options.clock }
    /// The worker's exchange journal.
    public nonisolated let journal: ExchangeJournal
    let logger: Logger
    let ids = StanzaIDs()
    let inbox = RequesterInbox(journal: nil)
    var handlers: [String: OperationHandler] = [:]
    /// Slots, and the running attempts by token `A:B` with their tasks.
    var attempts: AttemptTable<Task<Void, Never>>
    /// Fast-path ops still within their budget, by conversation, with the repeats of each
    /// waiting for its answer.
    var fastAnswers: [Int64: [CheckedContinuation<XElement?, Never>]] = [:]
    /// `op`s being answered, by `peer|IQ id`, with the repeats waiting for the same answer.
    /// Fast-path conversations whose end could not be journalled (answered unjournalled).
    var unrecordedEnds: Set<Int64> = []
    var opsInProgress: [String: [CheckedContinuation<Result<XElement?, any Error>, Never>]] = [:]
    /// Conversations whose stanzas are being sent again (recovery or replay).
    var resuming: Set<Int64> = []
    var authorizations = AuthorizationCache()
    /// Every task the worker starts but the handlers' (which run the user's code: ``stop()``
    /// cancels them and waits for them within a bound): stopped and waited for by ``stop()``.
    let tasks = OwnedTasks()
    var isStarted = false
    /// The advertisement refresh loop; restarted when the coordinator's presence changes.
    var refresher: OwnedTasks.Cancellation?
    /// Counts the refresh loops started; only the latest may change the advertising state.
    var refreshGeneration = 0
    var advertiseFailures = 0
    /// The coordinator's refusals in a row (not-authorized), which space the retries out.
    var advertiseRefusals = 0
    var isAdvertising = false
    var advertiseAgain = false
    /// The coordinator's presence as last seen (nil: none yet).
    var coordinatorPresent: Bool?
    /// Journal writes that failed (each logged at error level).
    public internal(set) var journalFailures = 0
    let metrics: WorkerMetrics

    public init(client: any StanzaTransport, journal: ExchangeJournal, options: Options, logger: Logger = Logger(label: "vertebra.worker")) {
        self.client = client
        self.journal = journal
        self.options = options
        self.logger = logger
        self.metrics = WorkerMetrics(factory: options.metrics)
        self.attempts = AttemptTable(capacity: options.maxConcurrentJobs)
    }

    /// Registers a handler returning one result (sent as one `data`, then `final`).
    public func register<Op: VertebraOperation>(
        _ type: Op.Type, _ handler: @escaping @Sendable (Op, JobContext) async throws -> Op.Result
    ) throws {
        try add(.single(type, handler))
    }

    /// Registers a handler that streams results: each `results.yield` is one `data` chunk.
    public func registerStreaming<Op: VertebraOperation>(
        _ type: Op.Type, _ handler: @escaping @Sendable (Op, JobContext, ResultStream<Op.Result>) async throws -> Void
    ) throws {
        try add(.streaming(type, handler))
    }

    private func add(_ handler: OperationHandler) throws {
        guard !isStarted else {
            throw VertebraError(.badRequest, "register \(handler.path) before start(): the worker has already advertised")
        }
        do {
            try Self.validate(handler)
        } catch {
            throw VertebraError(.badRequest, error.message)
        }
        guard handlers[handler.path.path] == nil else {
            throw VertebraError(.badRequest, "\(handler.path) is registered twice")
        }
        handlers[handler.path.path] = handler
    }

    private static func validate(_ handler: OperationHandler) throws(ProtocolError) {
        guard !handler.path.components.isEmpty else {
            throw ProtocolError("an operation's path is empty; give it a path such as /image/resize")
        }
        guard handler.path.components.first != "security" else {
            throw ProtocolError("\(handler.path) is reserved for the coordinator's service operations")
        }
        if let deadline = handler.defaultDeadline, deadline <= .zero {
            throw ProtocolError("\(handler.path): defaultDeadline must be positive, not \(deadline)")
        }
    }

    /// The paths of the registered operations.
    public var operations: [Resource] { handlers.values.map(\.path).sorted() }

    /// Jobs running now.
    public var runningJobs: Int { attempts.runningCount }

    /// Connects, resumes journalled conversations, then advertises and keeps advertising. Once
    /// stopped, a worker does not start again (`shutDown`): make a new one.
    public func start() async throws {
        guard !isStarted else {
            if isStopping { throw OwnedTasks.stopped }
            return
        }
        isStarted = true
        try await tasks.starting { try await serve() }
    }

    private func serve() async throws {
        await ProtocolEndpoint.install(on: client, inbox: inbox, performer: self)
        await client.respondToIQ(namespace: AttemptStatus.namespace, name: "status") { request in
            guard request.type == .get, let attempt = request.payload?[attribute: "token"].flatMap(JobToken.init), attempt.attempt != nil else {
                throw StanzaError.badRequest("a status probe is an IQ get with token='A:B'")
            }
            return IQAnswer(payload: AttemptStatus.answer(attempt, await self.status(of: attempt)))
        }
        let coordinatorPresence = await client.exchange(.presence, from: options.coordinator)
        let unfinished = try await unfinishedConversations()
        try await client.start()
        recover(unfinished)
        let events = await client.connectionEvents()
        tasks.spawn { await self.announce(events: events) }
        tasks.spawn { await self.watchCoordinator(coordinatorPresence) }
    }

    /// Withdraws the advertisement, stops running jobs and disconnects.
    /// Stops taking new work and lets running handlers finish (a deploy, SIGTERM): the
    /// advertisement is withdrawn, new `op`s are refused (the coordinator sends them elsewhere),
    /// and this returns when no handler runs any more or `timeout` passed (or the calling task
    /// is cancelled). ``stop()`` then cancels whatever still runs; a retryable job is retried
    /// elsewhere.
    public func drain(timeout: Duration) async {
        isDraining = true
        refresher?.cancel()
        guard await client.isConnected else {
            // Their ends could not reach the coordinator anyway: they are journalled and sent
            // at the next start.
            logger.info("draining: the server is gone; not waiting for the running jobs", metadata: ["running": "\(attempts.runningCount)"])
            return
        }
        await withdraw(within: .seconds(2))
        logger.info("draining: no new jobs; waiting for the running ones", metadata: ["running": "\(attempts.runningCount)", "timeout": "\(timeout)"])
        let deadline = clock.now + timeout
        while attempts.runningCount > 0, clock.now < deadline, !Task.isCancelled {
            try? await clock.sleep(for: .milliseconds(50))
        }
        if attempts.runningCount > 0 {
            let why = Task.isCancelled ? "drain cut short" : "drain timeout"
            logger.warning("\(why): cancelling the jobs still running", metadata: ["running": "\(attempts.runningCount)"])
        }
    }

    /// True once ``drain(timeout:)`` began.
    public private(set) var isDraining = false
    /// True once ``stop()`` began: a handler cancelled now was cut off by the stop.
    var isStopping = false
    /// True once the advertisement was withdrawn (or that was tried).
    var hasWithdrawn = false

    public func stop() async {
        isStopping = true
        refresher?.cancel()
        await withdraw(within: .seconds(2))
        await cancelRunning(within: .seconds(2))
        await tasks.closeAndWait()
        await client.stop()
    }

    /// Cancels the handlers still running and gives their ends up to `limit` to reach the
    /// coordinator (`worker-lost`, "the worker stopped ..."), so it moves their jobs on at once
    /// instead of after the lease.
    private func cancelRunning(within limit: Duration) async {
        let handles = attempts.handles
        guard !handles.isEmpty else { return }
        for task in handles { task.cancel() }
        // Whichever comes first: every handler's end delivered, or `limit` of real time (a stop
        // must end even on a test's manual clock that nobody moves on). Awaiting a task's value
        // does not heed cancellation, so the two race outside a task group.
        let first = FirstOfTwo()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let resumeOnce = { @Sendable in if first.take() { done.resume() } }
            Task {
                for task in handles { await task.value }
                resumeOnce()
            }
            Task {
                try? await Task.sleep(for: limit)
                resumeOnce()
            }
        }
    }

    /// Withdraws the advertisement (TTL 0), giving up after `limit`: a stop never waits on a
    /// server that is gone (the client would otherwise wait for its reconnection).
    private func withdraw(within limit: Duration) async {
        // Once: a drain withdrew already when the stop follows it.
        guard !hasWithdrawn else { return }
        hasWithdrawn = true
        guard await client.isConnected else { return }
        let requester = self.requester
        let withdrawal = advertisement(ttl: 0)
        let coordinator = options.coordinator
        let clock = self.clock
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await requester.perform(ServiceOperation.advertise, arguments: withdrawal, to: coordinator, timeout: limit) }
            group.addTask { try? await clock.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    var requester: Requester { Requester(client: client, clock: clock, inbox: inbox, ids: ids, answerTimeout: options.answerTimeout) }

    var delivery: Delivery {
        Delivery(client: client, clock: clock, answerTimeout: options.answerTimeout, giveUpAfter: options.deliveryGiveUp, absentPeer: .wait)
    }

    // MARK: - Advertising

    func advertisement(ttl: Int) -> [XElement] {
        let ad = Advertisement(
            operations: operations, resources: options.resources, ttl: ttl,
            retryable: handlers.values.filter(\.isRetryable).map(\.path).sorted(),
            capacity: options.maxConcurrentJobs, fastPath: fastPathOffer)
        return (try? TypedValueEncoder().encodeFields(ad)) ?? []
    }

    /// The fast-path budget offered, in whole milliseconds (nil: not offered).
    private var fastPathOffer: Int? {
        let milliseconds = options.fastPathBudget.components.seconds * 1000 + options.fastPathBudget.components.attoseconds / 1_000_000_000_000_000
        guard milliseconds >= 1 else { return nil }
        return Int(min(milliseconds, Int64(FastPath.maxBudgetMilliseconds)))
    }

    /// Sends directed presence and the advertisement at every (re)connection, and refreshes the
    /// advertisement at 0.9 × TTL (every 5 s while the coordinator does not answer).
    private func announce(events: AsyncStream<XMPPClient.ConnectionEvent>) async {
        // The stream starts with `.connected` when the link is up already.
        for await event in events {
            if case .connected = event { restartRefresh() }
        }
    }

    /// The coordinator came back (or went away): advertise now, and while it is away retry
    /// every second, so a restarted coordinator knows this worker at once.
    private func watchCoordinator(_ presence: AsyncStream<XElement>) async {
        for await stanza in presence {
            let type = stanza[attribute: "type"]
            guard type == nil || type == "unavailable" else { continue }
            let here = type == nil
            logger.info(here ? "coordinator is here; advertising" : "coordinator went away; advertising until it is back",
                        metadata: ["coordinator": "\(options.coordinator)"])
            // The coordinator left, or left and came back: an advertisement in flight went to a
            // process that is gone, and would hold the next one back until it timed out. Its
            // first presence after our start answers ours: what is in flight goes to it.
            let cameBack = here && coordinatorPresent == false
            let answersOurs = here && coordinatorPresent == nil
            coordinatorPresent = here
            if answersOurs && isAdvertising { continue }
            restartRefresh(cuttingOff: !here || cameBack)
        }
    }

    /// Advertises again now. An advertisement in flight is not cut off unless asked (the
    /// coordinator would answer into a closed conversation): the loop advertises once more
    /// right after it.
    private func restartRefresh(cuttingOff: Bool = false) {
        guard !isDraining else { return }
        if isAdvertising && !cuttingOff {
            advertiseAgain = true
            return
        }
        isAdvertising = false
        advertiseAgain = false
        // A coordinator that came back may have a new ACL: a refusal then is news again.
        if cuttingOff { advertiseRefusals = 0 }
        refresher?.cancel()
        refreshGeneration += 1
        let generation = refreshGeneration
        refresher = tasks.spawnCancellable { await self.refreshLoop(generation) }
    }

    /// Whether the refresh loop `generation` is the current one (a replaced loop may run on
    /// for a moment after its cancellation was asked for: it must not touch the state).
    private func isCurrentRefresh(_ generation: Int) -> Bool {
        generation == refreshGeneration && !Task.isCancelled
    }

    private func refreshLoop(_ generation: Int) async {
        let ttl = options.advertiseTTL
        while isCurrentRefresh(generation) {
            isAdvertising = true
            // The coordinator counts the TTL from when the advertisement reaches it, so the
            // next renewal counts from when it was sent, not from when the conversation ended.
            let sent = clock.now
            let result = await advertiseOnce(generation)
            // A replaced loop: the new one owns the flags.
            guard isCurrentRefresh(generation) else { return }
            isAdvertising = false
            if advertiseAgain {
                advertiseAgain = false
                continue
            }
            switch result {
            case .advertised: try? await clock.sleep(until: sent + ttl * 0.9)
            case .failed: try? await clock.sleep(for: .seconds(1))
            case .refused: try? await clock.sleep(for: Self.refusedRetryDelay(afterRefusals: advertiseRefusals))
            }
        }
    }

    enum AdvertiseResult { case advertised, failed, refused }

    /// The longest wait between two advertisements the coordinator refused.
    public static let maxRefusedRetryDelay: Duration = .seconds(60)

    /// After the coordinator refused this worker `refusals` times in a row (its ACL does not let
    /// it serve): 1, 2, 4 … 60 s. Only an operator can change that, and a restarted coordinator
    /// (whose presence comes back) is asked again at once.
    public static func refusedRetryDelay(afterRefusals refusals: Int) -> Duration {
        min(.seconds(1 << min(max(refusals - 1, 0), 6)), maxRefusedRetryDelay)
    }

    private func advertiseOnce(_ generation: Int) async -> AdvertiseResult {
        do {
            try await client.sendPresence(to: options.coordinator)
            let seconds = Int(options.advertiseTTL.components.seconds)
            _ = try await requester.perform(
                ServiceOperation.advertise, arguments: advertisement(ttl: seconds), to: options.coordinator, timeout: options.answerTimeout * 3)
            guard isCurrentRefresh(generation) else { return .failed }
            logger.debug("advertised", metadata: ["operations": "\(operations.map(\.path))"])
            if advertiseFailures > 0 { logger.info("advertised again after \(advertiseFailures) failed tries") }
            advertiseFailures = 0
            advertiseRefusals = 0
            return .advertised
        } catch where !isCurrentRefresh(generation) {
            return .failed  // cut off by a new advertising loop, on purpose
        } catch is CancellationError {
            return .failed
        } catch let error as VertebraError where error.code == .notAuthorized {
            advertiseFailures += 1
            advertiseRefusals += 1
            let delay = Self.refusedRetryDelay(afterRefusals: advertiseRefusals)
            // Once at error level (an operator must act); the retries at debug.
            logger.log(level: advertiseRefusals == 1 ? .error : .debug,
                       "the coordinator refuses this worker (its ACL needs a 'serve' rule for it); asking again with backoff up to \(Self.maxRefusedRetryDelay)",
                       metadata: ["coordinator": "\(options.coordinator)", "error": "\(error)", "retry_in": "\(delay)"])
            return .refused
        } catch {
            advertiseFailures += 1
            advertiseRefusals = 0
            // Once per outage at warning level; the retries every second at debug.
            logger.log(level: advertiseFailures == 1 ? .warning : .debug, "could not advertise to the coordinator; retrying", metadata: [
                "coordinator": "\(options.coordinator)", "error": "\(error)"])
            return .failed
        }
    }

    // MARK: - Authorization

    func noteJournalFailure(_ error: any Error, _ message: String, job: String) {
        journalFailures += 1
        logger.error("\(message)", metadata: ["job": "\(job)", "error": "\(error)", "journal": "\(journal.path)"])
    }

    func authorize(_ peer: JID, _ path: Resource) async throws {
        if peer.bare == options.coordinator.bare || options.authorizedRequesters.contains(where: { $0.bare == peer.bare }) {
            return
        }
        let key = "\(peer.bare)|\(path)"
        // Only operations served here are worth a question (and a cache entry).
        if options.askCoordinatorToAuthorize, handlers[path.path] != nil {
            if let known = authorizations.answer(key, now: clock.now) {
                if known { return }
            } else {
                let request = AuthorizeRequest(from: peer.description, operation: path)
                let arguments = (try? TypedValueEncoder().encodeFields(request)) ?? []
                let values = try? await requester.perform(ServiceOperation.authorize, arguments: arguments, to: options.coordinator)
                let answer = values.flatMap { try? TypedValueDecoder().decodeFields(String.self, from: $0) }
                if let answer { authorizations.remember(key, allowed: answer == AuthorizeAnswer.authorized, now: clock.now) }
                if answer == AuthorizeAnswer.authorized { return }
            }
        }
        throw VertebraErrors.notAuthorized("\(peer.bare) may not dispatch \(path) to this worker")
    }
}

/// True for the first ``take()`` only.
private final class FirstOfTwo: Sendable {
    private let taken = Atomic(false)

    func take() -> Bool { !taken.exchange(true, ordering: .acquiringAndReleasing) }
}
