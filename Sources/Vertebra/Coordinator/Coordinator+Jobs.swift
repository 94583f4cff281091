import Foundation
import Logging
import Natter
import Tracing
import VertebraJournal
import VertebraXML

/// What a new job needs.
struct JobSpec: Sendable {
    var token: String
    var path: Resource
    var arguments: [XElement]
    var scope: Scope
    var targets: [JID]
    var deadline: Duration?
    var retryable: Bool?
    var submitter: JID?
    /// At most one unfinished job has this key (``Coordinator/submit(_:arguments:scope:to:deadline:retryable:key:notBefore:)``).
    var key: String?
    /// Do not start before this time.
    var notBefore: Date?
    /// The job this one repeats (an operator's retry).
    var retryOf: String?
    /// The submitter's trace context: the job's span is its child.
    var trace = TraceCarrier()
}

/// The submitter's side of a job that came in over XMPP.
struct RelaySpec: Sendable {
    var attempt: JobToken
    var peer: JID
    var iqID: String
    var op: XElement
    var answer: String
    /// The submitter will not follow the job: its conversation ends with the answer to the `op`.
    var detached = false

    /// The records of the submitter's conversation: opened with the `op` and its answer, and
    /// closed at once when detached (nothing is relayed, nothing resumes at a restart).
    func records(job: String) -> [JournalRecord] {
        [.openConversation(NewConversation(job: job, token: attempt.description, peer: peer.description, role: .performer)),
         .recordStanza(NewStanza(conversation: .opened, direction: .inbound, iqID: iqID, kind: .op, body: JournalText.text(op), answer: answer))]
            + (detached ? [.setConversationState(.opened, .finished)] : [])
    }
}

extension Coordinator {
    // MARK: - Public dispatch

    /// Journals a job and starts it; its events end with `done` or `failed`.
    /// `retryable` defaults to what the workers advertised for the operation.
    ///
    /// - Parameters:
    ///   - key: a unique key: while a job submitted with `key` is unfinished, submitting with
    ///     the same key returns a handle on that job instead of a new one (across restarts and
    ///     concurrent submitters; the journal's unique index backs it). A finished job frees it.
    ///   - notBefore: a delayed job: journalled now, its first attempt starts at this time (a
    ///     restart keeps the delay); its deadline counts from then.
    public func submit(
        _ path: Resource, arguments: [XElement], scope: Scope = .single, to targets: [JID] = [],
        deadline: Duration? = nil, retryable: Bool? = nil, key: String? = nil, notBefore: Date? = nil
    ) async throws -> JobHandle {
        guard let token = JobToken.newJob() else { throw VertebraError(.failed, "no random bytes for a job token") }
        if scope == .direct && targets.isEmpty {
            throw VertebraError(.badRequest, "scope direct needs at least one target JID")
        }
        if let key, let handle = subscribe(keyedJobs[key]) { return handle }
        let spec = JobSpec(
            token: token.job, path: path, arguments: arguments, scope: scope, targets: targets, deadline: deadline,
            retryable: retryable, submitter: nil, key: key, notBefore: notBefore,
            trace: TraceCarrier(InstrumentationContext.current ?? .topLevel, tracer: options.tracer))
        do {
            return try await begin(spec, relay: nil).0
        } catch let error as JournalError where error.code == .duplicateKey {
            guard let key, let holder = await keyHolder(key), let handle = subscribe(holder) else { throw error }
            return handle
        }
    }

    /// A new handle on a live job: its events so far (a keyed job keeps them), then the rest.
    /// A `follower` (a submission's own conversation token) can be stopped alone.
    func subscribe(_ token: String?, follower: String? = nil) -> JobHandle? {
        guard let token, let job = live[token] else { return nil }
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
        for event in job.history { continuation.yield(event) }
        live[token]?.subscribers.append(continuation)
        if let follower { live[token]?.followers[follower] = continuation }
        return JobHandle(id: token, events: stream)
    }

    /// How many handles follow live job `token` (its events are kept for each until read).
    func followers(of token: String) -> Int { live[token]?.subscribers.count ?? 0 }

    /// The live job holding `key`, once the submission that took it has started it (a
    /// concurrent submission loses the journal's unique index to it a moment before).
    func keyHolder(_ key: String) async -> String? {
        for _ in 0..<400 {
            if let token = keyedJobs[key], live[token] != nil { return token }
            guard let holder = try? await journal.unfinishedJob(key: key) else { return nil }
            if live[holder.token] != nil { return holder.token }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Journals every job in one transaction and starts them; returns once all are durable, with
    /// one handle per job in order. Whether each may be retried is what its workers declared.
    public func submitMany(_ jobs: [Batch.Job]) async throws -> [JobHandle] {
        var specs: [JobSpec] = []
        for job in jobs {
            guard let token = JobToken.newJob() else { throw VertebraError(.failed, "no random bytes for a job token") }
            if job.scope == .direct && job.targets.isEmpty {
                throw VertebraError(.badRequest, "scope direct needs at least one target JID")
            }
            specs.append(JobSpec(
                token: token.job, path: job.path, arguments: job.arguments, scope: job.scope, targets: job.targets,
                deadline: job.deadline, retryable: nil, submitter: nil, notBefore: job.notBefore))
        }
        return try await beginMany(specs)
    }

    /// Runs `operation` on one worker (`single`, or `direct` to one JID) and returns its result.
    /// With `key`, a job with that key still unfinished is followed instead of starting
    /// another; with `notBefore`, the job starts then (see ``submit(_:arguments:scope:to:deadline:retryable:key:notBefore:)``).
    public func dispatch<Op: VertebraOperation>(
        _ operation: Op, scope: Scope = .single, to targets: [JID] = [], deadline: Duration? = nil,
        key: String? = nil, notBefore: Date? = nil
    ) async throws -> Op.Result {
        let results = try await dispatchAll(operation, scope: scope, to: targets, deadline: deadline, key: key, notBefore: notBefore)
        guard let first = results.first else { throw VertebraError(.noWorker, "no worker ran \(Op.path)") }
        return try first.result.get()
    }

    /// Runs `operation` with any scope and returns each worker's result.
    public func dispatchAll<Op: VertebraOperation>(
        _ operation: Op, scope: Scope = .all, to targets: [JID] = [], deadline: Duration? = nil,
        key: String? = nil, notBefore: Date? = nil
    ) async throws -> [(worker: JID, result: Result<Op.Result, VertebraError>)] {
        let handle = try await submit(
            Op.path, arguments: try encodeArguments(operation), scope: scope, to: targets,
            deadline: deadline ?? Op.defaultDeadline, retryable: Op.isRetryable, key: key, notBefore: notBefore)
        var values: [(JID, [XElement])] = []
        for await event in handle.events {
            switch event {
            case .data(let worker, let chunk):
                if let index = values.firstIndex(where: { $0.0 == worker }) { values[index].1 += chunk } else { values.append((worker, chunk)) }
            case .failed(let error) where scope == .single || values.isEmpty:
                throw error
            case .done, .failed:
                return values.map { worker, chunk in
                    (worker, Result { () throws(VertebraError) -> Op.Result in try Self.decodeResult(Op.Result.self, chunk, path: Op.path) })
                }
            default: continue
            }
        }
        throw VertebraError(.shutDown, "the coordinator stopped before job \(handle.id) ended")
    }

    /// Runs a streaming operation and yields each result chunk as it arrives.
    public func results<Op: VertebraOperation>(
        of operation: Op, scope: Scope = .single, to targets: [JID] = [], deadline: Duration? = nil
    ) async throws -> AsyncThrowingStream<Op.Result, any Error> {
        let handle = try await submit(
            Op.path, arguments: try encodeArguments(operation), scope: scope, to: targets,
            deadline: deadline ?? Op.defaultDeadline, retryable: Op.isRetryable)
        return AsyncThrowingStream { continuation in
            let task = Task {
                for await event in handle.events {
                    switch event {
                    case .data(_, let chunk):
                        do { continuation.yield(try Self.decodeResult(Op.Result.self, chunk, path: Op.path)) } catch {
                            continuation.finish(throwing: error)
                            return
                        }
                    case .done: continuation.finish()
                    case .failed(let error): continuation.finish(throwing: error)
                    default: continue
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Cancels a job: its workers get `cancel`, and it ends `cancelled`.
    public func cancel(job token: String, reason: String = "cancelled by the program") async {
        guard live[token] != nil, live[token]?.cancelReason == nil else { return }
        live[token]?.cancelReason = reason
        // Journalled before the caller hears of it: a stop or crash right after must not lose
        // it (the next start applies it again, ``reapplyCancels()``; the job's end removes it).
        do { try await journal.write(.setMeta(key: Self.cancelPrefix + token, value: reason)) } catch {
            noteJournalFailure(error, "could not journal a cancel; it holds only until this coordinator stops", job: token)
        }
        await applyCancel(token, reason)
    }

    /// Journal meta keys of cancels asked for and not yet ended (`cancel.<job>` = reason).
    static let cancelPrefix = "cancel."

    /// The cancels of unfinished jobs a previous run acknowledged, applied again; those of
    /// jobs that ended meanwhile are removed.
    func reapplyCancels() async throws {
        for (key, reason) in try await journal.meta(prefix: Self.cancelPrefix) {
            let token = String(key.dropFirst(Self.cancelPrefix.count))
            guard live[token] != nil else {
                try await journal.write(.setMeta(key: key, value: nil))
                continue
            }
            guard live[token]?.cancelReason == nil else { continue }
            logger.info("applying a cancel acknowledged before the restart", metadata: ["job": "\(token)"])
            live[token]?.cancelReason = reason
            await applyCancel(token, reason)
        }
    }

    private func applyCancel(_ token: String, _ reason: String) async {
        guard live[token] != nil else { return }
        if startWaiters[token] != nil {
            // A delayed job waiting for its start ends before the cancel is answered: its key
            // is free for the next submission at once.
            await end(token, .cancelled(reason))
            wakeStart(token)
            return
        }
        withdrawFromQueue(token)
        for worker in live[token]?.workers ?? [] {
            await inbox.inject(.cancelRequested(reason), job: token, peer: worker)
        }
        notifyChange()
    }

    private func encodeArguments<Op: VertebraOperation>(_ operation: Op) throws -> [XElement] {
        do { return try TypedValueEncoder().encodeFields(operation) } catch {
            throw VertebraError(.badRequest, "\(Op.self) does not encode as typed values: \(error)")
        }
    }

    static func decodeResult<T: Decodable>(_ type: T.Type, _ values: [XElement], path: Resource) throws(VertebraError) -> T {
        do { return try TypedValueDecoder().decodeFields(type, from: values) } catch {
            throw VertebraError(.badResult, "the result of \(path) does not decode as \(T.self): \(error)")
        }
    }

    // MARK: - Starting a job

    /// Checks `spec` against this coordinator's ACL and makes its record (``Submission``).
    func prepare(_ spec: JobSpec) throws -> PreparedJob {
        try Submission.prepare(
            spec, mayServe: { mayServeEverything($0) || options.accessList.allowsServing($0, spec.path) },
            retryableByDefault: registry.isRetryable(spec.path), now: Date())
    }

    /// Journals the job (with the submitter's conversation when it came over XMPP) and starts it.
    func begin(_ spec: JobSpec, relay: RelaySpec?) async throws -> (JobHandle, Int64?) {
        let job = try prepare(spec)
        var records = [job.record]
        if let relay { records += relay.records(job: spec.token) }
        var relayConversation: Int64?
        if relay == nil && spec.key == nil {
            // In process, nobody outside learns of the job before its op leaves, and the op's
            // write commits after (or with) this one: no commit to wait for here. (A keyed job
            // waits: the journal's unique index decides which submission holds the key.)
            journalLater(records, "could not journal a new job", job: spec.token)
        } else {
            for case .conversation(let id) in try await journal.write(records) { relayConversation = id }
        }
        // A detached submitter follows nothing: no stream of the job's events to fill.
        return (start(job, followed: !(relay?.detached ?? false)), relayConversation)
    }

    /// Journals every job in one transaction, awaited, then starts them all. Unless `followed`,
    /// nobody reads the handles' events (a batch over XMPP, an operator's retry).
    @discardableResult
    func beginMany(_ specs: [JobSpec], followed: Bool = true) async throws -> [JobHandle] {
        let jobs = try specs.map(prepare)
        try await journal.write(jobs.map(\.record))
        return jobs.map { start($0, followed: followed) }
    }

    /// Starts a journalled job. Unless `followed`, its handle's events end at once and none are
    /// kept for it: a job nobody follows (scheduled, batched, detached) buffers nothing while
    /// it runs, however many chunks it streams.
    @discardableResult
    func start(_ job: PreparedJob, followed: Bool = true) -> JobHandle {
        metrics.submitted(job.spec.path.path).increment()
        let notBefore = job.spec.notBefore.map { instant(of: $0) }
        return startLive(
            token: job.spec.token, path: job.spec.path, op: job.op, scope: job.spec.scope, targets: job.spec.targets,
            deadline: job.spec.deadline.map { (notBefore ?? clock.now) + $0 }, retryable: job.retryable, resumes: [],
            journalState: .pending, attemptsBefore: 0, notBefore: notBefore, key: job.spec.key, trace: job.spec.trace,
            followed: followed)
    }

    /// The clock's instant of a wall-clock time (now, for a time past).
    func instant(of date: Date) -> ContinuousClock.Instant {
        clock.now + .milliseconds(Int64(min(max(0, date.timeIntervalSinceNow), DispatchExtension.maxDeadlineSeconds) * 1000))
    }

    func startLive(
        token: String, path: Resource, op: XElement, scope: Scope, targets: [JID], deadline: ContinuousClock.Instant?,
        retryable: Bool, resumes: [ResumeState], journalState: JobState, attemptsBefore: Int,
        notBefore: ContinuousClock.Instant? = nil, key: String? = nil, trace: TraceCarrier = TraceCarrier(), followed: Bool = true
    ) -> JobHandle {
        let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
        if !followed { continuation.finish() }
        let span = options.tracer.startSpan("vertebra.job \(path.path)", context: trace.context(tracer: options.tracer), ofKind: .consumer)
        span.attributes["vertebra.job.id"] = token
        span.attributes["vertebra.operation"] = path.path
        live[token] = LiveJob(
            token: token, path: path, op: op, scope: scope, targets: targets, deadline: deadline, retryable: retryable,
            subscribers: followed ? [continuation] : [], journalState: journalState, attemptsBefore: attemptsBefore,
            since: clock.now, notBefore: notBefore, key: key, span: span)
        if let key { keyedJobs[key] = token }
        tasks.spawn { await self.run(token, resumes: resumes) }
        return JobHandle(id: token, events: stream)
    }

    func emit(_ token: String, _ event: JobEvent) {
        guard let job = live[token] else { return }
        if job.key != nil { live[token]?.history.append(event) }
        for subscriber in job.subscribers { subscriber.yield(event) }
    }

    // MARK: - Ending a job

    func end(_ token: String, _ ended: JobEnd) async {
        await end(token, ended.state, result: ended.result, error: ended.error)
    }

    func end(_ token: String, _ state: JobState, result: [XElement] = [], error: VertebraError? = nil) async {
        // Stopping: the job stays unfinished in the journal and resumes at the next start.
        if isStopping { return forgetLive(token) }
        var records: [JournalRecord] = [.transition(
            job: token, to: state, result: result.isEmpty ? nil : JournalText.text(values: result), error: error?.description,
            errorCode: error?.code.rawValue)]
        if live[token]?.cancelReason != nil { records.append(.setMeta(key: Self.cancelPrefix + token, value: nil)) }
        if state == .done, live[token]?.journalState.canTransition(to: .done) ?? false {
            // Implied by the journalled `final`(s): recovery reaches the same end without it.
            live[token]?.journalState = .done
            journalLater(records, "could not journal the end of a job; it resumes at the next start", job: token)
        } else {
            await endDurably(token, state, records)
        }
        logger.info("job ended", metadata: ["job": "\(token)", "state": "\(state)", "error": "\(error?.description ?? "-")"])
        if let job = live[token] {
            job.span?.attributes["vertebra.job.state"] = state.rawValue
            if let error, state != .done { job.span?.fail(error.description) }
            metrics.finished(job.path.path, state.rawValue).increment()
            metrics.duration(job.path.path).recordInterval(since: job.since, until: clock.now)
        }
        emit(token, error.map { .failed($0) } ?? .done)
        forgetLive(token)
    }

    private func endDurably(_ token: String, _ state: JobState, _ records: [JournalRecord]) async {
        do {
            if let current = try await journal.job(token), current.state.canTransition(to: state) {
                _ = try await journal.write(records)
                live[token]?.journalState = state
            }
        } catch {
            noteJournalFailure(error, "could not journal the end of a job; it resumes at the next start", job: token)
        }
    }

    /// Ends a job that could not be followed because the journal failed: loudly, in memory
    /// (its journal entry stays unfinished and resumes at the next start).
    func endUnrecorded(_ token: String, _ error: any Error, _ what: String) async {
        noteJournalFailure(error, "\(what); the job stops here and resumes at the next start", job: token)
        emit(token, .failed(VertebraError(.journalFailed, "\(what): \(error)")))
        forgetLive(token)
    }

    private func forgetLive(_ token: String) {
        if let key = live[token]?.key, keyedJobs[key] == token { keyedJobs[key] = nil }
        live[token]?.span?.end()
        for subscriber in live[token]?.subscribers ?? [] { subscriber.finish() }
        live[token] = nil
    }

    // MARK: - Waiting for workers

    /// Waits until the registry or the load changes, or `timeout` passes.
    func waitForChange(timeout: Duration) async {
        // Once stopping, nothing wakes a new waiter (stop() woke the others): do not wait.
        guard !isStopping, !Task.isCancelled else { return }
        let id = ids.next()
        let timer = clock.schedule(at: clock.now + timeout) { [tasks] in tasks.spawn { await self.wake(id) } }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            changeWaiters[id] = continuation
        }
        timer.cancel()
    }

    private func wake(_ id: String) {
        changeWaiters.removeValue(forKey: id)?.resume()
    }

    func notifyChange() {
        grantSlots()
        reportWorkers()
        wakeChangeWaiters()
    }

    func wakeChangeWaiters() {
        let waiters = changeWaiters
        changeWaiters.removeAll()
        for waiter in waiters.values { waiter.resume() }
        if isStopping {
            let starts = startWaiters
            startWaiters.removeAll()
            for waiter in starts.values { waiter.resume() }
        }
    }

    /// Waits up to `timeout` for a delayed job's start, or until a cancel or the stop wakes it.
    func pauseBeforeStart(_ token: String, for timeout: Duration) async {
        guard !isStopping, !Task.isCancelled, startWaiters[token] == nil else { return }
        let timer = clock.schedule(at: clock.now + timeout) { [tasks] in tasks.spawn { await self.wakeStart(token) } }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            startWaiters[token] = continuation
        }
        timer.cancel()
    }

    func wakeStart(_ token: String) {
        startWaiters.removeValue(forKey: token)?.resume()
    }
}
