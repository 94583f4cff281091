import Testing
import Vertebra
import VertebraXML

/// A submitter's stop: the jobs it still follows end (they go on at the coordinator), and the
/// stop returns once the tasks that followed them have ended.
@Suite(.timeLimit(.minutes(1))) struct SubmitterStopTests {
    @Test func stoppingEndsTheFollowedJobsAndTheJobsGoOn() async throws {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        let submitter = try await cluster.startSubmitter()
        cluster.runs.block("w1")
        let job = try await cluster.submit(submitter, "followed")
        try await cluster.eventually("the run") { cluster.runs.total == 1 }
        await submitter.stop()
        var events: [Submitter.Event] = []
        for await event in job.events { events.append(event) }
        guard case .failed(let error)? = events.last else {
            Issue.record("the events ended with \(events.last.map { "\($0)" } ?? "nothing"), not failed")
            return
        }
        #expect(error.code == .unreachable)
        #expect(error.message.contains("the job goes on"), "\(error)")
        await #expect(throws: VertebraError.self) { try await submitter.start() }
        cluster.runs.block("w1", false)
        try await cluster.eventually("the job's end") { await cluster.endState(of: job.id, in: journal) != nil }
        #expect(await cluster.endState(of: job.id, in: journal) == .done)
        await worker.stop()
        await coordinator.stop()
    }
}
