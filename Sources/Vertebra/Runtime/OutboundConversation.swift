import Foundation
import Logging
import Natter
import VertebraJournal
import VertebraXML

/// The performer's side of one conversation: sends `ack`, `data`…, `final` (or `nack`/`error`)
/// one at a time, in order. Each stanza is journalled before it is sent (write-ahead) and marked
/// acknowledged when the requester answers; a lost answer is retried with the same IQ id.
actor OutboundConversation {
    /// Why a conversation stopped before its end was delivered.
    struct Refused: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The server would not deliver one message as sent (too large for it): the peer is there
    /// and the conversation goes on; the caller says something else instead.
    struct Undeliverable: Error, CustomStringConvertible {
        let message: String
        let refusal: StanzaError
        var description: String { "the server would not deliver \(message): \(refusal)" }
    }

    let token: JobToken
    let peer: JID
    private let record: Record?
    private let delivery: Delivery
    private let ids: StanzaIDs
    private let logger: Logger
    private(set) var isOver = false

    /// Where the conversation is journalled (nil for unjournalled service operations).
    struct Record: Sendable {
        let journal: ExchangeJournal
        let conversation: Int64
    }

    init(token: JobToken, peer: JID, record: Record?, delivery: Delivery, ids: StanzaIDs, logger: Logger) {
        self.token = token
        self.peer = peer
        self.record = record
        self.delivery = delivery
        self.ids = ids
        self.logger = logger
    }

    /// Sends `message` and waits for its answer. `onAnswer` records are journalled together with
    /// the acknowledgement (e.g. the job's end with its `final`). Throws ``Refused`` when the
    /// requester refuses the conversation or cannot be reached until delivery gives up.
    func send(_ message: ProtocolMessage, onAnswer: [JournalRecord] = []) async throws {
        guard !isOver else { throw Refused(reason: "the conversation \(token) is over") }
        let iqID = ids.next()
        let body = JournalText.text(message.element)
        if let record {
            let stanza = JournalRecord.recordStanza(NewStanza(
                conversation: .id(record.conversation), direction: .outbound, iqID: iqID,
                kind: message.journalKind, body: body))
            if case .ack = message {
                // An ack carries nothing to keep (DESIGN 5.1): queued, not awaited. A later
                // data or final commits after it.
                record.journal.writeLater([stanza], onFailure: journalFailureReporter)
            } else {
                _ = try await record.journal.write(stanza)
            }
        }
        try await deliver(iqID: iqID, payload: message.element, onAnswer: onAnswer)
    }

    /// Sends a stanza journalled earlier (recovery and replay), with its original IQ id.
    func resend(_ stanza: VertebraJournal.Stanza, onAnswer: [JournalRecord] = []) async throws {
        guard let payload = JournalText.element(stanza.body) else {
            throw Refused(reason: "journalled stanza \(stanza.iqID) is not XML")
        }
        try await deliver(iqID: stanza.iqID, payload: payload, onAnswer: onAnswer)
    }

    private func deliver(iqID: String, payload: XElement, onAnswer: [JournalRecord]) async throws {
        let answer: IQ
        do {
            answer = try await delivery.deliver(IQ(type: .set, id: iqID, to: peer, payload: payload))
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as NatterError where error.code == .shutDown {
            // Our own client stopped (a graceful stop): the conversation is interrupted, not
            // over; the next start resumes it from the journal.
            throw CancellationError()
        } catch let error where error.peerStanzaError?.type == .modify && error.peerStanzaError?.condition != .badRequest {
            throw Undeliverable(message: payload.name, refusal: error.peerStanzaError ?? .badRequest())
        } catch {
            isOver = true
            logger.warning("requester refused or unreachable; conversation over", metadata: [
                "token": "\(token)", "peer": "\(peer)", "error": "\(error)"])
            if let record {
                _ = try? await record.journal.write(.setConversationState(.id(record.conversation), .failed))
            }
            throw Refused(reason: "\(peer) did not take \(payload.name) of \(token): \(error)")
        }
        guard let record else { return }
        let acknowledge = JournalRecord.acknowledge(
            .iq(peer: peer.description, iqID: iqID, direction: .outbound), answer: JournalText.text(answer.element))
        // Not awaited (DESIGN 5.1): if it is lost, recovery sends the stanza again with its id and
        // the requester answers it from its journal; `onAnswer` (the job's end after `final`) is
        // implied by the journalled end.
        // One write each, so that a record the journal refuses (the job already ended here in
        // an earlier attempt) does not take the others with it.
        for item in [acknowledge] + onAnswer {
            record.journal.writeLater([item], onFailure: journalFailureReporter)
        }
    }

    /// Reports a queued write that failed to commit (a rule violation is a race the journal
    /// settled, and is not reported).
    private var journalFailureReporter: @Sendable (any Error) -> Void {
        let logger = logger
        let token = token
        return { error in
            if let journalError = error as? JournalError, journalError.code.isRuleViolation { return }
            logger.error("could not journal a step of a conversation", metadata: ["token": "\(token)", "error": "\(error)"])
        }
    }
}

extension ProtocolMessage {
    /// The journal's name for this element.
    var journalKind: VertebraJournal.StanzaKind {
        switch self {
        case .op, .accepted: .op
        case .ack: .ack
        case .nack: .nack
        case .data: .data
        case .final: .final
        case .error: .error
        case .cancel: .cancel
        }
    }
}
