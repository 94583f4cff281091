import Foundation
import Logging
import Natter
import Tracing
import VertebraJournal
import VertebraXML

extension Worker {
    // MARK: - Accepting an op

    /// An `op` whose `(peer, IQ id)` is still being answered (the requester repeated it, or the
    /// network did) waits for that answer instead of racing it.
    func receiveOp(_ message: ProtocolMessage, payload: XElement, request: IQ, from peer: JID) async throws -> IQAnswer {
        let key = "\(peer)|\(request.id)"
        if opsInProgress[key] != nil {
            let first = await withCheckedContinuation { opsInProgress[key, default: []].append($0) }
            return IQAnswer(payload: try first.get())
        }
        opsInProgress[key] = []
        let result: Result<IQAnswer, any Error>
        do { result = .success(try await acceptOp(message, payload: payload, request: request, from: peer)) } catch { result = .failure(error) }
        for waiter in opsInProgress.removeValue(forKey: key) ?? [] { waiter.resume(returning: result.map(\.payload)) }
        return try result.get()
    }

    /// Accepts an `op`. Most ops start a job this worker has never seen, so the journal is not
    /// read first (`readFirst` false): the accepting write itself finds a repeat or a known job
    /// (the journal's unique indexes on job tokens and inbound `(peer, IQ id)` refuse it, and
    /// nothing of it is written), and only then is the journal read to decide, as
    /// `readFirst` does from the start.
    private func acceptOp(
        _ message: ProtocolMessage, payload: XElement, request: IQ, from peer: JID, readFirst: Bool = false
    ) async throws -> IQAnswer {
        let (path, token, scope, arguments) = try message.opRequest()
        // A draining worker still answers repeats as before, so it reads first.
        let arrival = readFirst || isDraining ? try await journal.opArrival(peer: peer.description, iqID: request.id, job: token.job) : nil
        if let arrival, let replay = try await replayAnswer(arrival, job: token.job, peer: peer) { return replay }
        guard !isDraining else {
            throw StanzaError(type: .cancel, condition: .serviceUnavailable, text: "draining: this worker takes no new jobs")
        }
        try await authorize(peer, path)
        guard let handler = handlers[path.path] else { throw VertebraErrors.unknownOperation(path.path) }
        let run = try handler.prepare(arguments)
        guard let attempt = token.newAttempt() else { throw VertebraErrors.internalError("no random bytes for a token") }
        let accepted = ProtocolMessage.accepted(attempt).element
        let busy = !attempts.takeSlot()
        let conversation: Int64
        do {
            conversation = try await journalAccepted(
                op: payload, path: path, token: token, attempt: attempt, scope: scope, peer: peer,
                request: request, answer: accepted, busy: busy, existing: arrival?.job)
        } catch let error as JournalError where arrival == nil && (error.code == .duplicateJob || error.code == .duplicateStanza) {
            // Seen before: the journal decides (a repeat is answered as before).
            if !busy { attempts.returnSlot() }
            return try await acceptOp(message, payload: payload, request: request, from: peer, readFirst: true)
        } catch {
            if !busy { attempts.returnSlot() }
            logger.error("could not journal an op; refusing it", metadata: ["error": "\(error)"])
            throw VertebraErrors.internalError("the worker's journal failed: \(error)")
        }
        if busy {
            let reason = "busy: \(options.maxConcurrentJobs) jobs running (the limit)"
            return IQAnswer(payload: accepted) { [tasks] in tasks.spawn { await self.refuse(attempt, conversation: conversation, peer: peer, reason: reason) } }
        }
        let deadline = handler.defaultDeadline.map { clock.now + $0 }
        let fast = options.fastPathBudget > .zero && FastPath.isRequested(in: payload)
            ? FastAttempt(out: outbound(attempt, peer: peer, conversation: conversation), ack: .ack(attempt)) : nil
        metrics.running.record(attempts.busySlots)
        let job = Task {
            await self.perform(
                run, operation: path.path, attempt: attempt, conversation: conversation, peer: peer, deadline: deadline, fast: fast,
                trace: TraceCarrier(in: payload))
        }
        attempts.start(attempt.description, handle: job)
        guard let fast else { return IQAnswer(payload: accepted) }
        return await answerFast(fast, attempt: attempt, conversation: conversation, request: request, accepted: accepted)
    }

    /// The answer to a fast-path `op`: its end inline when the handler ends within the budget
    /// (journalled first), else the classic `accepted` with the `ack` and collected chunks sent
    /// after it. A repeat of the op while the budget runs waits for the same answer.
    private func answerFast(_ fast: FastAttempt, attempt: JobToken, conversation: Int64, request: IQ, accepted: XElement) async -> IQAnswer {
        fastAnswers[conversation] = []
        switch await fast.outcome(within: options.fastPathBudget, clock: clock) {
        case .classic:
            settleFastAnswer(conversation, accepted)
            return IQAnswer(payload: accepted) { [tasks] in tasks.spawn { try? await fast.flush() } }
        case .inline(let end, let chunks):
            let inline = chunks.map { ProtocolMessage.data(attempt, values: $0) } + [end]
            let answer = FastPath.answer(attempt, inline: inline)
            do {
                try await journalInline(inline, answer: request.result(payload: answer), conversation: conversation, attempt: attempt, opID: request.id)
            } catch {
                // As journalBroke does for a classic attempt: end it loudly, unjournalled, so the
                // job moves on at once (retryable) instead of waiting on silence.
                let failed = FastPath.answer(attempt, inline: [
                    .error(attempt, kind: .error, error: VertebraError(.journalFailed, "\(client.jid) could not journal the job: \(error)"))
                ])
                unrecordedEnds.insert(conversation)
                settleFastAnswer(conversation, failed)
                return IQAnswer(payload: failed)
            }
            settleFastAnswer(conversation, answer)
            return IQAnswer(payload: answer)
        }
    }

    /// The answer to a fast-path op is known: repeats of the op waiting for it get it too.
    private func settleFastAnswer(_ conversation: Int64, _ answer: XElement?) {
        for waiter in fastAnswers.removeValue(forKey: conversation) ?? [] { waiter.resume(returning: answer) }
    }

    /// The answer a fast-path op still within its budget will get (nil if it failed).
    private func awaitFastAnswer(_ conversation: Int64) async -> XElement? {
        await withCheckedContinuation { fastAnswers[conversation, default: []].append($0) }
    }

    /// Journals the messages that go inside the answer to the `op` (and the job's end) before
    /// that answer is sent.
    private func journalInline(_ inline: [ProtocolMessage], answer: IQ, conversation: Int64, attempt: JobToken, opID: String) async throws {
        let records = OpAdmission.inlineRecords(
            inline, answer: JournalText.text(answer.element), conversation: conversation, attempt: attempt, opID: opID)
        do {
            try await journal.write(records)
        } catch {
            noteJournalFailure(error, "could not journal the end of a fast-path job; ending it unrecorded", job: attempt.job)
            throw error
        }
    }

    /// The journal records of an accepted `op`: the job (unless a retry brought it back), the
    /// conversation and the `op` with our answer.
    private func journalAccepted(
        op: XElement, path: Resource, token: JobToken, attempt: JobToken, scope: Scope?, peer: JID,
        request: IQ, answer: XElement, busy: Bool, existing: Job?
    ) async throws -> Int64 {
        let records = OpAdmission.acceptedRecords(
            op: JournalText.text(op), operation: path.path, token: token, attempt: attempt,
            scope: JobScope(rawValue: scope?.rawValue ?? "single") ?? .single, peer: peer.description, iqID: request.id,
            answer: JournalText.text(request.result(payload: answer).element), busy: busy, existing: existing?.state)
        let outcomes = try await journal.write(records)
        for case .conversation(let id) in outcomes { return id }
        throw VertebraErrors.internalError("the journal did not return the conversation")
    }

    /// A repeated `op` (same `(peer, IQ id)`, or the same job token from the same peer while
    /// that attempt is open or finished): answer as before and replay the conversation.
    private func replayAnswer(_ arrival: OpArrival, job: String, peer: JID) async throws -> IQAnswer? {
        let found = OpAdmission.repeated(
            sameID: arrival.repeated.map(OpAdmission.Answered.init),
            sameJob: arrival.earlier.map { OpAdmission.Answered(conversation: $0.conversation.id, answer: $0.op.answer) },
            sameJobOpen: arrival.earlier?.conversation.state == .open, sameJobEnded: arrival.earlierStanzas.contains(where: Self.isEnd))
        guard let found else { return nil }
        if fastAnswers[found.conversation] != nil {
            guard let answer = await awaitFastAnswer(found.conversation) else {
                throw VertebraErrors.internalError("the worker's journal failed while this op ran")
            }
            logger.info("repeated op: answering as before", metadata: ["job": "\(job)", "peer": "\(peer)"])
            return IQAnswer(payload: answer)
        }
        let conversation = found.conversation
        let inline = try await journal.stanzas(ofConversation: conversation)
            .filter { $0.direction == .outbound && FastPath.isInline($0.iqID) }.map(\.body)
        guard let again = OpAdmission.answerAgain(found.answer, inline: inline) else {
            throw VertebraErrors.internalError("the journalled answer to this op is unreadable")
        }
        guard again.replays else { return IQAnswer(payload: again.payload) }
        logger.info("repeated op: answering as before and replaying", metadata: ["job": "\(job)", "peer": "\(peer)"])
        let attempt = again.attempt
        return IQAnswer(payload: again.payload) { [tasks] in tasks.spawn { await self.replay(conversation: conversation, attempt: attempt, peer: peer) } }
    }

    private static func isEnd(_ stanza: VertebraJournal.Stanza) -> Bool {
        stanza.direction == .outbound && [.final, .error, .nack].contains(stanza.kind)
    }

    // MARK: - Running

    /// Drives the attempt's ``PerformerConversation``: each action it asks for is done here,
    /// and what came of it goes back in.
    private func perform(
        _ run: @escaping OperationHandler.Run, operation: String, attempt: JobToken, conversation: Int64, peer: JID,
        deadline: ContinuousClock.Instant?, fast: FastAttempt? = nil, trace: TraceCarrier = TraceCarrier()
    ) async {
        let out = outbound(attempt, peer: peer, conversation: conversation)
        let handler = HandlerRun(
            run: run, operation: operation, attempt: attempt, peer: peer, deadline: deadline, fast: fast, out: out, trace: trace)
        var machine = PerformerConversation(job: attempt.job, conversation: conversation, fast: fast != nil)
        var span: (any Span)?
        defer {
            span?.end()
            finished(attempt)
        }
        var next: PerformerConversation.Event? = .begin
        while let event = next {
            next = nil
            for action in machine.handle(event) {
                switch action {
                case .sendAck:
                    next = await deliver(.ack) { try await out.send(.ack(attempt)) }
                case .runHandler:
                    let started = handler.startSpan(tracer: options.tracer)
                    span = started
                    next = await runHandler(handler, span: started)
                case .noteFailure(let description):
                    span?.fail(description)
                    logger.with("job", attempt.job).info("operation failed", metadata: ["error": "\(description)"])
                case .freeSlot(let state):
                    freeSlot(attempt)
                    metrics.finished(operation, state).increment()
                case .finishFast(let end):
                    guard let fast else { break }
                    next = await deliver(.ackOrData) { .fastFinished(inAnswer: try await fast.finish(end)) }
                case .sendEnd(let end, let records):
                    // The end is sent even when the job's task was cancelled.
                    let send = Task { try await out.send(end, onAnswer: records) }
                    next = await deliver(.end) { try await send.value }
                case .reportJournalBroke(let error):
                    await reportJournalBroke(error, attempt: attempt, peer: peer)
                case .endLocally(let reason):
                    await endLocally(attempt, conversation: conversation, reason: reason)
                case .noteInterrupted:
                    logger.info("interrupted by the stop; the conversation resumes at the next start", metadata: ["job": "\(attempt.job)"])
                case .done:
                    break
                }
            }
        }
    }

    /// Runs one send of the conversation; what came of it is the next event.
    private func deliver(_ step: PerformerConversation.Step, _ send: () async throws -> Void) async -> PerformerConversation.Event {
        await deliver(step) { () async throws -> PerformerConversation.Event in
            try await send()
            return .delivered(step)
        }
    }

    private func deliver(
        _ step: PerformerConversation.Step, _ send: () async throws -> PerformerConversation.Event
    ) async -> PerformerConversation.Event {
        do { return try await send() } catch {
            return .sendFailed(step, PerformerConversation.Failure(error), description: "\(error)")
        }
    }

    /// Runs the handler within its deadline; its end as the conversation's next event.
    private func runHandler(_ handler: HandlerRun, span: any Span) async -> PerformerConversation.Event {
        let (attempt, fast, out) = (handler.attempt, handler.fast, handler.out)
        let context = JobContext(
            jobID: attempt.job, attempt: attempt.description, requester: handler.peer, deadline: handler.deadline,
            logger: logger.with("job", attempt.job), span: span,
            progressSink: { progress in
                if let fast { try await fast.emitProgress(progress.chunk) } else { try await out.send(.data(attempt, values: progress.chunk)) }
            })
        let results = ResultStream<AnyEncodableResult>(sink: { values in
            if let fast { try await fast.emit(values) } else { try await out.send(.data(attempt, values: values)) }
        })
        let started = clock.now
        defer { metrics.handlerDuration(handler.operation).recordInterval(since: started, until: clock.now) }
        do {
            try await InstrumentationContext.withValue(span.context) {
                try await Self.withDeadline(handler.deadline, clock: clock) { try await handler.run(context, results) }
            }
            return .handlerEnded(failure: nil, description: "", end: .final(attempt, values: []))
        } catch {
            let end = PerformerEnd.message(
                for: error, attempt: attempt, cancelledBy: attempts.isCancelRequested(attempt.description) ? handler.peer : nil,
                deadlinePassed: error is DeadlineExceeded || (handler.deadline.map { clock.now >= $0 } ?? false), workerStopping: isStopping)
            return .handlerEnded(failure: PerformerConversation.Failure(error), description: "\(error)", end: end)
        }
    }

    /// When `error` is the journal failing (disk full, I/O error), the attempt cannot go on
    /// unrecorded: ``reportJournalBroke(_:attempt:peer:)``, and true.
    private func journalBroke(_ error: any Error, attempt: JobToken, peer: JID) async -> Bool {
        guard case .journalBroke(let journalError) = PerformerConversation.Failure(error) else { return false }
        await reportJournalBroke(journalError, attempt: attempt, peer: peer)
        return true
    }

    /// Logs the journal's failure at error level and counts it; the requester gets an
    /// unjournalled `error` (retryable) so the job moves on instead of waiting on silence.
    private func reportJournalBroke(_ journalError: JournalError, attempt: JobToken, peer: JID) async {
        noteJournalFailure(journalError, "could not journal a step of a job; ending the attempt", job: attempt.job)
        let message = ProtocolMessage.error(attempt, kind: .error, error: VertebraError(.journalFailed, "\(client.jid) could not journal the job: \(journalError.message)"))
        let iq = IQ(type: .set, id: ids.next(), to: peer, payload: message.element)
        do { _ = try await delivery.deliver(iq) } catch {
            logger.error("could not tell the requester that the journal failed", metadata: ["job": "\(attempt.job)", "error": "\(error)"])
        }
    }

    private func refuse(_ attempt: JobToken, conversation: Int64, peer: JID, reason: String) async {
        let nack = ProtocolMessage.nack(attempt, reason: reason)
        let out = outbound(attempt, peer: peer, conversation: conversation)
        do { try await out.send(nack, onAnswer: PerformerEnd.records(nack, job: attempt.job, conversation: conversation)) } catch {
            if await journalBroke(error, attempt: attempt, peer: peer) { return }
            logger.notice("the requester did not take a nack", metadata: ["job": "\(attempt.job)", "error": "\(error)"])
        }
    }

    /// The requester is gone or refused the conversation: record the job's end here.
    private func endLocally(_ attempt: JobToken, conversation: Int64, reason: String) async {
        logger.warning("conversation ended without the requester", metadata: ["job": "\(attempt.job)", "reason": "\(reason)"])
        var records: [JournalRecord] = [.setConversationState(.id(conversation), .failed)]
        do {
            if let job = try await journal.job(attempt.job), job.state.canTransition(to: .failed) {
                records.append(.transition(job: attempt.job, to: .failed, error: reason))
            }
            try await journal.write(records)
        } catch {
            noteJournalFailure(error, "could not journal the local end of a conversation", job: attempt.job)
        }
    }

    /// The handler is over: its slot is free for the next op even while the end is still being
    /// delivered (the coordinator sends the next op as soon as it has the end).
    private func freeSlot(_ attempt: JobToken) {
        attempts.handlerEnded(attempt.description)
        metrics.running.record(attempts.busySlots)
    }

    private func finished(_ attempt: JobToken) {
        attempts.finish(attempt.description)
        metrics.running.record(attempts.busySlots)
    }

    func outbound(_ attempt: JobToken, peer: JID, conversation: Int64) -> OutboundConversation {
        OutboundConversation(
            token: attempt, peer: peer, record: .init(journal: journal, conversation: conversation),
            delivery: delivery, ids: ids, logger: logger)
    }

    private struct DeadlineExceeded: Error {}

    private static func withDeadline(_ deadline: ContinuousClock.Instant?, clock: any RuntimeClock, _ body: @escaping @Sendable () async throws -> Void) async throws {
        guard let deadline else { return try await body() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await clock.sleep(until: deadline)
                throw DeadlineExceeded()
            }
            defer { group.cancelAll() }
            _ = try await group.next()
        }
    }

    // MARK: - Status

    /// Answers the coordinator's status probe for an attempt.
    func status(of attempt: JobToken) async -> AttemptStatus.State {
        if attempts.isRunning(attempt.description) { return .running }
        do {
            guard let conversation = try await journal.conversation(token: attempt.description) else { return .unknown }
            return resuming.contains(conversation.id) ? .running : .ended
        } catch {
            noteJournalFailure(error, "could not read a conversation for a status probe", job: attempt.job)
            return .unknown
        }
    }

    // MARK: - Cancel

    func receiveCancel(_ token: JobToken, request: IQ, from peer: JID) async throws {
        guard peer.bare == options.coordinator.bare || options.authorizedRequesters.contains(where: { $0.bare == peer.bare }) else {
            throw VertebraErrors.notAuthorized("\(peer.bare) may not cancel jobs here")
        }
        guard let task = attempts.requestCancel(token.description) else {
            throw VertebraErrors.unknownConversation(token.description)
        }
        logger.info("cancel requested", metadata: ["job": "\(token.job)", "by": "\(peer)"])
        task.cancel()
    }

    // MARK: - Recovery and replay

    /// The performer conversations a previous run left open. Read before connecting: once
    /// connected, a coordinator that still knows this worker may send new ops at once, and
    /// their conversations are live, not left over.
    func unfinishedConversations() async throws -> [RecoveryItem] {
        try await journal.recoverableConversations().filter { $0.conversation.role == .performer }
    }

    /// Resumes the conversations ``unfinishedConversations()`` found: unacknowledged stanzas are
    /// sent again with their ids; a handler that was running when the worker stopped cannot be
    /// resumed, so its attempt ends with `error` and the coordinator decides about a retry.
    func recover(_ items: [RecoveryItem]) {
        if !items.isEmpty { logger.info("resuming journalled conversations", metadata: ["count": "\(items.count)"]) }
        for item in items {
            guard let token = item.conversation.token.flatMap(JobToken.init), let peer = JID(item.conversation.peer) else { continue }
            tasks.spawn { await self.resume(item, token: token, peer: peer) }
        }
    }

    private func resume(_ item: RecoveryItem, token: JobToken, peer: JID) async {
        let conversation = item.conversation.id
        guard resuming.insert(conversation).inserted else { return }
        defer { resuming.remove(conversation) }
        let out = outbound(token, peer: peer, conversation: conversation)
        var ended = false
        for stanza in item.unacknowledged where stanza.direction == .outbound {
            let message = JournalText.element(stanza.body).flatMap { try? ProtocolMessage($0) }
            let records = message.map { PerformerEnd.records($0, job: token.job, conversation: conversation) } ?? []
            ended = !records.isEmpty
            do { try await out.resend(stanza, onAnswer: records) } catch {
                await endLocally(token, conversation: conversation, reason: "recovery: \(error)")
                return
            }
        }
        guard !ended else { return }
        let lost = ProtocolMessage.error(token, kind: .error, error: VertebraError(.workerLost, "the worker restarted while running the job"))
        do { try await out.send(lost, onAnswer: PerformerEnd.records(lost, job: token.job, conversation: conversation)) } catch {
            if await journalBroke(error, attempt: token, peer: peer) { return }
            logger.warning("could not report a lost attempt after the restart", metadata: ["job": "\(token.job)", "error": "\(error)"])
        }
    }

    /// Sends every outbound stanza of a conversation again, in order (answer to a repeated
    /// `op`); the requester's journal recognises the ones it already has.
    private func replay(conversation: Int64, attempt: JobToken, peer: JID) async {
        guard !attempts.isRunning(attempt.description), resuming.insert(conversation).inserted else { return }
        let stanzas: [VertebraJournal.Stanza]
        do { stanzas = try await journal.stanzas(ofConversation: conversation) } catch {
            resuming.remove(conversation)
            noteJournalFailure(error, "could not read a conversation to replay it", job: attempt.job)
            return
        }
        defer { resuming.remove(conversation) }
        let out = outbound(attempt, peer: peer, conversation: conversation)
        for stanza in stanzas where stanza.direction == .outbound && !FastPath.isInline(stanza.iqID) {
            let message = JournalText.element(stanza.body).flatMap { try? ProtocolMessage($0) }
            let records = message.map { PerformerEnd.records($0, job: attempt.job, conversation: conversation) } ?? []
            do { try await out.resend(stanza, onAnswer: stanza.acked == nil ? records : []) } catch { return }
        }
        // Its end could not be journalled (fast path): the requester hears so again instead of
        // waiting on silence.
        guard unrecordedEnds.contains(conversation), !stanzas.contains(where: Self.isEnd) else { return }
        let lost = ProtocolMessage.error(attempt, kind: .error, error: VertebraError(.journalFailed, "the attempt's end could not be journalled on this worker"))
        do { try await out.send(lost, onAnswer: PerformerEnd.records(lost, job: attempt.job, conversation: conversation)) } catch {
            _ = await journalBroke(error, attempt: attempt, peer: peer)
        }
    }
}

/// What the worker needs to run an attempt's handler.
struct HandlerRun: Sendable {
    let run: OperationHandler.Run
    let operation: String
    let attempt: JobToken
    let peer: JID
    let deadline: ContinuousClock.Instant?
    let fast: FastAttempt?
    let out: OutboundConversation
    let trace: TraceCarrier

    /// The handler's span, a child of the requester's trace context when the `op` carried one.
    func startSpan(tracer: any Tracer) -> any Span {
        let span = tracer.startSpan("vertebra.handler \(operation)", context: trace.context(tracer: tracer), ofKind: .consumer)
        span.attributes["vertebra.job.id"] = attempt.job
        span.attributes["vertebra.attempt"] = attempt.description
        return span
    }
}

extension Logger {
    func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}
