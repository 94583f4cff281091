import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// How a worker answers `op`s it has seen before: the accepting write finds them without a
/// read first, and the journal then decides as it always did.
@Suite(.timeLimit(.minutes(1))) struct WorkerOpTests {
    /// A coordinator, worker w1 and a requester on the coordinator's account (another
    /// resource) that sends w1 raw `op`s.
    private struct Setup {
        let cluster: MemoryCluster
        let coordinator: Coordinator
        let worker: Worker
        let raw: InMemoryTransport
        let journal: ExchangeJournal

        init() async throws {
            cluster = try MemoryCluster()
            coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
            journal = try cluster.journal("w1")
            worker = try await cluster.startWorker("w1", journal: journal)
            try await cluster.waitForWorkers(coordinator, 1)
            raw = cluster.network.transport(JID("coordinator@localhost/raw")!, clock: cluster.clock, requestTimeout: .seconds(5))
            try await raw.start()
        }

        /// Sends w1 the op of an echo of `text` for job `token`, with IQ id `id`.
        func send(_ token: JobToken, _ text: String, id: String) async throws -> IQ {
            let op = ProtocolMessage.op(type: Echo.path, token: token, scope: .single, arguments: try TypedValueEncoder().encodeFields(Echo(text: text)))
                .element.appending(FastPath.request)
            return try await raw.sendAndWait(IQ(type: .set, id: id, to: JID("w1@localhost/w")!, payload: op))
        }

        func stop() async {
            await raw.stop()
            await worker.stop()
            await coordinator.stop()
        }
    }

    private func attempt(in answer: IQ) throws -> String {
        let payload = try #require(answer.payload)
        guard case .accepted(let token) = try ProtocolMessage(payload) else {
            Issue.record("not an accepted answer: \(payload)")
            return ""
        }
        return token.description
    }

    @Test func aRepeatedOpIsAnsweredAsBeforeAndRunsOnce() async throws {
        let setup = try await Setup()
        let token = try #require(JobToken.newJob())
        let first = try await setup.send(token, "once", id: "same-1")
        let second = try await setup.send(token, "once", id: "same-1")
        #expect(second.payload == first.payload)
        #expect(first.payload?.firstElement(named: "final", namespace: XMLNamespace.vertebraAPI) != nil)
        #expect(setup.cluster.runs.total == 1)
        #expect(try await setup.journal.conversations(ofJob: token.job).count == 1)
        await setup.stop()
    }

    /// The same job again under a new IQ id once its attempt ended is a new attempt of the job
    /// this worker already journalled (a retry that came back here): it runs again, and the
    /// journal keeps one job with two conversations.
    @Test func aKnownJobUnderANewIQIDIsANewAttemptOfTheSameJob() async throws {
        let setup = try await Setup()
        let token = try #require(JobToken.newJob())
        let first = try await setup.send(token, "again", id: "first")
        let second = try await setup.send(token, "again", id: "second")
        #expect(try attempt(in: first) != attempt(in: second))
        #expect(setup.cluster.runs.total == 2)
        #expect(try await setup.journal.jobs(matching: JobFilter()).filter { $0.token == token.job }.count == 1)
        #expect(try await setup.journal.conversations(ofJob: token.job).count == 2)
        #expect(try await setup.journal.job(token.job)?.state == .done)
        await setup.stop()
    }

    /// A draining worker reads first: a repeat still gets its answer, a new job is refused.
    @Test func aDrainingWorkerAnswersRepeatsAndRefusesNewJobs() async throws {
        let setup = try await Setup()
        let token = try #require(JobToken.newJob())
        let first = try await setup.send(token, "kept", id: "before")
        await setup.worker.drain(timeout: .seconds(1))
        let repeated = try await setup.send(token, "kept", id: "before")
        #expect(repeated.payload == first.payload)
        let other = try #require(JobToken.newJob())
        await #expect(throws: NatterError.self) { try await setup.send(other, "new", id: "after") }
        #expect(setup.cluster.runs.total == 1)
        await setup.stop()
    }
}

/// `/vertebra/journal-counters`, which `vertebra bench jobs` reads to count the workers' commits.
@Suite(.timeLimit(.minutes(1))) struct JournalCountersOperationTests {
    @Test func theCountersGrowWithTheJobsTheWorkerJournals() async throws {
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) { options in
            options.accessList = (try? AccessList(parsing: "serve w1@localhost /")) ?? AccessList()
        }
        let journal = try cluster.journal("w1")
        let worker = try await cluster.makeWorker("w1", journal: journal)
        try await Diagnostics.register(on: worker)
        try await worker.start()
        try await cluster.waitForWorkers(coordinator, 1)
        let w1 = JID("w1@localhost/w")!
        let before = try await coordinator.dispatch(Diagnostics.JournalCounters(), scope: .direct, to: [w1])
        for index in 0..<3 { _ = try await coordinator.dispatch(Echo(text: "\(index)")) }
        let after = try await coordinator.dispatch(Diagnostics.JournalCounters(), scope: .direct, to: [w1])
        // Each job (the first counters job included) is at least one awaited write and commit.
        #expect(after.awaitedWrites - before.awaitedWrites >= 4)
        #expect(after.commits - before.commits >= 4)
        #expect(after.records > before.records)
        #expect(after.awaitedWrites == (await journal.awaitedWrites) - 1, "the last counters job's end is written after it answered")
        await worker.stop()
        await coordinator.stop()
    }
}
