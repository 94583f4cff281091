import Foundation
import Logging
import Natter
import Tracing
import VertebraXML

/// Dispatches jobs through a coordinator over XMPP, as `vertebra dispatch` does (and as any
/// Vertebra 0.4 client would): sends the `op`, answers the coordinator's relay.
public actor Submitter {
    /// What the submitter hears about its job.
    public enum Event: Sendable {
        /// The coordinator took the job.
        case accepted
        case progress(JobProgress)
        /// One chunk of results (`all`/`direct`: led by `<string name='worker'>`).
        case data([XElement])
        case done
        case failed(VertebraError)
    }

    /// A job the coordinator accepted.
    public struct Job: Sendable {
        /// The job id (token `A`), as `vertebra jobs` shows it.
        public let id: String
        /// This conversation with the coordinator (`A:B`).
        public let attempt: JobToken
        public let events: AsyncStream<Event>
    }

    public nonisolated let client: any StanzaTransport
    public nonisolated let coordinator: JID
    /// How long one try of a request waits for the coordinator's answer (it is tried again,
    /// with the same IQ id, until twice this has passed).
    public nonisolated let answerTimeout: Duration
    private let inbox = RequesterInbox(journal: nil)
    private let ids = StanzaIDs()

    /// Where the `vertebra.submit` spans go; the job's spans on the coordinator and the worker
    /// join the same trace.
    public nonisolated let tracer: any Tracer

    public init(client: any StanzaTransport, coordinator: JID, answerTimeout: Duration = .seconds(15), tracer: any Tracer = InstrumentationSystem.tracer) {
        self.client = client
        self.coordinator = coordinator
        self.answerTimeout = answerTimeout
        self.tracer = tracer
    }

    /// Jobs followed now, by a number of their own: told when the connection ends for good.
    private var followed: [Int: AsyncStream<Event>.Continuation] = [:]
    private var nextFollowed = 0
    /// Set once the connection ended for good (nothing more can arrive).
    private var connectionEnd: VertebraError?

    /// The tasks it starts (the connection's watch, one per followed job): ``stop()`` waits
    /// for them.
    private let tasks = OwnedTasks()

    /// Connects.
    public func start() async throws {
        try await tasks.starting {
            await ProtocolEndpoint.install(on: client, inbox: inbox, performer: nil)
            try await client.start()
            let events = await client.connectionEvents()
            tasks.spawn { await self.watch(events) }
        }
    }

    /// A connection that ends for good (stopped, or replaced by another session with the same
    /// resource) ends every followed job's events with `failed` (code `unreachable`): the
    /// coordinator's relay can no longer reach this submitter. The jobs themselves go on.
    private func watch(_ events: AsyncStream<XMPPClient.ConnectionEvent>) async {
        var reason = "the connection ended"
        for await event in events {
            switch event {
            case .disconnected(let why): reason = why
            case .stopped:
                return connectionEnded(reason)
            case .connected: continue
            }
        }
    }

    private func connectionEnded(_ reason: String) {
        guard connectionEnd == nil else { return }
        let end = VertebraError(.unreachable, "lost the connection to the server while following the job (\(reason)); the job goes on")
        connectionEnd = end
        for continuation in followed.values {
            continuation.yield(.failed(end))
            continuation.finish()
        }
        followed.removeAll()
    }

    /// Disconnects, once the tasks it started have ended. Jobs still followed end with
    /// `failed` (code `unreachable`); they go on at the coordinator.
    public func stop() async {
        await client.stop()
        connectionEnded("this submitter stopped")
        await tasks.closeAndWait()
    }

    /// Sends an `op`; returns once the coordinator accepted it (or throws why not).
    ///
    /// With `key`, while a job submitted with that key is unfinished the coordinator makes this
    /// submission follow it: ``Job/id`` is that job's id and the events are its events. With
    /// `notBefore`, the job starts at that time. With `detach`, this submitter will not follow
    /// the job: the coordinator relays nothing after accepting it, and the events end with
    /// `accepted` (its progress and end are in the coordinator's journal, `vertebra jobs`).
    public func submit(
        _ path: Resource, arguments: [XElement], scope: Scope = .single, to targets: [JID] = [],
        deadline: Duration? = nil, retryable: Bool? = nil, key: String? = nil, notBefore: Date? = nil, detach: Bool = false
    ) async throws -> Job {
        if let key, let problem = DispatchExtension.keyProblem(key) { throw VertebraError(.badRequest, problem) }
        let requester = Requester(client: client, inbox: inbox, ids: ids, answerTimeout: answerTimeout)
        let span = tracer.startSpan("vertebra.submit \(path.path)", context: InstrumentationContext.current ?? .topLevel, ofKind: .producer)
        defer { span.end() }
        let trace = TraceCarrier(span.context, tracer: tracer)
        let extra = DispatchExtension.element(
            targets: targets, deadline: deadline, retryable: retryable, key: key, notBefore: notBefore, trace: trace, detach: detach)
            .map { [$0] } ?? []
        let started: Requester.Started
        do {
            started = try await requester.start(path, arguments: arguments, scope: scope, to: coordinator, extra: extra)
        } catch {
            span.fail("\(error)")
            throw error
        }
        span.attributes["vertebra.job.id"] = started.followed ?? started.token.job
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        continuation.yield(.accepted)
        if detach {
            // Nothing follows the answer (a 0.4 coordinator, which relays anyway, is not heard).
            continuation.finish()
            await inbox.close(job: started.token.job, peer: coordinator)
            return Job(id: started.followed ?? started.token.job, attempt: started.token, events: stream)
        }
        if let connectionEnd {
            continuation.yield(.failed(connectionEnd))
            continuation.finish()
            return Job(id: started.followed ?? started.token.job, attempt: started.token, events: stream)
        }
        nextFollowed += 1
        let number = nextFollowed
        followed[number] = continuation
        let spawned = tasks.spawn {
            await self.follow(started, into: continuation)
            await self.unfollow(number)
        }
        if !spawned { connectionEnded("this submitter stopped") }
        return Job(id: started.followed ?? started.token.job, attempt: started.token, events: stream)
    }

    /// Relays the coordinator's messages about `started` as events, until its end.
    private func follow(_ started: Requester.Started, into continuation: AsyncStream<Event>.Continuation) async {
        defer { continuation.finish() }
        for await event in started.events {
            guard case .message(let message) = event else { continue }
            let (events, ends) = JobRelay.events(for: message)
            for event in events { continuation.yield(event) }
            if ends {
                await inbox.close(job: started.token.job, peer: coordinator)
                return
            }
        }
    }

    private func unfollow(_ number: Int) { followed[number] = nil }

    /// Submits `jobs` as one batch (``Batch``): the coordinator journals them in one transaction.
    /// Returns the job ids, in order, once all were accepted; their results are in the
    /// coordinator's journal (`vertebra jobs show ID`), not sent here.
    public func submitBatch(_ jobs: [Batch.Job]) async throws -> [String] {
        guard (1...Batch.maxJobs).contains(jobs.count) else {
            throw VertebraError(.badRequest, "a batch holds 1 to \(Batch.maxJobs) jobs, not \(jobs.count)")
        }
        var tokens: [(JobToken, Batch.Job)] = []
        for job in jobs {
            guard let token = JobToken.newJob() else { throw VertebraError(.unreachable, "no random bytes for a job token") }
            tokens.append((token, job))
        }
        // Retried with the same IQ id and tokens: the coordinator answers a repeat as before.
        let delivery = Delivery(client: client, answerTimeout: answerTimeout, giveUpAfter: answerTimeout * 2, absentPeer: .fail)
        do {
            let answer = try await delivery.deliver(IQ(type: .set, id: ids.next(), to: coordinator, payload: Batch.request(tokens)))
            guard let ids = Batch.tokens(in: answer.payload, count: jobs.count) else {
                throw VertebraError(.unreachable, "\(coordinator) answered the batch without its \(jobs.count) job ids")
            }
            return ids
        } catch {
            if let stanzaError = error.peerStanzaError { throw VertebraError.from(stanzaError, peer: coordinator.description) }
            throw error
        }
    }

    /// The coordinator's live workers (`/security/workers`; the ACL must cover that path for
    /// this account).
    public func workers() async throws -> [WorkerStatus] {
        let requester = Requester(client: client, inbox: inbox, ids: ids, answerTimeout: answerTimeout)
        let values = try await requester.perform(ServiceOperation.workers, arguments: [], to: coordinator)
        do {
            return try TypedValueDecoder().decodeFields(WorkerRoster.self, from: values).workers
        } catch {
            throw VertebraError(.badResult, "\(coordinator) answered /security/workers with values that do not decode: \(error)")
        }
    }

    /// Why `key` cannot be a unique key (nil if it can): empty, over 256 bytes, or with control characters.
    public nonisolated static func keyProblem(_ key: String) -> String? { DispatchExtension.keyProblem(key) }

    /// Cancels job `id` (or a unique prefix) through the coordinator (`/security/jobs/cancel`):
    /// its workers are told and it ends `cancelled`. Allowed to the job's submitter and to
    /// accounts whose ACL rule covers the path.
    public func cancelJob(_ id: String) async throws -> JobActionResult {
        try await act(ServiceOperation.cancelJob, on: id)
    }

    /// Runs failed or cancelled job `id` again as a new job linked to it (`/security/jobs/retry`);
    /// returns the new job's id.
    public func retryJob(_ id: String) async throws -> JobActionResult {
        try await act(ServiceOperation.retryJob, on: id)
    }

    private func act(_ path: Resource, on id: String) async throws -> JobActionResult {
        let requester = Requester(client: client, inbox: inbox, ids: ids, answerTimeout: answerTimeout)
        let arguments = try TypedValueEncoder().encodeFields(JobActionRequest(job: id))
        let values: [XElement]
        do {
            values = try await requester.perform(path, arguments: arguments, to: coordinator)
        } catch let error as VertebraError where error.code == .noWorker {
            throw VertebraError(.refused, error.message)  // item-not-found: no such job
        }
        do {
            return try TypedValueDecoder().decodeFields(JobActionResult.self, from: values)
        } catch {
            throw VertebraError(.badResult, "\(coordinator) answered \(path) with values that do not decode: \(error)")
        }
    }

    /// The workers the coordinator knows for `operation` (`/security/discover`).
    public func discover(_ operation: Resource) async throws -> [JID] {
        let requester = Requester(client: client, inbox: inbox, ids: ids, answerTimeout: answerTimeout)
        let arguments = try TypedValueEncoder().encodeFields(DiscoverRequest(job: .init(operation: operation, resources: nil)))
        let values = try await requester.perform(ServiceOperation.discover, arguments: arguments, to: coordinator, timeout: .seconds(10))
        return try TypedValueDecoder().decodeFields(DiscoverResult.self, from: values).jids.compactMap(JID.init)
    }

    /// Waits until the coordinator answers and knows a worker for each of `operations`.
    public func waitForWorkers(offering operations: [Resource], timeout: Duration = .seconds(30)) async throws {
        let end = ContinuousClock.now + timeout
        var missing = operations
        while true {
            var stillMissing: [Resource] = []
            for operation in missing where ((try? await discover(operation)) ?? []).isEmpty { stillMissing.append(operation) }
            missing = stillMissing
            if missing.isEmpty { return }
            guard ContinuousClock.now < end else {
                throw VertebraError(.noWorker, "no worker registered for \(missing.map(\.path).joined(separator: ", ")) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Asks the coordinator to cancel the job; it ends with `failed(cancelled)`.
    public func cancel(_ job: Job) async throws {
        _ = try await client.sendAndWait(IQ(type: .set, id: ids.next(), to: coordinator, payload: ProtocolMessage.cancel(job.attempt).element))
    }
}
