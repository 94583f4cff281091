import Natter
import VertebraXML

/// The requester's side of one attempt as a state machine without I/O, clock or Tasks: each
/// event of the attempt's mailbox goes in, the actions the coordinator must take come out.
/// `Coordinator.follow` drives it (journal, timers, stanzas); the tests drive it directly.
struct AttemptFollower {
    enum Action: Sendable {
        /// Tell the job's listeners.
        case report(JobEvent)
        /// The worker acknowledged the attempt: it runs (journalled once per job).
        case acknowledged
        /// Start (or restart) the lease: the attempt is lost if it runs out.
        case startLease
        case stopLease
        /// Ask the worker to cancel the attempt.
        case sendCancel
        /// The attempt is over.
        case end(AttemptOutcome)
    }

    let worker: JID
    let lease: Duration
    /// The result chunks gathered so far (a resumed attempt starts with the journalled ones).
    private(set) var values: [XElement]
    private(set) var outcome: AttemptOutcome?
    private var leaseRunning = false
    private var cancelReason: String?

    init(worker: JID, lease: Duration, values: [XElement] = []) {
        self.worker = worker
        self.lease = lease
        self.values = values
    }

    /// What to do about `event`. Nothing once the attempt is over.
    mutating func handle(_ event: InboxEvent) -> [Action] {
        guard outcome == nil else { return [] }
        switch event {
        case .message(let message):
            return take(message)
        case .peerGone:
            guard !leaseRunning else { return [] }
            leaseRunning = true
            return [.startLease]
        case .peerBack:
            guard leaseRunning else { return [] }
            leaseRunning = false
            return [.stopLease]
        case .leaseExpired:
            if let cancelReason { return end(.cancelled(cancelReason)) }
            return end(.lost("\(worker) went away and did not come back within the lease (\(lease))"))
        case .silent(let reason):
            if let cancelReason { return end(.cancelled(cancelReason)) }
            return end(.silent(reason))
        case .deadlineExceeded:
            return [.sendCancel] + end(.deadline)
        case .cancelRequested(let reason):
            guard cancelReason == nil else { return [] }
            cancelReason = reason.isEmpty ? "cancelled" : reason
            // The worker gets one lease to confirm the cancel, present or not.
            leaseRunning = true
            return [.sendCancel, .startLease]
        }
    }

    /// The conversation that came inside the worker's answer to the `op` (fast path): it runs,
    /// its chunks are reported as if they had come one by one, and it must end there.
    mutating func takeInline(_ messages: [ProtocolMessage]) -> [Action] {
        var actions: [Action] = [.report(.running(worker: worker))]
        for message in messages { actions += take(message) }
        if outcome == nil {
            actions += end(.failed(VertebraError(.badResult, "\(worker) answered the op without an end"), retryable: false))
        }
        return actions
    }

    private mutating func take(_ message: ProtocolMessage) -> [Action] {
        guard outcome == nil else { return [] }
        switch message {
        case .ack:
            return [.acknowledged]
        case .data(_, let chunk):
            if let progress = JobProgress(chunk: chunk) { return [.report(.progress(worker: worker, progress))] }
            values += chunk
            return [.report(.data(worker: worker, values: chunk))]
        case .final(_, let last):
            let report: [Action] = last.isEmpty ? [] : [.report(.data(worker: worker, values: last))]
            return report + end(.done(values + last))
        case .nack(_, let reason):
            return end(.refused(reason))
        case .error(_, let kind, let error):
            // A cancel we asked for is told as asked ("cancelled by alice@…"): the worker only
            // knows that the coordinator passed it on.
            return end(kind == .cancel ? .cancelled(cancelReason ?? error.message) : .failed(error, retryable: kind == .error))
        default:
            return []
        }
    }

    private mutating func end(_ ended: AttemptOutcome) -> [Action] {
        outcome = ended
        return [.end(ended)]
    }
}
