import Natter
import VertebraJournal

/// How a worker ends an attempt, without I/O: the message a handler's error becomes, and what
/// the end makes durable once the requester acknowledged it.
enum PerformerEnd {
    /// The `error` message for a handler that threw `error`. A cancel the requester asked for
    /// wins, then a deadline that passed, then the worker's stop (`worker-lost`: the
    /// coordinator retries a retryable job elsewhere at once); an ``OperationFailure`` says
    /// whether a retry may help; anything else is retryable.
    static func message(
        for error: any Error, attempt: JobToken, cancelledBy requester: JID?, deadlinePassed: Bool, workerStopping: Bool = false
    ) -> ProtocolMessage {
        if let requester {
            return .error(attempt, kind: .cancel, error: VertebraError(.cancelled, "by \(requester)"))
        }
        if deadlinePassed {
            return .error(attempt, kind: .fatal, error: VertebraError(.deadlineExceeded, "the operation's deadline passed"))
        }
        if workerStopping && error is CancellationError {
            return .error(attempt, kind: .error, error: VertebraError(.workerLost, "the worker stopped before the operation finished"))
        }
        if let failure = error as? OperationFailure {
            return .error(attempt, kind: failure.fatal ? .fatal : .error, error: VertebraError(.failed, failure.message))
        }
        return .error(attempt, kind: .error, error: VertebraError(.failed, "\(error)"))
    }

    /// What ending a conversation with `message` writes, once the requester acknowledged it
    /// (nothing for a message that does not end it).
    static func records(_ message: ProtocolMessage, job: String, conversation: Int64) -> [JournalRecord] {
        let ref = ConversationRef.id(conversation)
        switch message {
        case .final:
            return [.setConversationState(ref, .finished), .transition(job: job, to: .done)]
        case .error(_, let kind, let error):
            let state: JobState = kind == .cancel ? .cancelled : .failed
            return [
                .setConversationState(ref, kind == .cancel ? .cancelled : .failed),
                .transition(job: job, to: state, error: error.description, errorCode: error.code.rawValue),
            ]
        case .nack(_, let reason):
            let refusal = VertebraError(.refused, reason)
            return [
                .setConversationState(ref, .failed),
                .transition(job: job, to: .failed, error: refusal.description, errorCode: refusal.code.rawValue),
            ]
        default:
            return []
        }
    }

    /// The `state` label of `vertebra_worker_jobs_total` for an attempt that ends with `message`.
    static func metricState(_ message: ProtocolMessage) -> String {
        switch message {
        case .final: "done"
        case .error(_, let kind, _): kind == .cancel ? "cancelled" : "failed"
        default: "failed"
        }
    }
}
