import Foundation
import Logging
import Natter
import VertebraJournal
import VertebraXML

/// How one attempt (one worker's conversation) ended.
enum AttemptOutcome: Sendable {
    case done([XElement])
    /// `nack`, or the worker would not take the `op` (absent, unknown operation, busy).
    case refused(String)
    /// The worker went away for longer than the lease.
    case lost(String)
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
}

extension Coordinator {
    func run(_ token: String, resumes: [ResumeState]) async {
        guard let job = live[token] else { return }
        switch job.scope {
        case .single: await runSingle(token, resume: resumes.first)
        case .all, .direct: await runFanOut(token, resumes: resumes)
        }
    }

    // MARK: - single

    private func runSingle(_ token: String, resume: ResumeState?) async {
        var excluded: Set<JID> = []
        var attempts = max(0, ((try? await journal.job(token))?.attempts ?? 0) - (resume == nil ? 0 : 1))
        var waitingSince = ContinuousClock.now
        var delay = options.retryDelay
        var next = resume
        while let job = live[token] {
            if let reason = job.cancelReason { return await end(token, .cancelled, error: VertebraError(.cancelled, reason)) }
            if let deadline = job.deadline, ContinuousClock.now >= deadline {
                return await end(token, .failed, error: VertebraError(.deadlineExceeded, "the job's deadline passed before it finished"))
            }
            let worker: JID
            if let resumed = next {
                worker = resumed.worker
            } else {
                let capable = registry.capable(of: job.path, now: .now)
                guard let pick = capable.first(where: { !excluded.contains($0.jid) && $0.outstanding < $0.capacity }) else {
                    let settled = ContinuousClock.now - startedAt > options.workerWait
                    if ContinuousClock.now - waitingSince > options.workerWait || (capable.isEmpty && settled) {
                        let error = capable.isEmpty
                            ? VertebraError(.noWorker, "no live worker offers \(job.path)")
                            : VertebraError(.refused, "every worker offering \(job.path) refused or stayed busy for \(options.workerWait)")
                        return await end(token, .failed, error: error)
                    }
                    if !capable.isEmpty && capable.allSatisfy({ excluded.contains($0.jid) }) {
                        await waitForChange(timeout: jittered(delay))
                        delay = min(delay * 2, options.maxRetryDelay)
                        excluded.removeAll()
                    } else {
                        await waitForChange(timeout: .milliseconds(250))
                    }
                    continue
                }
                worker = pick.jid
            }
            let outcome = await runAttempt(token, worker: worker, resume: next)
            next = nil
            switch outcome {
            case .done(let values):
                return await end(token, .done, result: values)
            case .refused(let reason):
                logger.info("worker refused; trying another", metadata: ["job": "\(token)", "worker": "\(worker)", "reason": "\(reason)"])
                excluded.insert(worker)
                if (try? await journal.job(token))?.state == .dispatched { _ = try? await journal.write(.transition(job: token, to: .pending)) }
            case .lost, .failed:
                attempts += 1
                if live[token]?.cancelReason != nil { continue }
                let (error, retryable) = Self.failure(of: outcome)
                guard retryable, job.retryable, attempts < options.maxAttempts else {
                    let why = !retryable ? "" : job.retryable ? "; gave up after \(attempts) attempts" : "; the operation is not retryable"
                    return await end(token, .failed, error: VertebraError(error.code, error.message + why))
                }
                logger.info("attempt failed; retrying", metadata: ["job": "\(token)", "worker": "\(worker)", "reason": "\(error)"])
                excluded.insert(worker)
                try? await Task.sleep(for: jittered(delay))
                delay = min(delay * 2, options.maxRetryDelay)
                waitingSince = .now
            case .cancelled(let reason):
                return await end(token, .cancelled, error: VertebraError(.cancelled, reason))
            case .deadline:
                return await end(token, .failed, error: VertebraError(.deadlineExceeded, "the job's deadline passed on \(worker)"))
            }
        }
    }

    /// The error of a lost or failed attempt, and whether another attempt may help.
    private static func failure(of outcome: AttemptOutcome) -> (VertebraError, Bool) {
        switch outcome {
        case .lost(let reason): (VertebraError(.workerLost, reason), true)
        case .failed(let error, let retryable): (error, retryable || error.code == .workerLost)
        default: (VertebraError(.failed, "unexpected outcome"), false)
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
            workers = job.scope == .direct ? job.targets : registry.capable(of: job.path, now: .now).map(\.jid)
            if workers.isEmpty {
                await waitForChange(timeout: min(options.workerWait, .seconds(5)))
                workers = registry.capable(of: job.path, now: .now).map(\.jid)
            }
        }
        guard !workers.isEmpty else {
            return await end(token, .failed, error: VertebraError(.noWorker, "no worker offers \(job.path)"))
        }
        let outcomes = await withTaskGroup(of: (JID, AttemptOutcome).self) { group in
            for worker in workers {
                let resume = resumes.first { $0.worker == worker }
                group.addTask { (worker, await self.runAttempt(token, worker: worker, resume: resume)) }
            }
            var collected: [(JID, AttemptOutcome)] = []
            for await outcome in group { collected.append(outcome) }
            return collected
        }
        var result: [XElement] = []
        var failures: [String] = []
        var cancelled = false
        for (worker, outcome) in outcomes.sorted(by: { $0.0.description < $1.0.description }) {
            switch outcome {
            case .done(let values):
                result.append(XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "worker")], text: worker.description))
                result += values
            case .cancelled: cancelled = true
            case .refused(let reason), .lost(let reason): failures.append("\(worker): \(reason)")
            case .failed(let error, _): failures.append("\(worker): \(error)")
            case .deadline: failures.append("\(worker): deadline passed")
            }
        }
        if cancelled { return await end(token, .cancelled, error: VertebraError(.cancelled, live[token]?.cancelReason ?? "cancelled")) }
        if failures.isEmpty { return await end(token, .done, result: result) }
        await end(token, .failed, result: result, error: VertebraError(.failed, "\(failures.count) of \(workers.count) workers failed: " + failures.joined(separator: "; ")))
    }

    // MARK: - One attempt

    func runAttempt(_ token: String, worker: JID, resume: ResumeState?) async -> AttemptOutcome {
        if let ended = resume?.ended { return ended }
        guard let job = live[token] else { return .cancelled("the job is gone") }
        // Counted before the first suspension, so concurrent picks see this worker's load.
        registry.adjustOutstanding(worker, by: 1)
        let opened: (conversation: Int64, iqID: String)
        if let resume {
            opened = (resume.conversation, resume.opIQID)
        } else {
            do { opened = try await openAttempt(job, worker: worker) } catch {
                registry.adjustOutstanding(worker, by: -1)
                return .failed(VertebraError(.failed, "could not journal the attempt: \(error)"), retryable: false)
            }
        }
        let events: AsyncStream<InboxEvent>
        if let reopened = resume?.events {
            events = reopened
        } else {
            events = await inbox.open(job: token, peer: worker, conversation: opened.conversation, attempt: resume?.token?.attempt)
        }
        live[token]?.workers.insert(worker)
        emit(token, .dispatched(worker: worker))
        if job.cancelReason != nil { await inbox.inject(.cancelRequested(job.cancelReason ?? ""), job: token, peer: worker) }
        if let known = resume?.token { attemptTokens["\(token)|\(worker)"] = known }
        let ended: AttemptOutcome
        if let early = await sendOp(job, worker: worker, conversation: opened.conversation, iqID: opened.iqID, known: resume?.token) {
            ended = early
        } else {
            ended = await follow(job, worker: worker, events: events, values: resume?.values ?? [])
        }
        attemptTokens["\(token)|\(worker)"] = nil
        await inbox.close(job: token, peer: worker)
        registry.adjustOutstanding(worker, by: -1)
        live[token]?.workers.remove(worker)
        notifyChange()
        _ = try? await journal.write(.setConversationState(.id(opened.conversation), ended.conversationState))
        return ended
    }

    private func openAttempt(_ job: LiveJob, worker: JID) async throws -> (Int64, String) {
        let iqID = ids.next()
        var records: [JournalRecord] = [
            .openConversation(NewConversation(
                job: job.token, peer: worker.description, role: .requester, supersedesOthers: job.scope == .single)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: iqID, kind: .op, body: JournalText.text(job.op))),
        ]
        let state = try await journal.job(job.token)?.state
        if job.scope == .single || state == .pending { records.append(.transition(job: job.token, to: .dispatched)) }
        let outcomes = try await journal.write(records)
        for case .conversation(let id) in outcomes { return (id, iqID) }
        throw VertebraError(.failed, "the journal returned no conversation")
    }

    /// Sends the `op` (again, with its id, when resuming) and records the attempt's token.
    /// Returns an outcome only when the attempt is over before it started.
    private func sendOp(_ job: LiveJob, worker: JID, conversation: Int64, iqID: String, known: JobToken?) async -> AttemptOutcome? {
        let delivery = Delivery(
            client: client, answerTimeout: options.answerTimeout,
            giveUpAfter: known == nil ? options.answerTimeout * 2 : options.lease, absentPeer: .fail)
        let answer: IQ
        do {
            answer = try await delivery.deliver(IQ(type: .set, id: iqID, to: worker, payload: job.op))
        } catch {
            guard let stanzaError = error.peerStanzaError else {
                return known == nil ? .refused("no answer from \(worker): \(error)") : .lost("\(worker) did not answer after the restart: \(error)")
            }
            if stanzaError.condition == "bad-request" {
                return .failed(VertebraError(.badRequest, "\(worker): \(stanzaError.text ?? "bad request")"), retryable: false)
            }
            return .refused("\(worker) answered \(stanzaError)")
        }
        guard let payload = answer.payload, case .accepted(let token)? = try? ProtocolMessage(payload),
            token.job == job.token, token.attempt != nil
        else {
            return .refused("\(worker) answered the op without a token A:B")
        }
        if let known, known != token { return .lost("\(worker) answered with another attempt after the restart") }
        var records: [JournalRecord] = [.acknowledge(
            .iq(peer: worker.description, iqID: iqID, direction: .outbound), answer: JournalText.text(answer.element))]
        if known == nil { records.insert(.nameConversation(.id(conversation), token: token.description), at: 0) }
        do { _ = try await journal.write(records) } catch let error as JournalError where error.code == .duplicateConversation {
            return .refused("\(worker) answered with an attempt token already used")
        } catch {
            return .failed(VertebraError(.failed, "could not journal \(worker)'s answer: \(error)"), retryable: false)
        }
        await inbox.name(job: job.token, peer: worker, attempt: token.attempt)
        attemptTokens["\(job.token)|\(worker)"] = token
        return nil
    }

    private func follow(_ job: LiveJob, worker: JID, events: AsyncStream<InboxEvent>, values start: [XElement]) async -> AttemptOutcome {
        var values = start
        var leaseTimer: Task<Void, Never>?
        var cancelSent = false
        let token = job.token
        let inbox = self.inbox
        let deadlineTimer = job.deadline.map { deadline in
            Task {
                try? await Task.sleep(until: deadline)
                if !Task.isCancelled { await inbox.inject(.deadlineExceeded, job: token, peer: worker) }
            }
        }
        // Presence is the fast signal that a worker went away; a ping every lease period is the
        // fallback for a presence that never comes (a server that lost it, a worker that did
        // not send it).
        let client = self.client
        let lease = options.lease
        let prober = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: lease)
                // Only the server saying "no such recipient" counts; while we are cut off
                // ourselves, nothing is known about the worker.
                guard !Task.isCancelled, await client.isConnected else { continue }
                let ping = IQ(type: .get, id: "", to: worker, payload: XElement("ping", namespace: XMPPNamespace.ping))
                do {
                    _ = try await client.sendAndWait(ping, timeout: lease)
                    await inbox.inject(.peerBack, job: token, peer: worker)
                } catch let error as NatterError where error.stanzaError?.meansRecipientGone ?? false {
                    await inbox.inject(.peerGone, job: token, peer: worker)
                } catch {}
            }
        }
        defer {
            leaseTimer?.cancel()
            deadlineTimer?.cancel()
            prober.cancel()
        }
        func startLease() {
            leaseTimer?.cancel()
            leaseTimer = Task {
                try? await Task.sleep(for: lease)
                if !Task.isCancelled { await inbox.inject(.leaseExpired, job: token, peer: worker) }
            }
        }
        for await event in events {
            switch event {
            case .message(.ack):
                await markRunning(token, worker: worker)
            case .message(.data(_, let chunk)):
                if let progress = JobProgress(chunk: chunk) {
                    emit(token, .progress(worker: worker, progress))
                } else {
                    values += chunk
                    emit(token, .data(worker: worker, values: chunk))
                }
            case .message(.final(_, let last)):
                if !last.isEmpty { emit(token, .data(worker: worker, values: last)) }
                return .done(values + last)
            case .message(.nack(_, let reason)):
                return .refused(reason)
            case .message(.error(_, let kind, let text)):
                if kind == .cancel { return .cancelled(text) }
                let error = VertebraError.parse(text, kind: kind)
                return .failed(error, retryable: kind == .error)
            case .message:
                continue
            case .peerGone:
                if leaseTimer == nil { startLease() }
            case .peerBack:
                leaseTimer?.cancel()
                leaseTimer = nil
            case .leaseExpired:
                if cancelSent { return .cancelled(live[token]?.cancelReason ?? "cancelled") }
                return .lost("\(worker) went away and did not come back within the lease (\(lease))")
            case .deadlineExceeded:
                sendCancel(job, worker: worker)
                return .deadline
            case .cancelRequested:
                guard !cancelSent else { continue }
                cancelSent = true
                sendCancel(job, worker: worker)
                startLease()
            }
        }
        return .lost("the attempt's mailbox closed")
    }

    private func markRunning(_ token: String, worker: JID) async {
        emit(token, .running(worker: worker))
        guard let state = try? await journal.job(token)?.state, state == .dispatched || state == .pending else { return }
        _ = try? await journal.write(.transition(job: token, to: .running))
    }

    private func sendCancel(_ job: LiveJob, worker: JID) {
        guard let attempt = currentAttemptToken(job.token, worker: worker) else { return }
        let request = IQ(type: .set, id: ids.next(), to: worker, payload: ProtocolMessage.cancel(attempt).element)
        let client = self.client
        Task { _ = try? await client.sendAndWait(request, timeout: .seconds(5)) }
    }

    private func currentAttemptToken(_ job: String, worker: JID) -> JobToken? {
        attemptTokens["\(job)|\(worker)"]
    }
}
