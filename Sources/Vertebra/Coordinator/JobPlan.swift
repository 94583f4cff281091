import Natter
import VertebraJournal
import VertebraXML

/// How a job ends, as the coordinator journals and reports it.
struct JobEnd: Sendable {
    var state: JobState
    var result: [XElement] = []
    var error: VertebraError?

    static func failed(_ code: VertebraError.Code, _ message: String, result: [XElement] = []) -> JobEnd {
        JobEnd(state: .failed, result: result, error: VertebraError(code, message))
    }

    static func cancelled(_ reason: String) -> JobEnd {
        JobEnd(state: .cancelled, error: VertebraError(.cancelled, reason))
    }
}

/// What a `single` job does after each attempt, without I/O, clock or randomness: end, pick
/// another worker at once, or retry after a backoff. `Coordinator.runSingle` drives it.
struct RetryPlan {
    enum Step: Sendable {
        case end(JobEnd)
        /// The worker refused: the job waits as `pending` and goes to another worker at once.
        case requeue
        /// Try again on another worker after `delay` (before jitter).
        case retry(after: Duration)
        /// The coordinator is stopping: the attempt stays open for the next start.
        case stop
    }

    let maxAttempts: Int
    let maxDelay: Duration
    /// Attempts that failed so far (counted across restarts).
    private(set) var failures: Int
    private(set) var delay: Duration
    /// Workers not to pick again for this job (until every capable one refused).
    private(set) var excluded: Set<JID> = []

    init(failuresBefore: Int, firstDelay: Duration, maxDelay: Duration, maxAttempts: Int) {
        self.failures = max(0, failuresBefore)
        self.delay = firstDelay
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
    }

    /// Every capable worker refused: wait this long (before jitter), then any may be picked again.
    mutating func allRefused() -> Duration {
        excluded.removeAll()
        return backOff()
    }

    /// The next step after an attempt on `worker` ended with `outcome`.
    mutating func after(_ outcome: AttemptOutcome, on worker: JID, jobRetryable: Bool, cancelReason: String?) -> Step {
        switch outcome {
        case .interrupted:
            return .stop
        case .done(let values):
            return .end(JobEnd(state: .done, result: values))
        case .refused:
            excluded.insert(worker)
            return .requeue
        case .lost, .silent, .failed:
            failures += 1
            if let cancelReason { return .end(.cancelled(cancelReason)) }
            let (error, retryable) = outcome.failure
            guard retryable, jobRetryable, failures < maxAttempts else {
                let why = !retryable ? "" : jobRetryable ? "; gave up after \(failures) attempts" : "; the operation is not retryable"
                return .end(.failed(error.code, error.message + why))
            }
            excluded.insert(worker)
            return .retry(after: backOff())
        case .cancelled(let reason):
            return .end(.cancelled(reason))
        case .deadline:
            return .end(.failed(.deadlineExceeded, "the job's deadline passed on \(worker)"))
        }
    }

    private mutating func backOff() -> Duration {
        defer { delay = min(delay * 2, maxDelay) }
        return delay
    }
}

extension AttemptOutcome {
    /// The error of a lost or failed attempt, and whether another attempt may help.
    var failure: (VertebraError, retryable: Bool) {
        switch self {
        case .lost(let reason): (VertebraError(.workerLost, reason), true)
        case .silent(let reason): (VertebraError(.workerSilent, reason), true)
        case .failed(let error, let retryable): (error, retryable || error.code == .workerLost)
        case .refused(let reason): (VertebraError(.refused, reason), false)
        case .deadline: (VertebraError(.deadlineExceeded, "the job's deadline passed"), false)
        case .cancelled(let reason): (VertebraError(.cancelled, reason), false)
        case .done, .interrupted: (VertebraError(.failed, "unexpected outcome"), false)
        }
    }
}

/// How a job sent to several workers (`all`, `direct`) ends, from each worker's outcome; nil
/// when the coordinator stopped meanwhile (the job resumes at the next start).
enum FanOutEnd {
    static func combine(_ outcomes: [(JID, AttemptOutcome)], cancelReason: String?) -> JobEnd? {
        var result: [XElement] = []
        var failures: [(JID, VertebraError)] = []
        var cancelled = false
        for (worker, outcome) in outcomes.sorted(by: { $0.0.description < $1.0.description }) {
            switch outcome {
            case .done(let values):
                result.append(XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "worker")], text: worker.description))
                result += values
            case .cancelled: cancelled = true
            case .interrupted: return nil
            default: failures.append((worker, outcome.failure.0))
            }
        }
        if cancelled { return .cancelled(cancelReason ?? "cancelled") }
        if failures.isEmpty { return JobEnd(state: .done, result: result) }
        // One kind of failure everywhere keeps its code (worker-silent, worker-lost, ...).
        let codes = Set(failures.map(\.1.code))
        let code = codes.count == 1 ? codes.first ?? .failed : .failed
        let text = failures.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
        return .failed(code, "\(failures.count) of \(outcomes.count) workers failed: " + text, result: result)
    }
}
