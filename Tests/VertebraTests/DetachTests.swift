import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
@testable import Vertebra
import VertebraJournal
import VertebraXML

/// A detached submission: the coordinator answers the `op` and relays nothing after it.
@Suite(.timeLimit(.minutes(1))) struct DetachTests {
    @Test func aDetachedSubmitterIsSentNothingAfterTheAnswerAndItsConversationIsClosed() async throws {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        let submitter = try await cluster.startSubmitter()
        let toSubmitter = NIOLockedValueBox(0)
        cluster.network.intercept { stanza, from in
            if from == MemoryCluster.coordinatorJID, stanza[attribute: "to"] == submitter.client.jid.description, stanza[attribute: "type"] == "set" {
                toSubmitter.withLockedValue { $0 += 1 }
            }
            return .route
        }
        cluster.runs.block("w1")
        let job = try await submitter.submit(Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: "fire and forget")), detach: true)
        var events: [String] = []
        for await event in job.events { events.append("\(event)") }
        #expect(events == ["accepted"], "a detached job's events end with its acceptance")
        try await cluster.eventually("the job to run") { cluster.runs.total == 1 }
        #expect(await coordinator.followers(of: job.id) == 0, "nobody follows it: none of its events are kept while it runs")
        cluster.runs.block("w1", false)
        try await cluster.eventually("the job to end") { await cluster.endState(of: job.id, in: journal) != nil }
        #expect(await cluster.endState(of: job.id, in: journal) == .done)
        try await cluster.settle()
        #expect(toSubmitter.withLockedValue { $0 } == 0, "the coordinator relayed \(toSubmitter.withLockedValue { $0 }) stanzas")
        let relay = try await journal.conversations(ofJob: job.id).filter { $0.role == .performer }
        #expect(relay.map(\.state) == [.finished], "the submitter's conversation ends with the answer: nothing resumes at a restart")

        // Without detach the same submitter is relayed the ack and the end.
        let followed = try await cluster.submit(submitter, "followed")
        for await _ in followed.events {}
        try await cluster.settle()
        #expect(toSubmitter.withLockedValue { $0 } >= 2)
        await submitter.stop()
        await worker.stop()
        await coordinator.stop()
    }
}
