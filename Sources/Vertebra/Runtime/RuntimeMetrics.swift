import CoreMetrics
import Synchronization

/// Metric handles by label values, made once each: swift-metrics factories take a lock per
/// lookup, the hot path does not. Label values are bounded: past ``limit`` distinct sets, new
/// ones are reported under `other` (operations come from the wire; job ids never label).
final class LabelledMetrics<Handle: Sendable>: Sendable {
    static var limit: Int { 500 }
    private let handles = Mutex<[[String]: Handle]>([:])
    private let make: @Sendable ([String]) -> Handle

    init(_ make: @escaping @Sendable ([String]) -> Handle) { self.make = make }

    func callAsFunction(_ values: String...) -> Handle {
        handles.withLock { handles in
            if let handle = handles[values] { return handle }
            let key = handles.count < Self.limit ? values : ["other"] + values.dropFirst()
            if let handle = handles[key] { return handle }
            let handle = make(key)
            handles[key] = handle
            return handle
        }
    }
}

/// What a coordinator reports (README, "Operating Vertebra").
struct CoordinatorMetrics: Sendable {
    let submitted: LabelledMetrics<Counter>
    let finished: LabelledMetrics<Counter>
    let duration: LabelledMetrics<CoreMetrics.Timer>
    let queueWait: LabelledMetrics<CoreMetrics.Timer>
    let attempts: LabelledMetrics<Counter>
    let retries: LabelledMetrics<Counter>
    let workersLive: Gauge
    let workersOutstanding: Gauge
    let workersCapacity: Gauge

    init(factory: any MetricsFactory) {
        submitted = LabelledMetrics { Counter(label: "vertebra_jobs_submitted_total", dimensions: [("operation", $0[0])], factory: factory) }
        finished = LabelledMetrics {
            Counter(label: "vertebra_jobs_finished_total", dimensions: [("operation", $0[0]), ("state", $0[1])], factory: factory)
        }
        duration = LabelledMetrics { CoreMetrics.Timer(label: "vertebra_job_duration_seconds", dimensions: [("operation", $0[0])], factory: factory) }
        queueWait = LabelledMetrics { CoreMetrics.Timer(label: "vertebra_job_queue_wait_seconds", dimensions: [("operation", $0[0])], factory: factory) }
        attempts = LabelledMetrics {
            Counter(label: "vertebra_attempts_total", dimensions: [("operation", $0[0]), ("outcome", $0[1])], factory: factory)
        }
        retries = LabelledMetrics { Counter(label: "vertebra_job_retries_total", dimensions: [("operation", $0[0])], factory: factory) }
        workersLive = Gauge(label: "vertebra_workers", factory: factory)
        workersOutstanding = Gauge(label: "vertebra_workers_outstanding_jobs", factory: factory)
        workersCapacity = Gauge(label: "vertebra_workers_capacity", factory: factory)
    }
}

/// What a worker reports.
struct WorkerMetrics: Sendable {
    let finished: LabelledMetrics<Counter>
    let handlerDuration: LabelledMetrics<CoreMetrics.Timer>
    let running: Gauge

    init(factory: any MetricsFactory) {
        finished = LabelledMetrics {
            Counter(label: "vertebra_worker_jobs_total", dimensions: [("operation", $0[0]), ("state", $0[1])], factory: factory)
        }
        handlerDuration = LabelledMetrics {
            CoreMetrics.Timer(label: "vertebra_worker_handler_duration_seconds", dimensions: [("operation", $0[0])], factory: factory)
        }
        running = Gauge(label: "vertebra_worker_running_jobs", factory: factory)
    }
}

extension AttemptOutcome {
    /// The `outcome` label of `vertebra_attempts_total`.
    var metricLabel: String {
        switch self {
        case .done: "done"
        case .refused: "refused"
        case .lost: "lost"
        case .silent: "silent"
        case .interrupted: "interrupted"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .deadline: "deadline"
        }
    }
}

extension CoreMetrics.Timer {
    /// Records the time from `start` to `end` (nothing for a negative span).
    func recordInterval(since start: ContinuousClock.Instant, until end: ContinuousClock.Instant) {
        let span = end - start
        guard span >= .zero else { return }
        let (seconds, attoseconds) = span.components
        let (nanoseconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        recordNanoseconds(overflow ? Int64.max : nanoseconds.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue)
    }
}

extension Coordinator {
    /// The live workers, their jobs and their capacity, as gauges.
    func reportWorkers() {
        let now = clock.now
        var count = 0, outstanding = 0, capacity = 0
        for entry in registry.entries.values where entry.expires > now {
            count += 1
            outstanding += entry.outstanding
            capacity += entry.capacity
        }
        metrics.workersLive.record(count)
        metrics.workersOutstanding.record(outstanding)
        metrics.workersCapacity.record(capacity)
    }
}
