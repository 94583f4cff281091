import Foundation
import Testing
@testable import VertebraJournal

@Suite struct PruneTests {
    @Test func pruningRemovesOnlyTerminalJobsFinishedBeforeTheCutoffWithTheirConversationsAndStanzas() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path)
        let now = Date()
        let old = now.addingTimeInterval(-40 * 86_400)
        var oldTerminal: [String] = []
        for index in 0..<7 {
            let job = try await journal.makeJob(state: .running, created: old)
            try await journal.write([
                .openConversation(NewConversation(job: job, token: "\(job):b", peer: "w@x/r", role: .requester, created: old)),
                .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "op-\(index)", kind: .op,
                                        body: "<op/>", sent: old)),
                .transition(job: job, to: index.isMultiple(of: 2) ? .done : .failed, at: old),
            ])
            oldTerminal.append(job)
        }
        let oldRunning = try await journal.makeJob(state: .running, created: old)
        let recentDone = try await journal.makeJob(state: .running)
        try await journal.write(.transition(job: recentDone, to: .done))

        let deleted = try await journal.prune(finishedBefore: now.addingTimeInterval(-30 * 86_400), batchSize: 3)
        #expect(deleted == 7)
        for job in oldTerminal { #expect(try await journal.job(job) == nil) }
        #expect(try await journal.job(oldRunning) != nil)
        #expect(try await journal.job(recentDone) != nil)
        await journal.close()
        let raw = try RawDatabase(path)
        #expect(try raw.integer("SELECT count(*) FROM conversations") == 0)
        #expect(try raw.integer("SELECT count(*) FROM stanzas") == 0)
        #expect(try raw.integer("SELECT count(*) FROM jobs") == 2)
    }

    @Test func writesQueuedDuringAPruneStillCommit() async throws {
        let directory = try TemporaryDirectory()
        let journal = try ExchangeJournal(path: directory.path("journal.sqlite"), options: .init(durability: .normal))
        let old = Date().addingTimeInterval(-100 * 86_400)
        for _ in 0..<50 {
            let job = try await journal.makeJob(state: .running, created: old)
            try await journal.write(.transition(job: job, to: .done, at: old))
        }
        async let pruned = journal.prune(finishedBefore: Date().addingTimeInterval(-86_400), batchSize: 5)
        async let written = journal.makeJob()
        let (count, token) = try await (pruned, written)
        #expect(count == 50)
        #expect(try await journal.job(token) != nil)
        await journal.close()
    }
}
