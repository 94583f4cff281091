import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraAgent
import VertebraXML

/// Many jobs in one request, journalled in one transaction (``Batch``).
@Suite(.timeLimit(.minutes(1))) struct BatchTests {
    func echo(_ text: String) throws -> Batch.Job {
        Batch.Job(Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: text)))
    }

    @Test func submitManyJournalsEveryJobInOneAwaitedWriteAndRunsThemAll() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        // Twenty ops reach the worker at once: on a loaded run its answers may take seconds,
        // and these jobs may not be retried (no worker had advertised the operation).
        let coordinator = try await cluster.startCoordinator(journal: journal) { $0.silenceTimeout = .seconds(30) }
        // No worker yet: the jobs wait for one, writing nothing more meanwhile.
        let awaitedBefore = await journal.awaitedWrites
        let handles = try await coordinator.submitMany(try (0..<20).map { try echo("job \($0)") })
        #expect(await journal.awaitedWrites == awaitedBefore + 1, "the batch took more than one awaited write")
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        // Durable on return: another connection sees every job.
        let reader = try JournalReader(path: "\(cluster.directory)/coordinator.sqlite")
        for handle in handles { #expect(try await reader.contains(job: handle.id)) }
        for (index, handle) in handles.enumerated() {
            try await cluster.eventually("job \(index)") { await cluster.endState(of: handle.id, in: journal) != nil }
            let job = try await journal.job(handle.id)
            #expect(job?.result?.contains("job \(index)") == true, "\(job?.state.rawValue ?? "-"): \(job?.error ?? "")")
        }
        await worker.stop()
        await coordinator.stop()
    }

    @Test func aSubmitterSendsABatchAndGetsTheJobIdsInOrder() async throws {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        let submitter = try await cluster.startSubmitter()
        let ids = try await submitter.submitBatch(try (0..<5).map { try echo("b\($0)") })
        #expect(ids.count == 5)
        for (index, id) in ids.enumerated() {
            try await cluster.eventually("job \(index)") { await cluster.endState(of: id, in: journal) == .done }
            let job = try await journal.job(id)
            #expect(job?.result?.contains("b\(index)") == true)
            #expect(job?.submitter == "alice@localhost/submitter")
        }
        await submitter.stop()
        await worker.stop()
        await coordinator.stop()
    }

    /// A batch with one operation the submitter may not dispatch is refused whole: no job.
    @Test func aBatchWithOneForbiddenOperationIsRefusedWhole() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal)
        let submitter = try await cluster.startSubmitter()
        let forbidden = Batch.Job("/exec/run", arguments: [])
        await #expect(throws: VertebraError.self) { try await submitter.submitBatch([try echo("ok"), forbidden]) }
        #expect(try await journal.jobs(matching: JobFilter()).isEmpty)
        await #expect(throws: VertebraError.self) { try await submitter.submitBatch([]) }
        await submitter.stop()
        await coordinator.stop()
    }

    /// The answer to a batch is lost; the submitter's retry (same IQ id, same tokens) gets the
    /// same ids, and no job is journalled or run twice.
    @Test func aRepeatedBatchIsAnsweredAgainAndStartsNothingTwice() async throws {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        let dropped = NIOLockedValueBox(0)
        cluster.network.intercept { stanza, from in
            let isBatchAnswer = from == MemoryCluster.coordinatorJID && stanza.elements.first?.namespace == Batch.namespace
            guard isBatchAnswer, dropped.withLockedValue({ $0 }) == 0 else { return .route }
            dropped.withLockedValue { $0 += 1 }
            return .drop
        }
        let submitter = try await cluster.startSubmitter()
        let ids = try await submitter.submitBatch(try (0..<3).map { try echo("r\($0)") })
        #expect(dropped.withLockedValue { $0 } == 1, "the first answer was not lost")
        for id in ids { try await cluster.eventually("job \(id)") { await cluster.endState(of: id, in: journal) == .done } }
        #expect(try await journal.jobs(matching: JobFilter()).count == 3)
        #expect(cluster.runs.total == 3)
        await submitter.stop()
        await worker.stop()
        await coordinator.stop()
    }
}

/// The batch file syntax of `vertebra dispatch --batch`.
@Suite struct BatchFileTests {
    @Test func linesBecomeJobsWithQuotedValuesAndCommentsSkipped() throws {
        let jobs = try BatchFile.parse(
            "# greetings\n/vertebra/echo text=\"hello world\"\n\n  /vertebra/count count=i4:3 note=\"say \\\"hi\\\"\"\n", name: "f")
        #expect(jobs.map(\.path.path) == ["/vertebra/echo", "/vertebra/count"])
        #expect(jobs[0].arguments.first?.text == "hello world")
        #expect(jobs[1].arguments.map(\.name) == ["i4", "string"])
        #expect(jobs[1].arguments.last?.text == "say \"hi\"")
    }

    /// Windows line ends: one job per line, no CR in any value (a CRLF file used to be one job
    /// whose last argument swallowed the other lines).
    @Test func aCRLFFileIsOneJobPerLine() throws {
        let jobs = try BatchFile.parse("/vertebra/echo text=a\r\n# note\r\n/vertebra/count count=i4:2\r\n/vertebra/echo text=\"b c\"\r", name: "f")
        #expect(jobs.map(\.path.path) == ["/vertebra/echo", "/vertebra/count", "/vertebra/echo"])
        #expect(jobs.map { $0.arguments.first?.text } == ["a", "2", "b c"])
    }

    @Test func aHashStartingAWordStartsAComment() throws {
        let jobs = try BatchFile.parse("/vertebra/count count=i4:2 # two\n/vertebra/echo text=a#b  #c\n/vertebra/echo text=\"# kept\"\n", name: "f")
        #expect(jobs.map(\.arguments.count) == [1, 1, 1])
        #expect(jobs[1].arguments.first?.text == "a#b")
        #expect(jobs[2].arguments.first?.text == "# kept")
        let entries = try ScheduleFile.parse("@hourly /vertebra/echo text=x # every hour\n", name: "s")
        let plain = try ScheduleFile.parse("@hourly /vertebra/echo text=x\n", name: "s")
        #expect(entries.first?.arguments.count == 1)
        #expect(entries.first?.id == plain.first?.id, "a comment does not make the entry a new one")
    }

    @Test func batchesAreCutByCountAndBySize() {
        let small = Array(repeating: Batch.Job("/a", arguments: []), count: 2_500)
        #expect(BatchFile.chunks(small).map(\.count) == [1_000, 1_000, 500])
        let big = XElement("string", namespace: XMLNamespace.vertebraAPI, attributes: [XAttribute("name", "t")], text: String(repeating: "x", count: 100_000))
        let large = Array(repeating: Batch.Job("/a", arguments: [big]), count: 7)
        #expect(BatchFile.chunks(large).map(\.count) == [2, 2, 2, 1])
    }
}
