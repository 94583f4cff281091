import Natter
import VertebraJournal
import VertebraXML

/// The worker's rules for an arriving `op`, without I/O: whether it repeats one already
/// answered, and what accepting it or answering it inline journals. The worker reads the journal
/// (``ExchangeJournal/opArrival(peer:iqID:job:)``), asks here, and writes what it is told.
enum OpAdmission {
    /// An `op` this worker answered before, as the journal has it.
    struct Answered: Equatable, Sendable {
        /// The performer conversation it started.
        var conversation: Int64
        /// The IQ result it was answered with (nil if not journalled).
        var answer: String?
    }

    /// The earlier `op` the arriving one repeats, whose answer it gets again; nil for a new
    /// attempt. A repeat is the same `(peer, IQ id)` (the network or the requester sent it
    /// twice: answered as before, whatever happened since), or the same job from the same peer
    /// with a new IQ id while that attempt still runs here (a peer that re-sent it: the same
    /// attempt). Once that attempt ended (its conversation closed or its end journalled), the
    /// same job again is a new attempt (a retry).
    static func repeated(sameID: Answered?, sameJob: Answered?, sameJobOpen: Bool, sameJobEnded: Bool) -> Answered? {
        if let sameID { return sameID }
        guard let sameJob, sameJobOpen, !sameJobEnded else { return nil }
        return sameJob
    }

    /// What accepting an `op` journals before it is answered or its handler runs: the job
    /// (created `running`, or `pending` when no slot is free and the op will be refused; a
    /// retry of a job known here moves it back to `running` where that is allowed), the
    /// attempt's conversation, and the `op` with the answer it gets.
    static func acceptedRecords(
        op: String, operation: String, token: JobToken, attempt: JobToken, scope: JobScope, peer: String, iqID: String,
        answer: String, busy: Bool, existing: JobState?
    ) -> [JournalRecord] {
        var records: [JournalRecord] = []
        if let existing {
            if !busy, existing.canTransition(to: .running) { records.append(.transition(job: token.job, to: .running)) }
        } else {
            records.append(.createJob(NewJob(
                token: token.job, operation: operation, arguments: op, scope: scope, submitter: peer,
                state: busy ? .pending : .running)))
        }
        records.append(.openConversation(NewConversation(
            job: token.job, token: attempt.description, peer: peer, role: .performer, supersedesOthers: true)))
        records.append(.recordStanza(NewStanza(
            conversation: .opened, direction: .inbound, iqID: iqID, kind: .op, body: op, answer: answer)))
        return records
    }

    /// What a fast-path answer journals before it is sent: each message it carries, as an
    /// outbound stanza answered by that answer, and the attempt's end. The job's row may already
    /// be terminal (an earlier attempt of the same job ended it), so the end moves it only where
    /// allowed.
    static func inlineRecords(
        _ inline: [ProtocolMessage], answer: String, conversation: Int64, attempt: JobToken, opID: String
    ) -> [JournalRecord] {
        var records: [JournalRecord] = inline.enumerated().map { index, message in
            .recordStanza(NewStanza(
                conversation: .id(conversation), direction: .outbound, iqID: FastPath.inlineID(of: opID, index: index),
                kind: message.journalKind, body: JournalText.text(message.element), answer: answer))
        }
        let ending = inline.last.map { PerformerEnd.records($0, job: attempt.job, conversation: conversation) } ?? []
        records += ending.map { record in
            guard case .transition(let job, let state, let result, let error, _, let code) = record else { return record }
            return .transitionIfAllowed(job: job, to: state, result: result, error: error, errorCode: code)
        }
        return records
    }
}

extension OpAdmission {
    /// How a repeated `op` is answered again: the journalled answer, with the conversation's
    /// messages inside it when they went there (fast path: nothing to replay), else alone and
    /// followed by a replay of the conversation.
    struct AnswerAgain {
        var payload: XElement
        var attempt: JobToken
        var replays: Bool
    }

    /// The answer again from the journalled `answer` (an IQ result's text) and the bodies of
    /// the messages journalled as sent inside it (`inline`, in order); nil when the answer is
    /// missing or unreadable.
    static func answerAgain(_ answer: String?, inline bodies: [String]) -> AnswerAgain? {
        guard let answer, let iq = JournalText.element(answer).flatMap(IQ.init), let payload = iq.payload,
            case .accepted(let attempt)? = try? ProtocolMessage(payload)
        else { return nil }
        let inline = bodies.compactMap(JournalText.element)
        guard inline.isEmpty else {
            return AnswerAgain(payload: inline.reduce(payload) { $0.appending($1) }, attempt: attempt, replays: false)
        }
        return AnswerAgain(payload: payload, attempt: attempt, replays: true)
    }
}

extension OpAdmission.Answered {
    /// The inbound `op` stanza as journalled.
    init(_ stanza: VertebraJournal.Stanza) {
        self.init(conversation: stanza.conversation, answer: stanza.answer)
    }
}
