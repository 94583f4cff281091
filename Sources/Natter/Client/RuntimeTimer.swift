import Dispatch
import Synchronization

/// A call scheduled with ``RuntimeClock/schedule(at:_:)``: cancelling it before it fires means it
/// never runs; after, it does nothing.
///
/// Most of the runtime's timers (a fast-path budget, a lease) are cancelled long before they
/// fire. A sleeping task costs a task, and a wake-up of a cooperative thread to unwind it when
/// it is cancelled; a dispatch timer costs neither.
public struct RuntimeTimer: Sendable {
    private let cancelAction: @Sendable () -> Void

    public init(cancel: @escaping @Sendable () -> Void) {
        cancelAction = cancel
    }

    public func cancel() { cancelAction() }
}

extension RuntimeClock {
    /// A task that sleeps on this clock until `deadline`, then calls `body` unless cancelled.
    public func schedule(at deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () -> Void) -> RuntimeTimer {
        scheduleInTask(at: deadline, body)
    }

    /// ``schedule(at:_:)`` as a task sleeping on this clock.
    public func scheduleInTask(at deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () -> Void) -> RuntimeTimer {
        let task = Task {
            try? await sleep(until: deadline)
            if !Task.isCancelled { body() }
        }
        return RuntimeTimer { task.cancel() }
    }
}

/// The system's monotonic clock.
public struct SystemClock: RuntimeClock {
    public init() {}
    public var now: ContinuousClock.Instant { .now }
    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await Task.sleep(until: deadline, clock: .continuous)
    }

    /// A dispatch timer: no task is made, and a timer cancelled before its time runs nothing (its
    /// dispatch block only sees the flag). A deadline more than a day away (a job's deadline may
    /// be years) sleeps in a task.
    public func schedule(at deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () -> Void) -> RuntimeTimer {
        guard let interval = Self.interval(until: deadline) else { return scheduleInTask(at: deadline, body) }
        let cancelled = CancelFlag()
        DispatchQueue.global(qos: .userInitiated).asyncAfter(deadline: .now() + interval) {
            if !cancelled.isSet.load(ordering: .acquiring) { body() }
        }
        return RuntimeTimer { cancelled.isSet.store(true, ordering: .releasing) }
    }

    private final class CancelFlag: Sendable {
        let isSet = Atomic(false)
    }

    /// The time from now to `deadline` as a dispatch interval (zero for a deadline passed); nil
    /// beyond a day.
    static func interval(until deadline: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> DispatchTimeInterval? {
        let (seconds, attoseconds) = (deadline - now).components
        guard seconds >= 0, attoseconds >= 0 else { return .nanoseconds(0) }
        guard seconds < 86_400 else { return nil }
        return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}
