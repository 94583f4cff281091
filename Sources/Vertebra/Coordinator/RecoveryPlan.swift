import Foundation
import VertebraJournal
import VertebraXML

/// The coordinator's rules for picking up the journal after a restart, without I/O: how far each
/// journalled attempt got, which attempts of a job resume, what the submitter of a job that ended
/// meanwhile hears, and how much of a job's deadline is left. ``Coordinator/recover()`` reads the
/// journal, asks here, and resumes what it is told.
enum RecoveryPlan {
    /// How far an attempt got, from the messages its worker sent (journalled inbound, in order)
    /// and its conversation's state: the results so far, and its end if it ended. A conversation
    /// closed without an end from the worker was cancelled or lost before the restart.
    static func attemptSoFar(inbound: [ProtocolMessage], conversation: ConversationState) -> (values: [XElement], ended: AttemptOutcome?) {
        var values: [XElement] = []
        var ended: AttemptOutcome?
        for message in inbound {
            switch message {
            case .data(_, let chunk): if JobProgress(chunk: chunk) == nil { values += chunk }
            case .final(_, let chunk): ended = .done(values + chunk)
            case .nack(_, let reason): ended = .refused(reason)
            case .error(_, let kind, let error):
                ended = kind == .cancel ? .cancelled(error.message) : .failed(error, retryable: kind == .error)
            default: continue
            }
        }
        if ended == nil && conversation != .open {
            ended = conversation == .cancelled ? .cancelled("cancelled before the restart") : .lost("the attempt ended before the restart")
        }
        return (values, ended)
    }

    /// The current attempts of a job that resume (oldest first): every worker's part of a
    /// fan-out; of a single job only the last one.
    static func attemptsToResume<Attempt>(_ attempts: [Attempt], scope: Scope) -> [Attempt] {
        guard scope == .single, let last = attempts.last else { return attempts }
        return [last]
    }

    /// What the submitter of a job that ended while the coordinator was down (or as it stopped)
    /// is told: `done`, or the journalled error (its code is data since schema 5; an older row's
    /// message starts with it).
    static func endOfEndedJob(state: JobState, errorCode: String?, error: String?) -> JobEvent {
        if state == .done { return .done }
        return .failed(VertebraError(
            wireCode: errorCode, message: error ?? state.rawValue, kind: state == .cancelled ? .cancel : .fatal))
    }

    /// A job's deadline counts from its start. For a delayed job the journal holds its delay's
    /// end plus the deadline; when it started late (the coordinator was down at its time), or
    /// has not started yet, the deadline counts from its first attempt (`firstAttempt`), or
    /// from `now` when it starts now: a job whose time passed meanwhile still gets its run.
    static func deadline(journalled: Date?, duration: Duration?, notBefore: Date?, firstAttempt: Date?, now: Date) -> Date? {
        guard let journalled, let notBefore, let duration else { return journalled }
        let start = firstAttempt ?? max(notBefore, now)
        return max(journalled, start.addingTimeInterval(Submission.seconds(duration)))
    }

    /// The time left until a journalled deadline, at least zero and at most the longest
    /// deadline a dispatch may ask for: a journal from elsewhere cannot make the conversion trap.
    static func timeLeft(until deadline: Date, now: Date) -> Duration {
        let seconds = deadline.timeIntervalSince(now)
        guard !seconds.isNaN, seconds > 0 else { return .zero }
        return .milliseconds(Int64(min(seconds, DispatchExtension.maxDeadlineSeconds) * 1000))
    }
}
