import Foundation
import Logging
import Natter
import VertebraJournal
import VertebraXML

extension Coordinator {
    /// Relays a job's events to the submitter that sent the `op`: `ack`, `data` per chunk
    /// (prefixed with `<string name='worker'>` for `all`/`direct`), then `final` or `error`.
    /// A submitter that goes away stops the relay, not the job.
    func relay(
        _ events: AsyncStream<JobEvent>, attempt: JobToken, to peer: JID, conversation: Int64, scope: Scope,
        ackSent: Bool = false
    ) async {
        let out = OutboundConversation(
            token: attempt, peer: peer, record: .init(journal: journal, conversation: conversation),
            delivery: Delivery(client: client, clock: clock, answerTimeout: options.answerTimeout, giveUpAfter: options.relayGiveUp, absentPeer: .wait),
            ids: ids, logger: logger)
        let sender = RelaySender(out: out, conversation: conversation, logger: logger)
        if !ackSent { await sender.send(.ack(attempt)) }
        for await event in events {
            guard let (message, records) = JobRelay.message(for: event, attempt: attempt, scope: scope, conversation: conversation) else { continue }
            await sender.send(message, onAnswer: records)
        }
    }
}

/// Sends relay stanzas until the submitter stops answering.
private actor RelaySender {
    let out: OutboundConversation
    let conversation: Int64
    let logger: Logger
    private var reachable = true

    init(out: OutboundConversation, conversation: Int64, logger: Logger) {
        self.out = out
        self.conversation = conversation
        self.logger = logger
    }

    func send(_ message: ProtocolMessage, onAnswer: [JournalRecord] = []) async {
        guard reachable else { return }
        do { try await out.send(message, onAnswer: onAnswer) } catch {
            reachable = false
            if let undeliverable = error as? OutboundConversation.Undeliverable {
                return await tellUndeliverable(message, undeliverable.refusal)
            }
            logger.notice("submitter gone; the job goes on without it", metadata: [
                "submitter": "\(out.peer)", "job": "\(out.token.job)"])
        }
    }

    /// A message the server would not deliver as sent (a result too large for it): the relay
    /// ends with an `error` saying where the job is, instead of leaving the submitter waiting
    /// for an end that cannot come.
    private func tellUndeliverable(_ message: ProtocolMessage, _ refusal: StanzaError) async {
        let job = out.token.job
        logger.warning("a relay message could not be delivered; the submitter is told", metadata: [
            "submitter": "\(out.peer)", "job": "\(job)", "error": "\(refusal)"])
        let error = VertebraError(
            .badResult, "the job's \(message.element.name) could not be relayed to you (\(refusal)); "
                + "the coordinator's journal has the job and its result: vertebra jobs show \(job)")
        let end = ProtocolMessage.error(out.token, kind: .fatal, error: error)
        do { try await out.send(end, onAnswer: [.setConversationState(.id(conversation), .failed)]) } catch {
            logger.notice("submitter gone; the job goes on without it", metadata: ["submitter": "\(out.peer)", "job": "\(job)"])
        }
    }
}
