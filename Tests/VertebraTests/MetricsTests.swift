import Foundation
import MetricsTestKit
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraXML

/// The runtime's metrics, counted on an in-memory network into a test backend.
@Suite(.timeLimit(.minutes(1))) struct MetricsTests {
    @Test func jobsAttemptsRetriesAndTheHandlerAreCounted() async throws {
        let metrics = TestMetrics()
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) { $0.metrics = metrics }
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1")) { $0.metrics = metrics }
        try await worker.start()
        try await cluster.waitForWorkers(coordinator, 1)
        for index in 0..<3 { _ = try await coordinator.dispatch(Echo(text: "\(index)")) }
        cluster.runs.failNext(1)
        _ = try await coordinator.dispatch(Echo(text: "retried"))
        let operation = ("operation", Echo.path.path)
        #expect(try metrics.expectCounter("vertebra_jobs_submitted_total", [operation]).totalValue == 4)
        #expect(try metrics.expectCounter("vertebra_jobs_finished_total", [operation, ("state", "done")]).totalValue == 4)
        #expect(try metrics.expectCounter("vertebra_attempts_total", [operation, ("outcome", "done")]).totalValue == 4)
        #expect(try metrics.expectCounter("vertebra_attempts_total", [operation, ("outcome", "failed")]).totalValue == 1)
        #expect(try metrics.expectCounter("vertebra_job_retries_total", [operation]).totalValue == 1)
        #expect(try metrics.expectTimer("vertebra_job_duration_seconds", [operation]).values.count == 4)
        #expect(try metrics.expectTimer("vertebra_job_queue_wait_seconds", [operation]).values.count == 4)
        #expect(try metrics.expectCounter("vertebra_worker_jobs_total", [operation, ("state", "done")]).totalValue == 4)
        #expect(try metrics.expectCounter("vertebra_worker_jobs_total", [operation, ("state", "failed")]).totalValue == 1)
        #expect(try metrics.expectTimer("vertebra_worker_handler_duration_seconds", [operation]).values.count == 5)
        #expect(try metrics.expectGauge("vertebra_worker_running_jobs").lastValue == 0)
        #expect(try metrics.expectGauge("vertebra_workers").lastValue == 1)
        await worker.stop()
        await coordinator.stop()
    }

    /// Operations come from the wire: past 500 label sets, new ones count under `other`.
    @Test func operationLabelsAreBounded() async throws {
        let metrics = TestMetrics()
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) {
            $0.metrics = metrics
            $0.workerWait = .zero
        }
        for index in 0..<520 {
            _ = try await coordinator.submit(Resource("/test/op\(index)"), arguments: [])
        }
        #expect(metrics.counters(label: "vertebra_jobs_submitted_total").count == 501)
        #expect(try metrics.expectCounter("vertebra_jobs_submitted_total", [("operation", "other")]).totalValue == 20)
        await coordinator.stop()
    }
}
