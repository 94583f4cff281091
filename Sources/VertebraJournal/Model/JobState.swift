/// The life cycle of a job. Stored as its raw value; these six names are part of the
/// `vertebra jobs --json` output and never change.
public enum JobState: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// Journalled, not yet sent to a worker.
    case pending
    /// Sent to a worker; not yet acknowledged.
    case dispatched
    /// A worker acknowledged it and is running it.
    case running
    /// Finished with a result.
    case done
    /// Finished with an error, or gave up after its retries.
    case failed
    /// Cancelled by the requester.
    case cancelled

    public var description: String { rawValue }

    /// `done`, `failed` and `cancelled` are terminal: nothing moves a job out of them.
    public var isTerminal: Bool {
        switch self {
        case .done, .failed, .cancelled: true
        case .pending, .dispatched, .running: false
        }
    }

    /// The states a job may move to from this one.
    ///
    /// - `pending` → `dispatched` (sent), `running` (an in-process or performer-side handler starts),
    ///   `failed`, `cancelled`
    /// - `dispatched` → `running` (ack), `pending` (refused, waits for another worker),
    ///   `dispatched` (re-dispatched to another worker), `done`, `failed`, `cancelled`
    /// - `running` → `done`, `failed`, `cancelled`, `dispatched` (retry after the lease expired)
    /// - terminal states → nothing
    public var allowedNextStates: Set<JobState> {
        switch self {
        case .pending: [.dispatched, .running, .failed, .cancelled]
        case .dispatched: [.running, .pending, .dispatched, .done, .failed, .cancelled]
        case .running: [.done, .failed, .cancelled, .dispatched]
        case .done, .failed, .cancelled: []
        }
    }

    /// Whether the state machine allows moving from this state to `next`.
    public func canTransition(to next: JobState) -> Bool { allowedNextStates.contains(next) }

    /// Parses a state name, or throws an ``JournalError/Code/invalidArgument`` error listing the valid names.
    public static func parse(_ text: String) throws -> JobState {
        guard let state = JobState(rawValue: text.lowercased()) else {
            throw JournalError(
                .invalidArgument, "Unknown job state '\(text)'",
                remedy: "Use one of: " + JobState.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return state
    }
}
