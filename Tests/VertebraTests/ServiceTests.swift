import Foundation
import Logging
import ServiceLifecycle
import Testing
import Vertebra
import VertebraJournal

/// The coordinator and the worker as swift-service-lifecycle services in one group.
@Suite(.timeLimit(.minutes(1))) struct ServiceTests {
    /// Graceful shutdown of the group: the worker (last in the group, so first down) drains —
    /// its running job finishes and is journalled done — and the coordinator then stops; the
    /// group's run returns.
    @Test func aGracefulShutdownDrainsTheWorkerThenStopsTheCoordinator() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let coordinator = cluster.makeCoordinator(journal: journal)
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1"), fastPath: false) { $0.drainTimeout = .seconds(20) }
        let group = ServiceGroup(services: [coordinator, worker], logger: MemoryCluster.quiet)
        let running = Task { try await group.run() }
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        let handle = try await cluster.submit(coordinator)
        try await cluster.eventually("the run", step: .zero) { cluster.runs.total == 1 }
        await group.triggerGracefulShutdown()
        try await cluster.eventually("the worker to drain") { await worker.isDraining }
        #expect(await cluster.endState(of: handle.id, in: journal) == nil, "the job ended before its handler did")
        cluster.runs.block("w1", false)
        try await running.value
        #expect(await cluster.endState(of: handle.id, in: journal) == .done)
        #expect(await !coordinator.client.isConnected)
        #expect(await !worker.client.isConnected)
    }

    /// Cancelling the group stops the worker at once: its running job is not waited for and
    /// stays unfinished in the journal, to resume at the next start.
    @Test func cancellingTheGroupStopsAtOnceAndLeavesTheJobToResume() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let coordinator = cluster.makeCoordinator(journal: journal)
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1"), fastPath: false) { $0.drainTimeout = .seconds(60) }
        let group = ServiceGroup(services: [coordinator, worker], logger: MemoryCluster.quiet)
        let running = Task { try await group.run() }
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        defer { cluster.runs.block("w1", false) }
        let handle = try await cluster.submit(coordinator)
        try await cluster.eventually("the run", step: .zero) { cluster.runs.total == 1 }
        let cancelled = ContinuousClock.now
        running.cancel()
        _ = try? await running.value
        #expect(ContinuousClock.now - cancelled < .seconds(10), "the drain timeout (60 s) was waited for")
        #expect(await cluster.endState(of: handle.id, in: journal) == nil)
        #expect(await !worker.client.isConnected)
    }
}
