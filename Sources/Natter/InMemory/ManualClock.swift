import NIOConcurrencyHelpers

/// A clock that moves only when told (``advance(by:)``): tests of leases, retries, deadlines
/// and timeouts run in milliseconds and in a known order.
///
/// Sleepers whose deadline is reached wake in deadline order. Cancelling a sleeping task wakes
/// it with `CancellationError`.
public final class ManualClock: RuntimeClock {
    private struct Sleeper {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: ContinuousClock.Instant
        var sleepers: [Int: Sleeper] = [:]
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    private let state: NIOLockedValueBox<State>

    /// A clock whose time starts at the system's current instant.
    public init(start: ContinuousClock.Instant = .now) {
        state = NIOLockedValueBox(State(now: start))
    }

    public var now: ContinuousClock.Instant { state.withLockedValue { $0.now } }

    /// Tasks sleeping on this clock now.
    public var sleeperCount: Int { state.withLockedValue { $0.sleepers.count } }

    /// The earliest deadline a task sleeps until, if any.
    public var nextDeadline: ContinuousClock.Instant? { state.withLockedValue { $0.sleepers.values.map(\.deadline).min() } }

    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try Task.checkCancellation()
        let id = state.withLockedValue { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLockedValue { state in
                    if state.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLockedValue { state -> Sleeper? in
                guard let sleeper = state.sleepers.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        state.withLockedValue { _ = $0.cancelled.remove(id) }
    }

    /// Moves the time forward by `duration` and wakes every sleeper whose deadline came.
    public func advance(by duration: Duration) {
        let due = state.withLockedValue { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}
