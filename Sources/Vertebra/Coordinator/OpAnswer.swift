import Natter
import VertebraJournal
import VertebraXML

/// The coordinator's reading of how an `op` went, without I/O: whether the attempt is over
/// before it ran, or runs as which token `A:B`, and what that journals. `Coordinator.sendOp`
/// delivers the `op`, asks here and does what it is told; the tests ask directly.
enum OpAnswer {
    /// How the delivery of the `op` ended.
    enum Delivered {
        /// The worker's answer.
        case answered(IQ)
        /// No answer (`error`); `heard` is the attempt the worker's own messages named meanwhile.
        case failed(any Error, heard: JobToken?)
    }

    enum Verdict {
        /// The attempt is over before it ran.
        case over(AttemptOutcome)
        /// It runs as `token`: journal `records` (not awaited) and follow its mailbox.
        case running(JobToken, records: [JournalRecord])
        /// Fast path: the whole conversation came inside the answer: journal `records` (not
        /// awaited) and take `messages` as if they had come one by one.
        case inline(JobToken, records: [JournalRecord], messages: [ProtocolMessage])
    }

    /// The `op` of `attempt`, sent with IQ id `attempt.iqID`.
    struct Attempt {
        var job: String
        var worker: JID
        /// The attempt's conversation in the journal.
        var conversation: Int64
        /// The journalled `op`, to mark answered.
        var op: StanzaRef
        var iqID: String
        /// The token the journal knows for a resumed attempt (nil for a new one).
        var known: JobToken?
    }

    /// What `delivered` means for `attempt`; `stopping`: the coordinator is stopping.
    static func judge(_ delivered: Delivered, for attempt: Attempt, stopping: Bool) -> Verdict {
        let worker = attempt.worker
        let answer: IQ
        switch delivered {
        case .failed(let error, let heard):
            if error is CancellationError || stopping { return .over(.interrupted) }
            if let stanzaError = error.peerStanzaError {
                if stanzaError.condition == .badRequest {
                    return .over(.failed(VertebraError(.badRequest, "\(worker): \(stanzaError.text ?? "bad request")"), retryable: false))
                }
                // The op as sent cannot be taken (too large for the server, malformed): no
                // other worker would take it either.
                if stanzaError.type == .modify {
                    return .over(.failed(VertebraError(.refused, "the op could not be delivered to \(worker): \(stanzaError)"), retryable: false))
                }
                return .over(.refused("\(worker) answered \(stanzaError)"))
            }
            // The answer was lost, but the worker's own messages show it took the op: abandoning
            // the attempt now would leave it running unseen (and a later op would replay it).
            guard attempt.known == nil, let heard else {
                // No answer at all: the worker may have taken the op (its answer lost or too large
                // to deliver), so this is no refusal: another worker gets the job only if it may
                // be retried, and the attempt counts.
                return .over(attempt.known == nil
                    ? .silent("no answer from \(worker) to the op: \(error)") : .lost("\(worker) did not answer after the restart: \(error)"))
            }
            guard heard.attempt != nil else { return .over(.silent("no answer from \(worker) to the op, and its messages carry no token A:B")) }
            return .running(heard, records: [.nameConversation(.id(attempt.conversation), token: heard.description)])
        case .answered(let iq):
            answer = iq
        }
        guard let payload = answer.payload, case .accepted(let token)? = try? ProtocolMessage(payload),
            token.job == attempt.job, token.attempt != nil
        else {
            return .over(.refused("\(worker) answered the op without a token A:B"))
        }
        let inline: [ProtocolMessage]
        do { inline = try FastPath.inlineMessages(in: payload, attempt: token) } catch {
            return .over(.failed(VertebraError(.badResult, "\(worker) answered the op with a broken inline conversation: \(error)"), retryable: false))
        }
        if let known = attempt.known, known != token { return .over(.lost("\(worker) answered with another attempt after the restart")) }
        var records: [JournalRecord] = []
        if attempt.known == nil { records.append(.nameConversation(.id(attempt.conversation), token: token.description)) }
        records.append(.acknowledge(attempt.op, answer: JournalText.text(answer.element)))
        guard !inline.isEmpty else { return .running(token, records: records) }
        // Journalled like inbound messages; if they are lost, recovery sends the op again and
        // the worker answers the same from its journal.
        for (index, message) in inline.enumerated() {
            records.append(.recordStanza(NewStanza(
                conversation: .id(attempt.conversation), direction: .inbound, iqID: FastPath.inlineID(of: attempt.iqID, index: index),
                kind: message.journalKind, body: JournalText.text(message.element))))
        }
        return .inline(token, records: records, messages: inline)
    }
}
