import CoreMetrics
import Foundation
import Logging
import Natter
import Tracing
import VertebraJournal
import VertebraXML

/// Publishes operations to workers and follows every conversation in its journal.
///
/// ```swift
/// let coordinator = Coordinator(client: any StanzaTransport(configuration: config), journal: journal)
/// try await coordinator.start()     // connects, resumes unfinished jobs, serves /security/*
/// let size = try await coordinator.dispatch(Resize(source: "/img/a.png", width: 640))
/// ```
///
/// It is also a performer: an authorized submitter (`vertebra dispatch`, a Vertebra 0.4
/// client) sends it an `op`; it journals the job, forwards it to worker(s) and relays
/// `data`/`final`/`error` back.
public actor Coordinator: PerformerRole {
    public struct Options: Sendable {
        /// Who may dispatch what over XMPP (the coordinator's own account always may).
        public var accessList: AccessList
        /// How long a worker may be gone (no presence) before its attempt is declared lost.
        public var lease: Duration
        /// Attempts per retryable job before it fails.
        public var maxAttempts: Int
        /// First retry delay; doubles (with jitter) up to `maxRetryDelay`.
        public var retryDelay: Duration
        public var maxRetryDelay: Duration
        /// How long a job waits when no live worker offers its operation at all (jobs for which
        /// capable workers exist but are busy wait, queued, as long as it takes).
        public var workerWait: Duration
        /// How long one `op` waits for a worker's answer.
        public var answerTimeout: Duration
        /// How long results are retried to a submitter that does not answer.
        public var relayGiveUp: Duration
        /// How long an attempt may go without a word from its (present) worker before the
        /// worker is asked for the attempt's status; an attempt it does not confirm running is
        /// lost (`worker-silent`): retried when retryable, failed otherwise.
        public var silenceTimeout: Duration
        /// Use the fast path (``FastPath``) with workers that offer it.
        public var fastPath = true
        /// Where time is read and slept on (a ``ManualClock`` in tests).
        public var clock: any RuntimeClock = SystemClock()
        /// Where metrics go (README, "Operating Vertebra"): the process's swift-metrics backend
        /// unless set (a test's own).
        public var metrics: any MetricsFactory = MetricsSystem.factory
        /// Periodic jobs (``ScheduleEntry``), journalled so that a restart neither loses nor
        /// double-fires a run.
        public var schedule: [ScheduleEntry] = []
        /// The wall clock the schedule and delayed jobs are read against (a test's own).
        public var wallClock: @Sendable () -> Date = { Date() }
        /// Where spans go (`vertebra.job`, `vertebra.attempt`): the process's swift-distributed-
        /// tracing backend unless set (a test's own).
        public var tracer: any Tracer = InstrumentationSystem.tracer

        public init(
            accessList: AccessList = AccessList(), lease: Duration = .seconds(10), maxAttempts: Int = 3,
            retryDelay: Duration = .milliseconds(500), maxRetryDelay: Duration = .seconds(30),
            workerWait: Duration = .seconds(30), answerTimeout: Duration = .seconds(10), relayGiveUp: Duration = .seconds(60),
            silenceTimeout: Duration = .seconds(120)
        ) {
            self.accessList = accessList
            self.lease = lease
            self.maxAttempts = maxAttempts
            self.retryDelay = retryDelay
            self.maxRetryDelay = maxRetryDelay
            self.workerWait = workerWait
            self.answerTimeout = answerTimeout
            self.relayGiveUp = relayGiveUp
            self.silenceTimeout = silenceTimeout
        }
    }

    /// A job the coordinator is running.
    struct LiveJob {
        let token: String
        let path: Resource
        let op: XElement
        let scope: Scope
        let targets: [JID]
        let deadline: ContinuousClock.Instant?
        let retryable: Bool
        var subscribers: [AsyncStream<JobEvent>.Continuation] = []
        /// Submissions that followed this keyed job, by their own conversation token `A:B`: a
        /// cancel from one ends its following, not the job.
        var followers: [String: AsyncStream<JobEvent>.Continuation] = [:]
        /// Workers with an attempt in progress.
        var workers: Set<JID> = []
        var cancelReason: String?
        /// `running` was journalled (or is being journalled) for this job.
        var markedRunning = false
        /// The job's state as the journal holds it once queued writes commit: the hot path
        /// reads no journal.
        var journalState: JobState
        /// Attempts the journal counted before this coordinator took the job (recovery).
        let attemptsBefore: Int
        /// When this coordinator took the job (for its duration metric).
        var since: ContinuousClock.Instant
        /// Its first `op` was sent (the queue wait is measured up to it).
        var wasDispatched = false
        /// A delayed job's first attempt waits for this.
        var notBefore: ContinuousClock.Instant?
        /// Its unique key: later submissions with the key follow this job.
        var key: String?
        /// A keyed job's events so far, for subscribers that join later.
        var history: [JobEvent] = []
        /// The job's span (`vertebra.job`), ended with the job.
        var span: (any Span)?
    }

    public nonisolated let client: any StanzaTransport
    public nonisolated let options: Options
    nonisolated var clock: any RuntimeClock { options.clock }
    let journal: ExchangeJournal
    let logger: Logger
    let ids = StanzaIDs()
    let inbox: RequesterInbox
    var registry = WorkerRegistry()
    var live: [String: LiveJob] = [:]
    /// Unfinished keyed jobs by key.
    var keyedJobs: [String: String] = [:]
    /// Every task the coordinator starts (presence watch, jobs, relays, watchers): stopped
    /// and waited for by ``stop()``.
    let tasks = OwnedTasks()
    var changeWaiters: [String: CheckedContinuation<Void, Never>] = [:]
    /// Delayed jobs waiting for their start, by token: a cancel or the stop wakes one at once.
    var startWaiters: [String: CheckedContinuation<Void, Never>] = [:]
    /// `single` jobs waiting for a worker slot, and how each is woken.
    var slotQueue = SlotQueue()
    var slotWaiters: [String: CheckedContinuation<SlotQueue.Outcome, Never>] = [:]
    /// While the start resumes the journal's jobs, no slot is given out: every resumed attempt
    /// must be counted on its worker first.
    var holdingSlots = false
    /// The operations last refused to each worker by the ACL (logged once, not per retry).
    var refusedServing: [String: [String]] = [:]
    /// Whether the queue's sweeper runs (Coordinator+Queue).
    var isSweeping = false
    /// The jobs each watched worker runs attempts of, and the workers with a watcher
    /// (Coordinator+Watch).
    var watchedAttempts: [JID: Set<String>] = [:]
    var workerWatchers: Set<JID> = []
    /// When each running attempt ("A|worker") last heard from its worker.
    var lastHeard: [String: ContinuousClock.Instant] = [:]
    /// Set by ``stop()``: what is unfinished stays unfinished in the journal.
    var isStopping = false
    /// Journal writes that failed (each logged at error level).
    public internal(set) var journalFailures = 0
    /// The attempt token `A:B` of each running attempt, by "A|worker".
    var attemptTokens: [String: JobToken] = [:]
    var isStarted = false
    /// When the coordinator started: for `workerWait` after it, jobs wait for workers to
    /// (re)advertise; later, a job for an operation nobody offers fails at once.
    var startedAt = ContinuousClock.now
    let metrics: CoordinatorMetrics

    public init(client: any StanzaTransport, journal: ExchangeJournal, options: Options = Options(), logger: Logger = Logger(label: "vertebra.coordinator")) {
        self.client = client
        self.journal = journal
        self.options = options
        self.logger = logger
        self.inbox = RequesterInbox(journal: journal)
        self.metrics = CoordinatorMetrics(factory: options.metrics)
    }

    /// Connects, resumes every unfinished job of the journal, and serves. Once stopped, a
    /// coordinator does not start again (`shutDown`): make a new one.
    public func start() async throws {
        guard !isStarted else {
            if isStopping { throw OwnedTasks.stopped }
            return
        }
        isStarted = true
        try await tasks.starting { try await serve() }
    }

    private func serve() async throws {
        startedAt = clock.now
        await inbox.setRecovering(true)
        await ProtocolEndpoint.install(on: client, inbox: inbox, performer: self)
        await client.respondToIQ(namespace: Batch.namespace, name: "batch") { request in
            IQAnswer(payload: try await self.receiveBatch(request))
        }
        let presence = await client.exchange(.presence)
        tasks.spawn { await self.watchPresence(presence) }
        try await client.start()
        let known = try await knownWorkers()
        tasks.spawn { await self.probe(known) }
        try await recover()
        await inbox.setRecovering(false)
        if !options.schedule.isEmpty { tasks.spawn { await self.runSchedule() } }
    }

    /// Stops serving and disconnects, once every task it started has ended. Unfinished jobs
    /// stay in the journal and resume at the next start.
    public func stop() async {
        isStopping = true
        withdrawAllFromQueue()
        wakeChangeWaiters()
        for job in live.values { for subscriber in job.subscribers { subscriber.finish() } }
        await tasks.closeAndWait()
        await client.stop()
    }

    /// Live workers and what they offer.
    public var workers: [WorkerInfo] {
        let now = clock.now
        return registry.entries.values.filter { $0.expires > now }.map {
            WorkerInfo(jid: $0.jid, operations: $0.operations, outstanding: $0.outstanding, capacity: $0.capacity)
        }.sorted { $0.jid.description < $1.jid.description }
    }

    /// Waits until at least `count` workers offering `operation` are registered.
    public func waitForWorkers(_ count: Int, offering operation: Resource, timeout: Duration = .seconds(30)) async throws {
        let end = clock.now + timeout
        while registry.capable(of: operation, now: clock.now).count < count {
            guard clock.now < end else {
                throw VertebraError(.noWorker, "fewer than \(count) workers offer \(operation) after \(timeout)")
            }
            try await clock.sleep(for: .milliseconds(50))
        }
    }

    // MARK: - Presence

    private func watchPresence(_ stream: AsyncStream<XElement>) async {
        for await presence in stream {
            guard let from = presence.fromJID, from.isFull else { continue }
            if presence[attribute: "type"] == "unavailable" {
                if registry.entry(from) != nil {
                    logger.info("worker went away", metadata: ["worker": "\(from)"])
                    await forget(from)
                }
                registry.remove(from)
                await inbox.injectAll(.peerGone, peer: from)
            } else if presence[attribute: "type"] == nil {
                await inbox.injectAll(.peerBack, peer: from)
            }
        }
    }

    // MARK: - Performer role: ops from submitters and service operations

    func receiveOp(_ message: ProtocolMessage, payload: XElement, request: IQ, from peer: JID) async throws -> IQAnswer {
        let (path, token, scope, arguments) = try message.opRequest()
        if path.components.first == "security" {
            return try await serveService(path, token: token, arguments: arguments, from: peer)
        }
        if let replay = try await replayAnswer(request: request, job: token.job, peer: peer) { return replay }
        guard peer.bare == client.jid.bare || options.accessList.allows(peer, path) else {
            logger.notice("refused an unauthorized submitter", metadata: ["submitter": "\(peer)", "operation": "\(path)"])
            throw VertebraErrors.notAuthorized("\(peer.bare) may not dispatch \(path) (see the coordinator's ACL)")
        }
        let extensions = try DispatchExtension.parse(payload)
        guard let attempt = token.newAttempt() else { throw VertebraErrors.internalError("no random bytes") }
        let accepted = ProtocolMessage.accepted(attempt).element
        let spec = JobSpec(submittedBy: peer, token: token, path: path, scope: scope, arguments: arguments, extensions: extensions)
        let relay = RelaySpec(
            attempt: attempt, peer: peer, iqID: request.id, op: payload,
            answer: JournalText.text(request.result(payload: accepted).element), detached: extensions.detach)
        if let key = extensions.key, let holder = keyedJobs[key], live[holder] != nil {
            return try await follow(holder, key: key, relay: relay, request: request)
        }
        let handle: (JobHandle, Int64?)
        do {
            handle = try await begin(spec, relay: relay)
        } catch let error as JournalError where error.code == .duplicateJob {
            throw StanzaError(type: .cancel, condition: .conflict, text: "job \(token.job) already exists")
        } catch let error as JournalError where error.code == .duplicateKey {
            guard let key = extensions.key, let holder = await keyHolder(key) else {
                throw StanzaError(type: .wait, condition: .conflict, text: "the job holding key '\(extensions.key ?? "")' is not ready; try again")
            }
            return try await follow(holder, key: key, relay: relay, request: request)
        } catch let error as VertebraError {
            throw error.code == .notAuthorized ? VertebraErrors.notAuthorized(error.message) : StanzaError.badRequest(error.message)
        }
        guard let conversation = handle.1 else { throw VertebraErrors.internalError("no relay conversation") }
        if relay.detached { return IQAnswer(payload: accepted) }
        let events = handle.0.events
        return IQAnswer(payload: accepted) { [tasks] in
            tasks.spawn { await self.relay(events, attempt: attempt, to: peer, conversation: conversation, scope: spec.scope) }
        }
    }

    /// A submission whose unique key an unfinished job holds: the submitter follows that job
    /// (its conversation is journalled under it) and learns its id from the answer.
    private func follow(_ holder: String, key: String, relay: RelaySpec, request: IQ) async throws -> IQAnswer {
        // A detached submission only learns the job's id: it is not a follower.
        let handle = relay.detached ? nil : subscribe(holder, follower: relay.attempt.description)
        guard relay.detached || handle != nil, let job = live[holder] else {
            throw StanzaError(type: .wait, condition: .conflict, text: "the job holding key '\(key)' has just ended; submit again")
        }
        let accepted = ProtocolMessage.accepted(relay.attempt).element.appending(DispatchExtension.followed(holder))
        var submission = relay
        submission.answer = JournalText.text(request.result(payload: accepted).element)
        let records = submission.records(job: holder)
        var conversation: Int64?
        do {
            for case .conversation(let id) in try await journal.write(records) { conversation = id }
        } catch {
            throw VertebraErrors.internalError("could not journal the submission: \(error)")
        }
        guard let conversation else { throw VertebraErrors.internalError("no relay conversation") }
        logger.info("submission follows the job holding its key", metadata: ["job": "\(holder)", "key": "\(key)", "submitter": "\(relay.peer)"])
        guard let handle else { return IQAnswer(payload: accepted) }
        return IQAnswer(payload: accepted) { [tasks] in
            tasks.spawn { await self.relay(handle.events, attempt: relay.attempt, to: relay.peer, conversation: conversation, scope: job.scope) }
        }
    }

    /// A batch of jobs from a submitter (``Batch``): every op allowed by the ACL and valid, or
    /// none is taken; all journalled in one transaction before the answer.
    func receiveBatch(_ request: IQ) async throws -> XElement {
        guard request.type == .set, let payload = request.payload, let peer = request.from else {
            throw StanzaError.badRequest("a batch must be an IQ set from a full JID")
        }
        var specs: [JobSpec] = []
        for (message, element) in try Batch.ops(in: payload) {
            guard case .op(let path, let token, let scope, let arguments) = message, path.components.first != "security" else {
                throw StanzaError.badRequest("a batch carries jobs, not service operations")
            }
            guard peer.bare == client.jid.bare || options.accessList.allows(peer, path) else {
                logger.notice("refused an unauthorized batch", metadata: ["submitter": "\(peer)", "operation": "\(path)"])
                throw VertebraErrors.notAuthorized("\(peer.bare) may not dispatch \(path) (see the coordinator's ACL)")
            }
            let extensions = try DispatchExtension.parse(element)
            if scope == .direct && extensions.targets.isEmpty { throw StanzaError.badRequest("scope direct needs at least one target JID") }
            specs.append(JobSpec(submittedBy: peer, token: token, path: path, scope: scope, arguments: arguments, extensions: extensions))
        }
        let tokens = specs.map(\.token)
        if try await isRepeat(of: tokens, from: peer) { return Batch.answer(tokens) }
        do {
            try await beginMany(specs, followed: false)
        } catch let error as JournalError where error.code == .duplicateJob {
            throw StanzaError(type: .cancel, condition: .conflict, text: "a job of this batch already exists")
        } catch let error as JournalError where error.code == .duplicateKey {
            throw StanzaError(type: .cancel, condition: .conflict, text: "a job of this batch has the key of an unfinished job: \(error.message)")
        } catch let error as VertebraError {
            throw error.code == .notAuthorized ? VertebraErrors.notAuthorized(error.message) : StanzaError.badRequest(error.message)
        }
        logger.info("accepted a batch", metadata: ["submitter": "\(peer)", "jobs": "\(specs.count)"])
        return Batch.answer(tokens)
    }

    /// Whether every job of a batch was already journalled for `peer` (its retry after a lost
    /// answer): then it is answered again and nothing starts twice.
    private func isRepeat(of tokens: [String], from peer: JID) async throws -> Bool {
        for token in tokens {
            guard let job = try await journal.job(token), job.submitter == peer.description else { return false }
        }
        return true
    }

    func receiveCancel(_ token: JobToken, request: IQ, from peer: JID) async throws {
        // A submission that followed a keyed job names its own conversation, not the job.
        if live[token.job] == nil, let following = try? await journal.conversation(token: token.description) {
            return try stopFollowing(following, by: peer)
        }
        guard let job = live[token.job] else { throw VertebraErrors.unknownConversation(token.description) }
        let conversations: [Conversation]
        do { conversations = try await journal.conversations(ofJob: job.token) } catch {
            noteJournalFailure(error, "could not read a job's conversations to check a cancel", job: token.job)
            throw VertebraErrors.internalError("the coordinator's journal could not be read; try again")
        }
        let isSubmitter = conversations.contains { $0.role == .performer && $0.peer == peer.description }
        guard isSubmitter || peer.bare == client.jid.bare else {
            throw VertebraErrors.notAuthorized("only the submitter may cancel job \(job.token)")
        }
        await cancel(job: job.token, reason: "cancelled by \(peer)")
    }

    /// A follower's cancel: its relay ends `cancelled`; the job goes on for the submission that
    /// started it (and any other follower).
    private func stopFollowing(_ following: Conversation, by peer: JID) throws {
        guard following.peer == peer.description || peer.bare == client.jid.bare else {
            throw VertebraErrors.notAuthorized("only the submitter may cancel its submission \(following.token ?? "")")
        }
        guard let token = following.token, let relay = live[following.job]?.followers.removeValue(forKey: token) else {
            throw VertebraErrors.unknownConversation("\(following.token ?? "") (job \(following.job) is not followed here)")
        }
        logger.info("a submission stops following a keyed job; the job goes on", metadata: [
            "job": "\(following.job)", "submitter": "\(peer)"])
        let reason = "stopped following job \(following.job), which goes on for the submission that started it"
        relay.yield(.failed(VertebraError(.cancelled, reason)))
        relay.finish()
    }

    /// Keeps only the operations the ACL lets `worker` serve; refuses an advertisement that
    /// keeps none (a withdrawal is always accepted).
    private func authorizeServing(_ worker: JID, _ ad: inout Advertisement) throws {
        guard ad.ttl > 0, !mayServeEverything(worker) else { return }
        let allowed = ad.operations.filter { options.accessList.allowsServing(worker, $0) }
        let refused = ad.operations.filter { !allowed.contains($0) }
        // Once per worker and refusal: a refused worker keeps asking (backing off to a minute).
        let paths = refused.map(\.path)
        if !refused.isEmpty, refusedServing[worker.description] != paths {
            if refusedServing.count >= 1_000 { refusedServing.removeAll() }
            refusedServing[worker.description] = paths
            logger.notice("refused operations a worker may not serve (logged once until they change)", metadata: [
                "worker": "\(worker)", "refused": "\(paths)"])
        }
        guard !allowed.isEmpty else {
            throw VertebraErrors.notAuthorized(
                "\(worker.bare) may not serve \(refused.map(\.path).joined(separator: " ")) (add a 'serve' rule to the coordinator's ACL)")
        }
        ad.operations = allowed
        ad.retryable = ad.retryable?.filter { allowed.contains($0) }
    }

    func mayServeEverything(_ worker: JID) -> Bool { worker.bare == client.jid.bare }

    /// The live workers, by JID.
    /// The live workers as `vertebra workers` and the web view show them.
    public func roster() -> [WorkerStatus] {
        let now = clock.now
        return registry.entries.values.filter { $0.expires > now }.sorted { $0.jid.description < $1.jid.description }.map {
            WorkerStatus(
                jid: $0.jid.description, operations: $0.operations.sorted(), outstanding: $0.outstanding, capacity: $0.capacity,
                advertisedSecondsAgo: Int((now - $0.advertised).components.seconds),
                expiresInSeconds: Int(($0.expires - now).components.seconds))
        }
    }

    /// A repeated `op` from a submitter: answer as before (the relay goes on by itself).
    private func replayAnswer(request: IQ, job: String, peer: JID) async throws -> IQAnswer? {
        var answerText: String?
        if let previous = try await journal.inboundStanza(peer: peer.description, iqID: request.id) {
            // The same id with another job is no repeat: answering it as before would
            // acknowledge a job that never runs.
            if let earlier = Self.jobOfOp(previous.body), earlier != job {
                throw StanzaError(
                    type: .cancel, condition: .conflict,
                    text: "IQ id '\(request.id)' already carried job \(earlier) from \(peer); send this op with a new id")
            }
            answerText = previous.answer
        } else if let replay = try await journal.opReplay(job: job, peer: peer.description) {
            answerText = replay.op.answer
        } else {
            return nil
        }
        guard let text = answerText, let payload = JournalText.element(text).flatMap(IQ.init)?.payload else {
            throw VertebraErrors.internalError("the journalled answer to this op is unreadable")
        }
        return IQAnswer(payload: payload)
    }

    /// The job token of a journalled `op` (nil when the text is not one).
    private static func jobOfOp(_ body: String) -> String? {
        guard let element = JournalText.element(body), case .op(_, let token, _, _)? = try? ProtocolMessage(element) else { return nil }
        return token.job
    }

    private func serveService(_ path: Resource, token: JobToken, arguments: [XElement], from peer: JID) async throws -> IQAnswer {
        // Discovery and authorization answer only accounts the ACL knows (each answer starts a
        // delivery the coordinator keeps retrying; strangers get none).
        if path != ServiceOperation.advertise, !mayServeEverything(peer), !options.accessList.mentions(peer) {
            throw VertebraErrors.notAuthorized("\(peer.bare) is not in the coordinator's ACL")
        }
        let values: [XElement]
        let decoder = TypedValueDecoder()
        let encoder = TypedValueEncoder()
        do {
            switch path {
            case ServiceOperation.advertise:
                var ad = try decoder.decodeFields(Advertisement.self, from: arguments)
                try authorizeServing(peer, &ad)
                guard (0...Advertisement.maxTTL).contains(ad.ttl), (ad.capacity ?? 1) >= 1, (ad.capacity ?? 1) <= Advertisement.maxCapacity,
                    (1...FastPath.maxBudgetMilliseconds).contains(ad.fastPath ?? 1)
                else {
                    throw StanzaError.badRequest(
                        "advertisement out of range: ttl 0...\(Advertisement.maxTTL), capacity 1...\(Advertisement.maxCapacity), fastPath 1...\(FastPath.maxBudgetMilliseconds)")
                }
                let isNew = registry.entry(peer) == nil
                registry.advertise(peer, ad, now: clock.now)
                await remember(peer, ad)
                // Directed presence: the server tells this worker when we go away, so it
                // re-advertises as soon as we are back.
                if isNew && ad.ttl > 0 { try? await client.sendPresence(to: peer) }
                notifyChange()
                logger.info(ad.ttl > 0 ? "worker advertised" : "worker withdrew", metadata: [
                    "worker": "\(peer)", "operations": "\(ad.operations.map(\.path))"])
                values = []
            case ServiceOperation.discover:
                let request = try decoder.decodeFields(DiscoverRequest.self, from: arguments)
                let jids = registry.capable(of: request.job.operation, resources: request.job.resources ?? [:], now: clock.now)
                values = try encoder.encodeFields(DiscoverResult(jids: jids.map(\.jid.description)))
            case ServiceOperation.workers:
                guard mayServeEverything(peer) || options.accessList.allows(peer, path) else {
                    throw VertebraErrors.notAuthorized("\(peer.bare) may not list the workers (an ACL rule for \(path) is needed)")
                }
                values = try encoder.encodeFields(WorkerRoster(workers: roster()))
            case ServiceOperation.cancelJob, ServiceOperation.retryJob:
                let request = try decoder.decodeFields(JobActionRequest.self, from: arguments)
                let result = try await actOnJob(path, id: request.job, by: peer)
                values = try encoder.encodeFields(result)
            case ServiceOperation.authorize:
                let request = try decoder.decodeFields(AuthorizeRequest.self, from: arguments)
                guard let submitter = JID(request.from) else { throw StanzaError.badRequest("'\(request.from)' is not a JID") }
                let allowed = submitter.bare == client.jid.bare || options.accessList.allows(submitter, request.operation)
                values = try encoder.encodeFields(allowed ? AuthorizeAnswer.authorized : AuthorizeAnswer.notAuthorized)
            default:
                throw VertebraErrors.unknownOperation(path.path)
            }
        } catch let error as StanzaError {
            throw error
        } catch {
            throw StanzaError.badRequest("arguments of \(path) do not decode: \(error)")
        }
        guard let attempt = token.newAttempt() else { throw VertebraErrors.internalError("no random bytes") }
        let out = OutboundConversation(
            token: attempt, peer: peer, record: nil,
            delivery: Delivery(client: client, clock: clock, answerTimeout: .seconds(5), giveUpAfter: .seconds(15)), ids: ids, logger: logger)
        return IQAnswer(payload: ProtocolMessage.accepted(attempt).element) {
            try? await out.send(.ack(attempt))
            if !values.isEmpty { try? await out.send(.data(attempt, values: values)) }
            try? await out.send(.final(attempt, values: []))
        }
    }
}

/// A worker as the coordinator sees it.
public struct WorkerInfo: Sendable, Hashable {
    public let jid: JID
    public let operations: [Resource]
    public let outstanding: Int
    public let capacity: Int
}
