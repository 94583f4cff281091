import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraXML

/// The coordinator watches each worker that runs attempts once, however many attempts it runs.
@Suite(.timeLimit(.minutes(1))) struct WorkerWatchTests {
    @Test func aWorkerRunningFiveJobsIsPingedOncePerPeriodAndLosesThemAllWhenGone() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) { options in
            options.lease = .seconds(10)  // the watch period: the lease or a quarter of the silence timeout, the shorter
            options.silenceTimeout = .seconds(60)
        }
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        var handles: [JobHandle] = []
        for index in 0..<5 { handles.append(try await cluster.submit(coordinator, "job \(index)")) }
        try await cluster.eventually("five runs", step: .zero) { cluster.runs.total == 5 }
        let pings = NIOLockedValueBox(0)
        cluster.network.intercept { stanza, _ in
            if stanza.name == "iq", stanza[attribute: "type"] == "get", stanza[attribute: "to"] == worker.client.jid.description,
                stanza.elements.first?.name == "ping"
            {
                pings.withLockedValue { $0 += 1 }
            }
            return .route
        }
        // One watch period (the 10 s lease): one ping for the worker, not one per job.
        try await cluster.advance(clock, by: .seconds(10), step: .seconds(1))
        #expect(pings.withLockedValue { $0 } == 1, "pings in one period: \(pings.withLockedValue { $0 })")
        // The next period counts from the ping's answer, which on a loaded machine may land a
        // step of the clock late: the second ping then comes at 21 s.
        try await cluster.advance(clock, by: .seconds(11), step: .seconds(1))
        #expect(pings.withLockedValue { $0 } == 2)
        // The worker goes away without a word: the next ping finds it gone and every attempt
        // is lost after the lease (no other worker: the jobs wait, then fail after their tries).
        cluster.network.cut(worker.client.jid)
        let ids = handles.map(\.id)
        try await cluster.eventually("every job to end", step: .seconds(1), limit: .seconds(30)) {
            for id in ids where await cluster.endState(of: id, in: journal) == nil { return false }
            return true
        }
        for handle in handles {
            #expect(await cluster.endState(of: handle.id, in: journal) == .failed)
        }
        #expect(cluster.runs.total == 5, "nothing ran twice")
        cluster.runs.block("w1", false)
        await worker.stop()
        await coordinator.stop()
    }

    /// A silent attempt is asked for its status within a quarter of the silence timeout after
    /// it (it waited for the next whole watch period: at 20 s for a 15 s timeout).
    @Test func aSilentAttemptIsProbedSoonAfterTheSilenceTimeout() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) { options in
            options.lease = .seconds(10)
            options.silenceTimeout = .seconds(15)
        }
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        _ = try await cluster.submit(coordinator)
        try await cluster.eventually("the run", step: .zero) { cluster.runs.total == 1 }
        let probes = NIOLockedValueBox(0)
        cluster.network.intercept { stanza, _ in
            if stanza.elements.first?.name == "status", stanza[attribute: "type"] == "get" { probes.withLockedValue { $0 += 1 } }
            return .route
        }
        try await cluster.advance(clock, by: .seconds(14), step: .seconds(1))
        #expect(probes.withLockedValue { $0 } == 0, "asked before the silence timeout")
        try await cluster.advance(clock, by: .seconds(5), step: .seconds(1))
        #expect(probes.withLockedValue { $0 } >= 1, "not asked within a quarter of the timeout after it")
        cluster.runs.block("w1", false)
        await worker.stop()
        await coordinator.stop()
    }
}
