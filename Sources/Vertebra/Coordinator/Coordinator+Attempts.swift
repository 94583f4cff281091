import Foundation
import Logging
import Natter
import Tracing
import VertebraJournal
import VertebraXML

/// How one attempt (one worker's conversation) ended.
enum AttemptOutcome: Sendable {
    case done([XElement])
    /// `nack`, or the worker would not take the `op` (absent, unknown operation, busy).
    case refused(String)
    /// The worker went away for longer than the lease.
    case lost(String)
    /// The worker stayed present but silent, and did not confirm the attempt was running.
    case silent(String)
    /// The coordinator is stopping: the attempt stays open in the journal and resumes at the
    /// next start.
    case interrupted
    case failed(VertebraError, retryable: Bool)
    case cancelled(String)
    case deadline

    var conversationState: ConversationState {
        switch self {
        case .done: .finished
        case .cancelled: .cancelled
        default: .failed
        }
    }
}

/// An attempt found open (or just ended) in the journal at start.
/// An attempt's conversation as journalled: its `op` and the IQ id it goes out with.
struct OpenedAttempt {
    var conversation: Int64
    /// The `op`'s stanza row, when this process journalled it (its answer is recorded by id).
    var opStanza: Int64?
    var iqID: String
    var op: XElement
}

struct ResumeState: Sendable {
    var worker: JID
    var conversation: Int64
    var opIQID: String
    var token: JobToken?
    var values: [XElement]
    /// Set when the journal shows the attempt already ended.
    var ended: AttemptOutcome?
    /// The mailbox, opened during recovery so nothing the worker sends is turned away.
    var events: AsyncStream<InboxEvent>?
    /// Its worker's slot was counted during recovery, before any job of the start could be
    /// given that slot.
    var slotCounted = false
}

extension Coordinator {
    func run(_ token: String, resumes: [ResumeState]) async {
        guard let job = live[token] else { return }
        if resumes.isEmpty, let start = job.notBefore, !(await waitForStart(token, at: start)) { return }
        switch job.scope {
        case .single: await runSingle(token, resume: resumes.first)
        case .all, .direct: await runFanOut(token, resumes: resumes)
        }
    }

    /// Holds a delayed job until `start`; false when the coordinator stops meanwhile (the job
    /// stays pending in the journal, delay and all). A cancel ends the wait at once.
    private func waitForStart(_ token: String, at start: ContinuousClock.Instant) async -> Bool {
        while clock.now < start, let job = live[token], job.cancelReason == nil, !isStopping, !Task.isCancelled {
            await pauseBeforeStart(token, for: min(start - clock.now, .milliseconds(250)))
        }
        return !isStopping && !Task.isCancelled && live[token] != nil
    }

    // MARK: - single

    private func runSingle(_ token: String, resume: ResumeState?) async {
        var plan = RetryPlan(
            failuresBefore: (live[token]?.attemptsBefore ?? 0) - (resume == nil ? 0 : 1),
            firstDelay: options.retryDelay, maxDelay: options.maxRetryDelay, maxAttempts: options.maxAttempts)
        var next = resume
        while let job = live[token], !isStopping {
            if let reason = job.cancelReason { return await end(token, .cancelled(reason)) }
            if let deadline = job.deadline, clock.now >= deadline {
                return await end(token, .failed(.deadlineExceeded, "the job's deadline passed before it finished"))
            }
            let worker: JID
            var counted = false
            if let resumed = next {
                worker = resumed.worker
            } else {
                switch await waitForSlot(job, excluded: plan.excluded) {
                case .worker(let picked):
                    worker = picked
                    counted = true
                case .allRefused:
                    try? await clock.sleep(for: jittered(plan.allRefused()))
                    continue
                case .noWorker:
                    return await end(token, .failed(.noWorker, "no live worker offers \(job.path) (waited \(options.workerWait))"))
                case .deadline:
                    return await end(token, .failed(.deadlineExceeded, "the job's deadline passed while it waited for a worker"))
                case .withdrawn:
                    continue
                }
            }
            live[token]?.markedRunning = false  // a new attempt runs anew
            let outcome = await runAttempt(token, worker: worker, resume: next, counted: counted)
            next = nil
            switch plan.after(outcome, on: worker, jobRetryable: job.retryable, cancelReason: live[token]?.cancelReason) {
            case .stop:
                return
            case .end(let ended):
                return await end(token, ended)
            case .requeue:
                logger.info("worker refused; trying another", metadata: ["job": "\(token)", "worker": "\(worker)", "reason": "\(outcome.failure.0.message)"])
                await backToPending(token)
            case .retry(let delay):
                logger.info("attempt failed; retrying", metadata: ["job": "\(token)", "worker": "\(worker)", "reason": "\(outcome.failure.0)"])
                metrics.retries(job.path.path).increment()
                try? await clock.sleep(for: jittered(delay))
            }
        }
    }

    /// A refused job waits again as `pending`.
    private func backToPending(_ token: String) async {
        guard live[token]?.journalState == .dispatched else { return }
        do {
            try await journal.write(.transition(job: token, to: .pending))
            live[token]?.journalState = .pending
        } catch {
            noteJournalFailure(error, "could not journal that a refused job waits again", job: token)
        }
    }

    private func jittered(_ delay: Duration) -> Duration {
        delay * Double.random(in: 0.8...1.2)
    }

    // MARK: - all / direct

    private func runFanOut(_ token: String, resumes: [ResumeState]) async {
        guard let job = live[token] else { return }
        var workers = resumes.map(\.worker)
        if resumes.isEmpty {
            workers = job.scope == .direct ? job.targets : registry.capable(of: job.path, now: clock.now).map(\.jid)
            if workers.isEmpty {
                await waitForChange(timeout: min(options.workerWait, .seconds(5)))
                workers = registry.capable(of: job.path, now: clock.now).map(\.jid)
            }
        }
        guard !workers.isEmpty else {
            return await end(token, .failed(.noWorker, "no worker offers \(job.path)"))
        }
        if isStopping { return }
        let outcomes = await withTaskGroup(of: (JID, AttemptOutcome).self) { group in
            for worker in workers {
                let resume = resumes.first { $0.worker == worker }
                group.addTask { (worker, await self.runAttempt(token, worker: worker, resume: resume)) }
            }
            var collected: [(JID, AttemptOutcome)] = []
            for await outcome in group { collected.append(outcome) }
            return collected
        }
        guard let ended = FanOutEnd.combine(outcomes, cancelReason: live[token]?.cancelReason) else { return }
        await end(token, ended)
    }

    // MARK: - One attempt

    /// Runs one attempt on `worker`. `counted`: its slot was already reserved (by the queue).
    func runAttempt(_ token: String, worker: JID, resume: ResumeState?, counted: Bool = false) async -> AttemptOutcome {
        let counted = counted || resume?.slotCounted == true
        if let ended = resume?.ended {
            if counted { releaseSlot(worker) }
            return ended
        }
        guard let job = live[token] else {
            if counted { releaseSlot(worker) }
            return .cancelled("the job is gone")
        }
        // Counted before the first suspension, so concurrent picks see this worker's load.
        if !counted { registry.adjustOutstanding(worker, by: 1) }
        let span = options.tracer.startSpan(
            "vertebra.attempt \(job.path.path)", context: job.span?.context ?? .topLevel, ofKind: .producer)
        span.attributes["vertebra.job.id"] = token
        span.attributes["vertebra.worker"] = worker.description
        defer { span.end() }
        let opened: OpenedAttempt
        if let resume {
            // The worker answers a repeated IQ id from its journal, whatever the op says.
            opened = OpenedAttempt(conversation: resume.conversation, iqID: resume.opIQID, op: job.op)
        } else {
            do { opened = try await openAttempt(job, worker: worker, trace: TraceCarrier(span.context, tracer: options.tracer)) } catch {
                releaseSlot(worker)
                noteJournalFailure(error, "could not journal a new attempt; the job fails", job: token)
                return .failed(VertebraError(.journalFailed, "could not journal the attempt: \(error)"), retryable: false)
            }
        }
        let events: AsyncStream<InboxEvent>
        if let reopened = resume?.events {
            events = reopened
        } else {
            events = await inbox.open(job: token, peer: worker, conversation: opened.conversation, attempt: resume?.token?.attempt)
        }
        if let live = live[token], !live.wasDispatched {
            self.live[token]?.wasDispatched = true
            metrics.queueWait(job.path.path).recordInterval(since: live.since, until: clock.now)
        }
        live[token]?.workers.insert(worker)
        emit(token, .dispatched(worker: worker))
        if job.cancelReason != nil { await inbox.inject(.cancelRequested(job.cancelReason ?? ""), job: token, peer: worker) }
        if let known = resume?.token { attemptTokens["\(token)|\(worker)"] = known }
        let ended: AttemptOutcome
        if let early = await sendOp(job, worker: worker, opened, known: resume?.token) {
            ended = early
        } else {
            ended = await follow(job, worker: worker, events: events, values: resume?.values ?? [])
        }
        metrics.attempts(job.path.path, ended.metricLabel).increment()
        span.attributes["vertebra.attempt.outcome"] = ended.metricLabel
        if case .done = ended {} else { span.fail(ended.metricLabel) }
        attemptTokens["\(token)|\(worker)"] = nil
        lastHeard["\(token)|\(worker)"] = nil
        await inbox.close(job: token, peer: worker)
        live[token]?.workers.remove(worker)
        releaseSlot(worker)
        if case .interrupted = ended { return ended }
        if isStopping { return .interrupted }
        let record = JournalRecord.setConversationState(.id(opened.conversation), ended.conversationState)
        if case .done = ended {
            // The journalled `final` already says so.
            journalLater([record], "could not journal the end of an attempt", job: token)
        } else {
            do { try await journal.write(record) } catch {
                noteJournalFailure(error, "could not journal the end of an attempt", job: token)
            }
        }
        return ended
    }

    /// A worker slot is free again: hand it to the next queued job.
    func releaseSlot(_ worker: JID) {
        registry.adjustOutstanding(worker, by: -1)
        notifyChange()
    }

    private func openAttempt(_ job: LiveJob, worker: JID, trace: TraceCarrier) async throws -> OpenedAttempt {
        let iqID = ids.next()
        var op = usesFastPath(worker) ? job.op.appending(FastPath.request) : job.op
        // The attempt's trace context travels to the worker (a 0.4 worker ignores it).
        if let context = DispatchExtension.element(targets: [], deadline: nil, retryable: nil, trace: trace) { op = op.appending(context) }
        let dispatches = job.scope == .single || live[job.token]?.journalState == .pending
        if dispatches { live[job.token]?.journalState = .dispatched }
        let outcomes = try await journal.write([
            .openConversation(NewConversation(
                job: job.token, peer: worker.description, role: .requester, supersedesOthers: job.scope == .single,
                dispatches: dispatches)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: iqID, kind: .op, body: JournalText.text(op))),
        ])
        guard case .conversation(let conversation)? = outcomes.first, case .stanza(let stanza, _)? = outcomes.last else {
            throw VertebraError(.failed, "the journal returned no conversation")
        }
        return OpenedAttempt(conversation: conversation, opStanza: stanza, iqID: iqID, op: op)
    }

    /// The fast path is used when the worker offers it with a budget well inside our answer timeout.
    private func usesFastPath(_ worker: JID) -> Bool {
        guard options.fastPath, let budget = registry.entry(worker)?.fastPathBudget else { return false }
        return budget * 2 < options.answerTimeout
    }

    /// Sends the `op` (again, with its id, when resuming) and records the attempt's token, as
    /// ``OpAnswer`` judges the answer. Returns an outcome only when the attempt is over before
    /// it started (or ended inside the answer).
    private func sendOp(_ job: LiveJob, worker: JID, _ opened: OpenedAttempt, known: JobToken?) async -> AttemptOutcome? {
        let delivery = Delivery(
            client: client, clock: clock, answerTimeout: options.answerTimeout,
            // A worker that is there but does not answer the op is silent, as one that stops
            // talking mid-job: it has the silence timeout (or twice the answer timeout, if longer).
            // One that answers "wait" (its journal failing) is given up on sooner: another takes the job.
            giveUpAfter: known == nil ? max(options.answerTimeout * 2, options.silenceTimeout) : options.lease,
            giveUpOnWaitAfter: known == nil ? options.answerTimeout * 2 : nil, absentPeer: .fail)
        let delivered: OpAnswer.Delivered
        do {
            delivered = .answered(try await delivery.deliver(IQ(type: .set, id: opened.iqID, to: worker, payload: opened.op)))
        } catch {
            delivered = .failed(error, heard: await inbox.heardAttempt(job: job.token, peer: worker))
        }
        let attempt = OpAnswer.Attempt(
            job: job.token, worker: worker, conversation: opened.conversation,
            op: opened.opStanza.map(StanzaRef.id) ?? .iq(peer: worker.description, iqID: opened.iqID, direction: .outbound),
            iqID: opened.iqID, known: known)
        switch OpAnswer.judge(delivered, for: attempt, stopping: isStopping) {
        case .over(let outcome):
            return outcome
        case .inline(_, let records, let messages):
            journalLater(records, "could not journal a fast-path conversation", job: job.token)
            return inlineOutcome(messages, job: job, worker: worker)
        case .running(let token, let records):
            // Not awaited (DESIGN 5.1): if it is lost, recovery sends the op again with its id
            // and the worker answers the same A:B from its journal.
            journalLater(records, "could not journal a worker's answer to the op", job: job.token)
            await inbox.name(job: job.token, peer: worker, attempt: token.attempt)
            attemptTokens["\(job.token)|\(worker)"] = token
            return nil
        }
    }

    /// How an attempt that ended inside the answer to its op ended; its chunks are reported as
    /// if they had come one by one.
    private func inlineOutcome(_ inline: [ProtocolMessage], job: LiveJob, worker: JID) -> AttemptOutcome {
        var follower = AttemptFollower(worker: worker, lease: options.lease)
        for action in follower.takeInline(inline) {
            if case .report(let event) = action { emit(job.token, event) }
        }
        return follower.outcome ?? .failed(VertebraError(.badResult, "\(worker) answered the op without an end"), retryable: false)
    }

    /// Drives the attempt's ``AttemptFollower`` with its mailbox, and its timers.
    private func follow(_ job: LiveJob, worker: JID, events: AsyncStream<InboxEvent>, values start: [XElement]) async -> AttemptOutcome {
        var follower = AttemptFollower(worker: worker, lease: options.lease, values: start)
        let token = job.token
        let timers = AttemptTimers(inbox: inbox, tasks: tasks, clock: clock, job: token, worker: worker)
        if let deadline = job.deadline { timers.start(.deadline, at: deadline) }
        heard(token, worker)
        startWatching(worker, job: token)
        defer {
            timers.cancelAll()
            stopWatching(worker, job: token)
        }
        for await event in events {
            if case .message = event { heard(token, worker) }
            for action in follower.handle(event) {
                switch action {
                case .report(let event): emit(token, event)
                case .acknowledged: await markRunning(token, worker: worker)
                case .startLease: timers.start(.lease, at: clock.now + options.lease)
                case .stopLease: timers.cancel(.lease)
                case .sendCancel: sendCancel(job, worker: worker)
                case .end(let outcome): return outcome
                }
            }
        }
        // The mailbox closes only when the coordinator stops (or the job's task is cancelled).
        return .interrupted
    }

    private func markRunning(_ token: String, worker: JID) async {
        emit(token, .running(worker: worker))
        // Once per job (fan-out attempts all ack), decided before the first suspension.
        guard live[token]?.markedRunning == false else { return }
        live[token]?.markedRunning = true
        guard let state = live[token]?.journalState, state == .dispatched || state == .pending else { return }
        live[token]?.journalState = .running
        // `running` is informational (DESIGN 5.1): not awaited; a failure is reported.
        journalLater([.transition(job: token, to: .running)], "could not journal that a job runs", job: token)
    }

    private func sendCancel(_ job: LiveJob, worker: JID) {
        guard let attempt = currentAttemptToken(job.token, worker: worker) else { return }
        let request = IQ(type: .set, id: ids.next(), to: worker, payload: ProtocolMessage.cancel(attempt).element)
        let client = self.client
        tasks.spawn { _ = try? await client.sendAndWait(request, timeout: .seconds(5)) }
    }

    private func currentAttemptToken(_ job: String, worker: JID) -> JobToken? {
        attemptTokens["\(job)|\(worker)"]
    }
}
