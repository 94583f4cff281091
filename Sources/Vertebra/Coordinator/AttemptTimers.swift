import Natter

/// The timers of one attempt (its lease and its job's deadline): each puts its event into the
/// attempt's mailbox when it fires, where ``AttemptFollower`` decides what it means. Used only
/// inside the coordinator's isolation.
final class AttemptTimers {
    enum Kind: Hashable {
        case lease, deadline

        var event: InboxEvent {
            switch self {
            case .lease: .leaseExpired
            case .deadline: .deadlineExceeded
            }
        }
    }

    private let inbox: RequesterInbox
    private let tasks: OwnedTasks
    private let clock: any RuntimeClock
    private let job: String
    private let worker: JID
    private var running: [Kind: RuntimeTimer] = [:]

    init(inbox: RequesterInbox, tasks: OwnedTasks, clock: any RuntimeClock, job: String, worker: JID) {
        self.inbox = inbox
        self.tasks = tasks
        self.clock = clock
        self.job = job
        self.worker = worker
    }

    /// Starts `kind` to fire at `instant`, replacing one already running.
    func start(_ kind: Kind, at instant: ContinuousClock.Instant) {
        running[kind]?.cancel()
        let (inbox, tasks, job, worker) = (inbox, tasks, job, worker)
        running[kind] = clock.schedule(at: instant) { tasks.spawn { await inbox.inject(kind.event, job: job, peer: worker) } }
    }

    func cancel(_ kind: Kind) {
        running.removeValue(forKey: kind)?.cancel()
    }

    func cancelAll() {
        for timer in running.values { timer.cancel() }
        running.removeAll()
    }
}
