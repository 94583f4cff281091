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
        let open = try await journal.jobs(matching: JobFilter(states: [.pending, .dispatched, .running], limit: Int(Int32.max)))
        if !open.isEmpty { logger.info("resuming unfinished jobs", metadata: ["count": "\(open.count)"]) }
        for job in open { await resume(job) }
        try await finishRelays(skipping: Set(open.map(\.token)))
    }

    /// Submitters whose job ended while the coordinator was down (or just before it stopped)
    /// still get the end: `final` or `error` from the journalled job.
    private func finishRelays(skipping running: Set<String>) async throws {
        for conversation in try await journal.openConversations(role: .performer) where !running.contains(conversation.job) {
            guard let job = try await journal.job(conversation.job), job.state.isTerminal else { continue }
            let (events, continuation) = AsyncStream<JobEvent>.makeStream()
            if job.state == .done {
                continuation.yield(.done)
            } else {
                let error = VertebraError.parse(
                    job.error ?? job.state.rawValue, kind: job.state == .cancelled ? .cancel : .fatal)
                continuation.yield(.failed(error))
            }
            continuation.finish()
            let scope = Scope(rawValue: job.scope.rawValue) ?? .single
            await resumeRelay(conversation, events: events, scope: scope)
        }
    }

    private func resume(_ job: Job) async {
        guard let stored = JournalText.element(job.arguments), case .op(let path, let token, let scope, let arguments)? = try? ProtocolMessage(stored) else {
            _ = try? await journal.write(.transition(job: job.token, to: .failed, error: "failed: the journalled op is unreadable"))
            return
        }
        let extensions = (try? DispatchExtension.parse(stored)) ?? DispatchExtension.Parsed()
        let conversations = (try? await journal.conversations(ofJob: job.token)) ?? []
        var resumes: [ResumeState] = []
        for conversation in conversations where conversation.role == .requester && conversation.isCurrent {
            if let state = await resumeState(conversation) { resumes.append(state) }
        }
        let jobScope = scope ?? .single
        if jobScope == .single, let last = resumes.last { resumes = [last] }
        for index in resumes.indices where resumes[index].ended == nil {
            resumes[index].events = await inbox.open(
                job: job.token, peer: resumes[index].worker, conversation: resumes[index].conversation,
                attempt: resumes[index].token?.attempt)
        }
        let deadline = job.deadline.map { ContinuousClock.now + .milliseconds(Int64(max(0, $0.timeIntervalSinceNow) * 1000)) }
        let op = ProtocolMessage.op(type: path, token: token, scope: jobScope, arguments: arguments).element
        let handle = startLive(
            token: job.token, path: path, op: op, scope: jobScope, targets: extensions.targets, deadline: deadline,
            retryable: extensions.retryable ?? false, resumes: resumes)
        if let relay = conversations.last(where: { $0.role == .performer && $0.state == .open }) {
            await resumeRelay(relay, events: handle.events, scope: jobScope)
        } else {
            tasks.append(Task { for await _ in handle.events {} })
        }
    }

    private func resumeState(_ conversation: Conversation) async -> ResumeState? {
        guard let worker = JID(conversation.peer),
            let stanzas = try? await journal.stanzas(ofConversation: conversation.id),
            let op = stanzas.first(where: { $0.direction == .outbound && $0.kind == .op })
        else { return nil }
        var state = ResumeState(
            worker: worker, conversation: conversation.id, opIQID: op.iqID,
            token: conversation.token.flatMap(JobToken.init), values: [], ended: nil)
        for stanza in stanzas where stanza.direction == .inbound {
            guard let message = JournalText.element(stanza.body).flatMap({ try? ProtocolMessage($0) }) else { continue }
            switch message {
            case .data(_, let values): if JobProgress(chunk: values) == nil { state.values += values }
            case .final(_, let values): state.ended = .done(state.values + values)
            case .nack(_, let reason): state.ended = .refused(reason)
            case .error(_, let kind, let text):
                state.ended = kind == .cancel ? .cancelled(text) : .failed(VertebraError.parse(text, kind: kind), retryable: kind == .error)
            default: continue
            }
        }
        if state.ended == nil && conversation.state != .open {
            state.ended = conversation.state == .cancelled ? .cancelled("cancelled before the restart") : .lost("the attempt ended before the restart")
        }
        return state
    }

    private func resumeRelay(_ conversation: Conversation, events: AsyncStream<JobEvent>, scope: Scope) async {
        guard let peer = JID(conversation.peer), let token = conversation.token.flatMap(JobToken.init),
            let stanzas = try? await journal.stanzas(ofConversation: conversation.id)
        else { return }
        let ackSent = stanzas.contains { $0.direction == .outbound && $0.kind == .ack }
        let unacked = stanzas.filter { $0.direction == .outbound && $0.acked == nil }
        let out = OutboundConversation(
            token: token, peer: peer, record: .init(journal: journal, conversation: conversation.id),
            delivery: Delivery(client: client, answerTimeout: options.answerTimeout, giveUpAfter: options.relayGiveUp, absentPeer: .wait),
            ids: ids, logger: logger)
        let id = conversation.id
        tasks.append(Task {
            for stanza in unacked {
                do { try await out.resend(stanza) } catch { break }
            }
            await self.relay(events, attempt: token, to: peer, conversation: id, scope: scope, ackSent: ackSent)
        })
    }
}
