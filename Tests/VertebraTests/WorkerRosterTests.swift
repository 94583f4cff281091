import Foundation
import Natter
import Testing
import Vertebra
import VertebraJournal

/// `/security/workers` (`vertebra workers`): the live roster, for accounts the ACL lets see it.
@Suite(.timeLimit(.minutes(1))) struct WorkerRosterTests {
    @Test func anAllowedAccountSeesEachLiveWorkerWithItsLoad() async throws {
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) {
            $0.accessList = (try? AccessList(parsing: "serve w1@localhost /test\nserve w2@localhost /test\nalice@localhost /test /security/workers")) ?? AccessList()
        }
        let w1 = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        let w2 = try await cluster.startWorker("w2", journal: try cluster.journal("w2"), fastPath: false)
        try await cluster.waitForWorkers(coordinator, 2)
        let submitter = try await cluster.startSubmitter()
        cluster.runs.block("w1")
        cluster.runs.block("w2")
        defer {
            cluster.runs.block("w1", false)
            cluster.runs.block("w2", false)
        }
        _ = try await cluster.submit(coordinator)
        try await cluster.eventually("the run", step: .zero) { cluster.runs.total == 1 }
        let roster = try await submitter.workers()
        #expect(roster.map(\.jid) == ["w1@localhost/w", "w2@localhost/w"])
        #expect(roster.allSatisfy { $0.operations == [Echo.path] && $0.capacity == 16 })
        #expect(roster.map(\.outstanding).sorted() == [0, 1])
        #expect(roster.allSatisfy { (0...2).contains($0.advertisedSecondsAgo) && (55...60).contains($0.expiresInSeconds) })
        await submitter.stop()
        await w1.stop()
        await w2.stop()
        await coordinator.stop()
    }

    @Test func anAccountWithoutTheRuleIsRefused() async throws {
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
        let submitter = try await cluster.startSubmitter()
        do {
            _ = try await submitter.workers()
            Issue.record("alice (no rule for /security/workers) got the roster")
        } catch let error as VertebraError {
            #expect(error.code == .notAuthorized, "\(error)")
        }
        await submitter.stop()
        await coordinator.stop()
    }
}
