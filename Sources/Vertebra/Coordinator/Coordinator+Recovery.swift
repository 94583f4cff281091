import Foundation
import Logging
import Natter
import VertebraJournal
import VertebraXML

extension Coordinator {
    /// Resumes every non-terminal job of the journal: open attempts get their `op` again with
    /// its original IQ id (the worker answers as before and replays what it sent); jobs between
    /// attempts are dispatched again; submitters get the rest of their relay.
    func recover() async throws {
        // Oldest first: queued jobs keep their order across the restart. A job submitted in this
        // process while the start was under way (the actor takes calls while it reads the
        // journal) is live already: resuming it too would send its op twice and run it twice.
        let open = try await journal.jobs(matching: JobFilter(states: [.pending, .dispatched, .running], limit: Int(Int32.max)))
            .filter { live[$0.token] == nil }
            .sorted { ($0.created, $0.token) < ($1.created, $1.token) }
        if !open.isEmpty { logger.info("resuming unfinished jobs", metadata: ["count": "\(open.count)"]) }
        holdingSlots = true
        defer {
            holdingSlots = false
            grantSlots()
        }
        for job in open { try await resume(job) }
        try await reapplyCancels()
        try await finishRelays(skipping: Set(open.map(\.token)))
    }

    /// Submitters whose job ended while the coordinator was down (or just before it stopped)
    /// still get the end: `final` or `error` from the journalled job.
    private func finishRelays(skipping running: Set<String>) async throws {
        for conversation in try await journal.openConversations(role: .performer) where !running.contains(conversation.job) {
            guard let job = try await journal.job(conversation.job), job.state.isTerminal else { continue }
            let (events, continuation) = AsyncStream<JobEvent>.makeStream()
            continuation.yield(RecoveryPlan.endOfEndedJob(state: job.state, errorCode: job.errorCode, error: job.error))
            continuation.finish()
            let scope = Scope(rawValue: job.scope.rawValue) ?? .single
            try await resumeRelay(conversation, events: events, scope: scope)
        }
    }

    /// Throws only when the journal cannot be read: resuming on a partial picture could run a
    /// job twice, so the start fails instead.
    private func resume(_ job: Job) async throws {
        let parsed: (XElement, Resource, JobToken, Scope?, [XElement], DispatchExtension.Parsed)
        do {
            guard let stored = JournalText.element(job.arguments), case .op(let path, let token, let scope, let arguments) = try ProtocolMessage(stored) else {
                throw VertebraError(.badRequest, "not an op")
            }
            parsed = (stored, path, token, scope, arguments, try DispatchExtension.parse(stored))
        } catch {
            // Not this binary's own writing: end it with the reason rather than run it changed.
            let reason = VertebraError(.failed, "the journalled op cannot be read back (\(error)); the job was not resumed")
            logger.error("an unfinished job cannot be resumed", metadata: ["job": "\(job.token)", "error": "\(error)"])
            try await journal.write(.transition(job: job.token, to: .failed, error: reason.description, errorCode: reason.code.rawValue))
            return
        }
        let (_, path, token, scope, arguments, extensions) = parsed
        let conversations = try await journal.conversations(ofJob: job.token)
        var resumes: [ResumeState] = []
        for conversation in conversations where conversation.role == .requester && conversation.isCurrent {
            if let state = try await resumeState(conversation) { resumes.append(state) }
        }
        let jobScope = scope ?? .single
        resumes = RecoveryPlan.attemptsToResume(resumes, scope: jobScope)
        for index in resumes.indices where resumes[index].ended == nil {
            registry.adjustOutstanding(resumes[index].worker, by: 1)
            resumes[index].slotCounted = true
            resumes[index].events = await inbox.open(
                job: job.token, peer: resumes[index].worker, conversation: resumes[index].conversation,
                attempt: resumes[index].token?.attempt)
        }
        let now = Date()
        let firstAttempt = conversations.filter { $0.role == .requester }.map(\.created).min()
        let deadline = RecoveryPlan.deadline(
            journalled: job.deadline, duration: extensions.deadline, notBefore: job.notBefore, firstAttempt: firstAttempt, now: now
        ).map { clock.now + RecoveryPlan.timeLeft(until: $0, now: now) }
        let op = ProtocolMessage.op(type: path, token: token, scope: jobScope, arguments: arguments).element
        // The submitter's conversation, and those of submissions that followed it by its key;
        // with none (an in-process, scheduled, batched or detached job), nobody follows it.
        let relays = conversations.filter { $0.role == .performer && $0.state == .open }
        let handle = startLive(
            token: job.token, path: path, op: op, scope: jobScope, targets: extensions.targets, deadline: deadline,
            retryable: extensions.retryable ?? registry.isRetryable(path), resumes: resumes,
            journalState: job.state, attemptsBefore: job.attempts, notBefore: job.notBefore.map { instant(of: $0) }, key: job.key,
            trace: extensions.trace, followed: !relays.isEmpty)
        guard let first = relays.first else { return }
        try await resumeRelay(first, events: handle.events, scope: jobScope)
        for other in relays.dropFirst() {
            if let events = subscribe(job.token, follower: other.token)?.events { try await resumeRelay(other, events: events, scope: jobScope) }
        }
    }

    private func resumeState(_ conversation: Conversation) async throws -> ResumeState? {
        guard let worker = JID(conversation.peer) else { return nil }
        let stanzas = try await journal.stanzas(ofConversation: conversation.id)
        guard let op = stanzas.first(where: { $0.direction == .outbound && $0.kind == .op }) else { return nil }
        let inbound = stanzas.filter { $0.direction == .inbound }.compactMap { JournalText.element($0.body).flatMap { try? ProtocolMessage($0) } }
        let soFar = RecoveryPlan.attemptSoFar(inbound: inbound, conversation: conversation.state)
        return ResumeState(
            worker: worker, conversation: conversation.id, opIQID: op.iqID,
            token: conversation.token.flatMap(JobToken.init), values: soFar.values, ended: soFar.ended)
    }

    private func resumeRelay(_ conversation: Conversation, events: AsyncStream<JobEvent>, scope: Scope) async throws {
        guard let peer = JID(conversation.peer), let token = conversation.token.flatMap(JobToken.init) else { return }
        let stanzas = try await journal.stanzas(ofConversation: conversation.id)
        let ackSent = stanzas.contains { $0.direction == .outbound && $0.kind == .ack }
        let unacked = stanzas.filter { $0.direction == .outbound && $0.acked == nil }
        let out = OutboundConversation(
            token: token, peer: peer, record: .init(journal: journal, conversation: conversation.id),
            delivery: Delivery(client: client, clock: clock, answerTimeout: options.answerTimeout, giveUpAfter: options.relayGiveUp, absentPeer: .wait),
            ids: ids, logger: logger)
        let id = conversation.id
        tasks.spawn {
            for stanza in unacked {
                do { try await out.resend(stanza) } catch { break }
            }
            await self.relay(events, attempt: token, to: peer, conversation: id, scope: scope, ackSent: ackSent)
        }
    }
}
