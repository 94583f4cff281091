import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraXML

/// The runtime on an in-memory network with a manual clock: leases, backoff, deadlines,
/// fencing and cancellation, each in milliseconds of real time.
@Suite(.timeLimit(.minutes(1))) struct InMemoryRuntimeTests {
    @Test func aJobRunsWithoutSocketsOnBothPaths() async throws {
        for fastPath in [true, false] {
            let cluster = try MemoryCluster()
            let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
            let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: fastPath)
            try await cluster.waitForWorkers(coordinator, 1)
            let seen = NIOLockedValueBox<[XElement]>([])
            cluster.network.intercept { stanza, _ in
                seen.withLockedValue { $0.append(stanza) }
                return .route
            }
            let result = try await coordinator.dispatch(Echo(text: "hi"))
            #expect(result == Echo.Result(text: "hi", worker: "w1"))
            // The fast path takes the op and its answer; the classic conversation 8 stanzas.
            try await cluster.settle()
            let jobStanzas = Self.conversation(of: Echo.path, in: seen.withLockedValue { $0 })
            #expect(jobStanzas == (fastPath ? 2 : 8), "stanzas: \(jobStanzas)")
            await worker.stop()
            await coordinator.stop()
        }
    }

    /// The stanzas of the conversation that began with an `op` of `path`: its requests (by
    /// token) and the answers to them (by IQ id).
    static func conversation(of path: Resource, in stanzas: [XElement]) -> Int {
        guard let op = stanzas.first(where: { $0.elements.first?[attribute: "type"] == path.path }),
            let job = op.elements.first?[attribute: "token"]
        else { return 0 }
        let requests = stanzas.filter { $0.elements.first?[attribute: "token"]?.hasPrefix(job) == true && $0[attribute: "type"] == "set" }
        let ids = Set(requests.compactMap { $0[attribute: "id"] })
        let answers = stanzas.filter { ["result", "error"].contains($0[attribute: "type"] ?? "") && ids.contains($0[attribute: "id"] ?? "") }
        return requests.count + answers.count
    }

    /// A worker that goes away is given the lease to come back; then its attempt is lost and
    /// the job runs on another worker. Its late answer, after it returns, changes nothing.
    @Test func aWorkerGoneLongerThanTheLeaseIsReplacedAndItsLateAnswerIsFenced() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) { $0.lease = .seconds(10) }
        let first = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        let handle = try await cluster.submit(coordinator)
        try await cluster.eventually("the first run", step: .zero) { cluster.runs.total == 1 }
        cluster.network.cut(first.client.jid)
        let second = try await cluster.startWorker("w2", journal: try cluster.journal("w2"), fastPath: false)
        // Within the lease nothing moves.
        clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(50))
        #expect(cluster.runs.total == 1, "the job moved before the lease ended")
        try await cluster.eventually("the job to end") { await cluster.endState(of: handle.id, in: journal) != nil }
        #expect(await cluster.endState(of: handle.id, in: journal) == .done)
        let job = try await journal.job(handle.id)
        #expect(job?.result?.contains("w2") == true, "result: \(job?.result ?? "none")")
        // The first worker comes back and finishes its superseded attempt: fenced.
        await (first.client as? InMemoryTransport)?.reconnect()
        cluster.runs.block("w1", false)
        try await cluster.eventually("the superseded handler to end", step: .milliseconds(100)) { await first.runningJobs == 0 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await journal.job(handle.id)?.result == job?.result)
        #expect(cluster.runs.byAttempt.values.allSatisfy { $0 == 1 })
        await first.stop()
        await second.stop()
        await coordinator.stop()
    }

    /// A worker's answer to the `op` that never arrives (lost, or too large for the server) is
    /// no refusal: the worker may have run the handler. A job that may not be retried fails as
    /// silent after its one run (it used to go round the workers, run by each in turn); one that
    /// may is retried, each attempt counted, up to the limit.
    @Test(arguments: [false, true])
    func anOpWhoseAnswerNeverArrivesCountsAsAnAttempt(retryable: Bool) async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) { $0.maxAttempts = 2 }
        let workers = [
            try await cluster.startWorker("w1", journal: try cluster.journal("w1")),
            try await cluster.startWorker("w2", journal: try cluster.journal("w2")),
        ]
        try await cluster.waitForWorkers(coordinator, 2)
        cluster.network.intercept { stanza, from in
            let answersAnOp = stanza[attribute: "type"] == "result" && stanza.elements.first?.name == "op"
            return answersAnOp && from.local?.hasPrefix("w") == true ? .drop : .route
        }
        let handle = try await coordinator.submit(
            Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: "x")), retryable: retryable)
        try await cluster.eventually("the job's end", step: .seconds(5)) { await cluster.endState(of: handle.id, in: journal) != nil }
        let job = try #require(try await journal.job(handle.id))
        #expect(job.state == .failed && job.errorCode == "worker-silent", "\(job.state): \(job.error ?? "")")
        #expect(job.error?.contains("no answer from") == true, "\(job.error ?? "")")
        #expect(cluster.runs.total == (retryable ? 2 : 1), "runs: \(cluster.runs.byAttempt)")
        for worker in workers { await worker.stop() }
        await coordinator.stop()
    }

    /// A result the server would not deliver to the submitter (too large for it) ends the
    /// relay with an error saying where the job is: the submitter was left waiting for an end
    /// that could not come. The job itself is done.
    @Test func aResultTooLargeToRelayEndsTheSubmittersWaitSayingWhereTheJobIs() async throws {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        let submitter = try await cluster.startSubmitter()
        cluster.network.intercept { stanza, from in
            guard from == MemoryCluster.coordinatorJID, stanza.elements.first?.name == "final" else { return .route }
            return .refuse(StanzaError(type: .modify, condition: .policyViolation, text: "the stanza would be 2000000 bytes as delivered"))
        }
        let job = try await cluster.submit(submitter, "big")
        let end = SubmitterEnd(job)
        try await cluster.eventually("the submitter's end") { end.outcome != nil }
        let outcome = end.outcome ?? ""
        #expect(outcome.contains("bad-result") && outcome.contains("policy-violation") && outcome.contains("vertebra jobs show \(job.id)"), "\(outcome)")
        #expect(await cluster.endState(of: job.id, in: journal) == .done)
        await submitter.stop()
        await worker.stop()
        await coordinator.stop()
    }

    /// A job submitted in this process before the coordinator's start has read the journal is
    /// its own, not one to resume: it gets one attempt and one run (recovery used to adopt it
    /// too and send its op a second time).
    @Test func aJobSubmittedWhileTheCoordinatorStartsIsNotResumedAsWell() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        let coordinator = cluster.makeCoordinator(journal: journal)
        let handle = try await cluster.submit(coordinator)
        try await coordinator.start()
        try await cluster.eventually("the job's end") { await cluster.endState(of: handle.id, in: journal) != nil }
        #expect(await cluster.endState(of: handle.id, in: journal) == .done)
        #expect(cluster.runs.total == 1)
        #expect(try await journal.conversations(ofJob: handle.id).count == 1)
        await worker.stop()
        await coordinator.stop()
    }

    /// Retries wait for the backoff: nothing runs again before the retry delay has passed.
    @Test func aFailedAttemptIsRetriedOnlyAfterTheBackoff() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) {
            $0.retryDelay = .seconds(30)
            $0.maxRetryDelay = .seconds(30)
        }
        // The retry comes 48-72 s later (the backoff, then one more after w1 is the only,
        // excluded, worker), past the first renewal of w1's 60 s advertisement.
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.failNext(1)
        let start = clock.now
        let handle = try await cluster.submit(coordinator)
        try await cluster.eventually("the first run", step: .zero) { cluster.runs.total == 1 }
        // Its failure reaches the coordinator before the clock moves (or the answer times out).
        try await cluster.settle()
        // The retry waits at least 30 s - 20 % jitter.
        clock.advance(by: .seconds(23))
        try await Task.sleep(for: .milliseconds(50))
        #expect(cluster.runs.total == 1, "retried before the backoff: \(cluster.runs.byAttempt)")
        // Half-second steps: the retried op's answer must not time out (10 s) between two looks.
        try await cluster.eventually("the retry to finish the job", step: .milliseconds(500)) {
            await cluster.endState(of: handle.id, in: journal) != nil
        }
        #expect(await cluster.endState(of: handle.id, in: journal) == .done)
        #expect(cluster.runs.total == 2)
        #expect(clock.now - start >= .seconds(24))
        await worker.stop()
        await coordinator.stop()
    }

    /// A coordinator and a classic worker `w1` whose handler is running (held) a job
    /// submitted with `deadline`.
    struct HeldJob {
        let cluster: MemoryCluster
        let journal: ExchangeJournal
        let coordinator: Coordinator
        let worker: Worker
        let handle: JobHandle

        init(clock: ManualClock, deadline: Duration? = nil) async throws {
            cluster = try MemoryCluster(clock: clock)
            journal = try cluster.journal("coordinator")
            coordinator = try await cluster.startCoordinator(journal: journal)
            worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
            try await cluster.waitForWorkers(coordinator, 1)
            cluster.runs.block("w1")
            handle = try await cluster.submit(coordinator, deadline: deadline)
            let runs = cluster.runs
            try await cluster.eventually("the run", step: .zero) { runs.total == 1 }
        }

        func endsWithItsHandlerStopped() async throws -> Job? {
            let (cluster, journal, handle, worker) = (self.cluster, self.journal, self.handle, self.worker)
            try await cluster.eventually("the job to end", step: .seconds(1)) { await cluster.endState(of: handle.id, in: journal) != nil }
            try await cluster.eventually("the handler to stop", step: .zero) { await worker.runningJobs == 0 }
            cluster.runs.block("w1", false)
            await worker.stop()
            await coordinator.stop()
            return try await journal.job(handle.id)
        }
    }

    @Test func aJobPastItsDeadlineFailsAndItsHandlerIsCancelled() async throws {
        let clock = ManualClock()
        let held = try await HeldJob(clock: clock, deadline: .seconds(60))
        clock.advance(by: .seconds(59))
        try await Task.sleep(for: .milliseconds(50))
        #expect(await held.cluster.endState(of: held.handle.id, in: held.journal) == nil, "ended before its deadline")
        let job = try await held.endsWithItsHandlerStopped()
        #expect(job?.state == .failed)
        #expect(job?.error?.contains("deadline") == true, "error: \(job?.error ?? "none")")
        #expect(job?.errorCode == "deadline-exceeded", "the code is journalled as data")
    }

    @Test func cancellingAJobStopsItsHandlerAndEndsItCancelled() async throws {
        let held = try await HeldJob(clock: ManualClock())
        await held.coordinator.cancel(job: held.handle.id, reason: "not needed")
        let job = try await held.endsWithItsHandlerStopped()
        #expect(job?.state == .cancelled && job?.errorCode == "cancelled")
    }

    /// After a restart, jobs queued behind a full worker wait for its slots. The attempts resumed
    /// at the start used to be counted on a worker the coordinator did not know yet (its probe
    /// came later), so the queued jobs went to it at once, were refused as busy and backed off.
    @Test func queuedJobsWaitForAFullWorkerAcrossARestart() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let first = try await cluster.startCoordinator(journal: journal)
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1"), fastPath: false) { $0.maxConcurrentJobs = 2 }
        try await worker.start()
        try await cluster.waitForWorkers(first, 1)
        cluster.runs.block("w1")
        var ids: [String] = []
        for index in 0..<4 { ids.append(try await cluster.submit(first, "job \(index)").id) }
        try await cluster.eventually("two runs") { cluster.runs.total == 2 }
        await first.stop()
        // The worker becomes known again by its advertisement, not by the start's probe (as
        // when the probe's ping is slower than the resumed attempts).
        let refusals = NIOLockedValueBox<[String]>([])
        cluster.network.intercept { stanza, _ in
            if stanza.elements.first?.name == "nack" { refusals.withLockedValue { $0.append(stanza.serializedString()) } }
            return stanza.elements.first?.name == "ping" ? .drop : .route
        }
        let second = try await cluster.startCoordinator(journal: journal)
        try await cluster.settle()
        #expect(cluster.runs.total == 2, "a queued job ran on the full worker")
        cluster.runs.block("w1", false)
        for id in ids {
            try await cluster.eventually("job \(id) to end") { await cluster.endState(of: id, in: journal) != nil }
            #expect(await cluster.endState(of: id, in: journal) == .done)
        }
        #expect(refusals.withLockedValue { $0 }.isEmpty, "the restarted coordinator sent jobs to a worker with no free slot")
        #expect(cluster.runs.total == 4)
        await worker.stop()
        await second.stop()
    }

    /// A worker that stops while a handler runs (its drain timed out, or it was stopped at once)
    /// tells the coordinator before it goes: the job moves on now, not after the lease.
    @Test func aStoppingWorkerReportsTheJobsItCutsOff() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) { $0.lease = .seconds(60) }
        let first = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        let handle = try await cluster.submit(coordinator)
        try await cluster.eventually("the first run", step: .zero) { cluster.runs.total == 1 }
        await first.stop()
        // No time passes: only the worker's own word can end the attempt.
        try await cluster.eventually("the attempt's end", step: .zero) {
            let conversations = (try? await journal.conversations(ofJob: handle.id)) ?? []
            return conversations.contains { $0.role == .requester && $0.state == .failed }
        }
        let second = try await cluster.startWorker("w2", journal: try cluster.journal("w2"), fastPath: false)
        try await cluster.eventually("the retry on w2") { await cluster.endState(of: handle.id, in: journal) != nil }
        #expect(await cluster.endState(of: handle.id, in: journal) == .done)
        let errors = try await journal.stanzas(ofConversation: try #require(try await journal.conversations(ofJob: handle.id).first { $0.role == .requester }?.id))
            .filter { $0.kind == .error }.map(\.body)
        #expect(errors.contains { $0.contains("the worker stopped before the operation finished") }, "\(errors)")
        await second.stop()
        await coordinator.stop()
    }

    /// `stop()` returns once every task the coordinator started has ended: running attempts,
    /// their timers and watchers, the queue. What the CLI does next, closing the journal, then
    /// cannot fail a write of a task still winding down, however long time then runs on.
    @Test func aStoppedCoordinatorLeavesNoTaskBehind() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) { $0.lease = .seconds(5) }
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1"), fastPath: false) { $0.maxConcurrentJobs = 2 }
        try await worker.start()
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        var jobs: [String] = []
        for _ in 1...4 { jobs.append(try await cluster.submit(coordinator).id) }
        try await cluster.eventually("two runs, two jobs queued", step: .zero) { cluster.runs.total == 2 }
        await coordinator.stop()
        await journal.close()
        try await cluster.advance(clock, by: .seconds(60), step: .seconds(1))
        #expect(await coordinator.journalFailures == 0)
        await #expect(throws: VertebraError.self, "a stopped coordinator does not start again") { try await coordinator.start() }
        cluster.runs.block("w1", false)
        await worker.stop()
        let reopened = try cluster.journal("coordinator")
        for job in jobs { #expect(try await reopened.job(job)?.state.isTerminal == false, "every job resumes at the next start") }
    }

    /// A job sent to every worker when there is none waits for one to come; a stop then, even
    /// before the job's task first ran, ends it (the job stays pending for the next start).
    @Test(.timeLimit(.minutes(1))) func aStopEndsAFanOutJobWaitingForWorkers() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        for attempt in 0..<20 {
            let journal = try cluster.journal("coordinator-\(attempt)")
            let coordinator = try await cluster.startCoordinator(journal: journal)
            let handle = try await coordinator.submit(Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: "x")), scope: .all)
            if attempt % 2 == 1 { await Task.yield() }
            await coordinator.stop()
            #expect(await cluster.endState(of: handle.id, in: journal) == nil)
        }
    }
}
