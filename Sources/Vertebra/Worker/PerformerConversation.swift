import Natter
import VertebraJournal

/// The worker's side of one accepted attempt as a state machine without I/O, clock or Tasks:
/// what happened goes in (a send delivered or failed, the handler's end), the actions the worker
/// must take come out, in order. `Worker.perform` drives it; the tests drive it directly.
///
/// Classic: `ack`, the handler, then its end. On the fast path (``FastAnswer``) the `ack` waits:
/// the handler runs at once and its end goes to the fast attempt, which either carries it in the
/// answer to the `op` or turns classic, and then the end is sent as usual.
struct PerformerConversation {
    /// A send of the conversation.
    enum Step: Equatable, Sendable {
        case ack
        /// The fast attempt's sends: the `ack` and chunks collected while the budget ran.
        case ackOrData
        case end

        var what: String {
            switch self {
            case .ack: "the ack"
            case .ackOrData: "the ack or a data"
            case .end: "the end"
            }
        }
    }

    /// Why a send failed or a handler threw, as far as the conversation cares.
    enum Failure: Equatable, Sendable {
        /// The journal failed (disk full, I/O error): the attempt cannot go on unrecorded.
        case journalBroke(JournalError)
        /// Our own stop cut a send off: the journalled stanzas go out again at the next start.
        case interrupted
        /// The requester refused the conversation (a handler's sink says so).
        case refused(reason: String)
        /// Anything else, described.
        case other(String)

        init(_ error: any Error) {
            if let journal = error as? JournalError, !journal.code.isRuleViolation {
                self = .journalBroke(journal)
            } else if error is CancellationError {
                self = .interrupted
            } else if let refused = error as? OutboundConversation.Refused {
                self = .refused(reason: refused.reason)
            } else {
                self = .other("\(error)")
            }
        }
    }

    enum Event: Sendable {
        case begin
        case delivered(Step)
        case sendFailed(Step, Failure, description: String)
        /// The handler returned (`failure` nil) or threw (`description` says what); `end` is the
        /// message that means (``PerformerEnd/message(for:attempt:cancelledBy:deadlinePassed:workerStopping:)``).
        case handlerEnded(failure: Failure?, description: String, end: ProtocolMessage)
        /// The fast attempt took the end: in the answer to the `op`, or not (classic).
        case fastFinished(inAnswer: Bool)
    }

    enum Action: Sendable {
        case sendAck
        case runHandler
        /// The handler failed as usual: its span and the log say so.
        case noteFailure(String)
        /// The handler is over: its slot is free; count the attempt by the state it ends in.
        case freeSlot(metricState: String)
        /// Hand the end to the fast attempt.
        case finishFast(ProtocolMessage)
        /// Send the end; `records` are made durable when the requester acknowledges it.
        case sendEnd(ProtocolMessage, records: [JournalRecord])
        /// Log and count the journal's failure, and tell the requester (unjournalled).
        case reportJournalBroke(JournalError)
        /// Record the job's end here: the requester is gone or refused the conversation.
        case endLocally(reason: String)
        case noteInterrupted
        case done
    }

    let job: String
    let conversation: Int64
    let fast: Bool
    private var end: ProtocolMessage?
    private(set) var isDone = false

    init(job: String, conversation: Int64, fast: Bool) {
        self.job = job
        self.conversation = conversation
        self.fast = fast
    }

    /// What to do about `event`. Nothing once the conversation is done.
    mutating func handle(_ event: Event) -> [Action] {
        guard !isDone else { return [] }
        switch event {
        case .begin:
            // On the fast path the `ack` goes out only if the attempt turns classic.
            return [fast ? .runHandler : .sendAck]
        case .delivered(.ack), .delivered(.ackOrData):
            return [.runHandler]
        case .delivered(.end):
            return finish([])
        case .sendFailed(let step, let failure, let description):
            return finish(afterFailed: step, failure, description)
        case .handlerEnded(let failure, let description, let message):
            return handlerEnded(failure, description, message)
        case .fastFinished(let inAnswer):
            guard let end, !inAnswer else { return finish([]) }
            return [.sendEnd(end, records: PerformerEnd.records(end, job: job, conversation: conversation))]
        }
    }

    private mutating func handlerEnded(_ failure: Failure?, _ description: String, _ message: ProtocolMessage) -> [Action] {
        var actions: [Action] = []
        switch failure {
        case .refused(let reason)?:
            return finish([.endLocally(reason: reason)])
        case .journalBroke(let error)?:
            return finish([.reportJournalBroke(error)])
        case .interrupted?, .other?:
            actions.append(.noteFailure(description))
        case nil:
            break
        }
        end = message
        actions.append(.freeSlot(metricState: PerformerEnd.metricState(message)))
        if fast { return actions + [.finishFast(message)] }
        return actions + [.sendEnd(message, records: PerformerEnd.records(message, job: job, conversation: conversation))]
    }

    /// A send failed: the journal broke (the requester hears so), our stop interrupted it (the
    /// conversation resumes at the next start), or the requester did not take it (the end is
    /// recorded here).
    private mutating func finish(afterFailed step: Step, _ failure: Failure, _ description: String) -> [Action] {
        switch failure {
        case .journalBroke(let error): finish([.reportJournalBroke(error)])
        case .interrupted: finish([.noteInterrupted])
        case .refused, .other: finish([.endLocally(reason: "the requester did not take \(step.what): \(description)")])
        }
    }

    private mutating func finish(_ actions: [Action]) -> [Action] {
        isDone = true
        return actions + [.done]
    }
}
