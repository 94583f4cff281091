import Natter
import VertebraJournal
import VertebraXML

/// Both ends of the relay conversation (coordinator → submitter), without I/O: which message a
/// job event travels as, and which events a submitter reports for a message. `Coordinator.relay`
/// and `Submitter.submit` drive them; the tests check that a submitter sees what the
/// coordinator's own listeners see.
enum JobRelay {
    /// The relay message for `event` and what its answer makes durable; nil for events a
    /// submitter is not sent (`dispatched`, `running`).
    static func message(for event: JobEvent, attempt: JobToken, scope: Scope, conversation: Int64) -> (ProtocolMessage, [JournalRecord])? {
        switch event {
        case .data(let worker, let values):
            // For `all`/`direct`, each chunk is prefixed with the worker that sent it.
            let chunk = scope == .single
                ? values
                : [XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "worker")], text: worker.description)] + values
            return (.data(attempt, values: chunk), [])
        case .progress(_, let progress):
            return (.data(attempt, values: progress.chunk), [])
        case .done:
            return (.final(attempt, values: []), [.setConversationState(.id(conversation), .finished)])
        case .failed(let error):
            let kind: ProtocolMessage.ErrorKind = error.code == .cancelled ? .cancel : .fatal
            return (.error(attempt, kind: kind, error: error), [.setConversationState(.id(conversation), kind == .cancel ? .cancelled : .failed)])
        case .dispatched, .running:
            return nil
        }
    }

    /// What a submitter reports for a relay `message`, and whether the job ended with it.
    static func events(for message: ProtocolMessage) -> (events: [Submitter.Event], ends: Bool) {
        switch message {
        case .data(_, let values):
            return ([JobProgress(chunk: values).map { .progress($0) } ?? .data(values)], false)
        case .final(_, let values):
            return ((values.isEmpty ? [] : [.data(values)]) + [.done], true)
        case .nack(_, let reason):
            return ([.failed(VertebraError(.refused, reason))], true)
        case .error(_, _, let error):
            return ([.failed(error)], true)
        default:
            return ([], false)
        }
    }
}
