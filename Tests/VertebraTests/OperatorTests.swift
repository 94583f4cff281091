import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraXML

/// Unique keys, delayed jobs and the operator actions (cancel, retry) on an in-memory network.
@Suite(.timeLimit(.minutes(1))) struct OperatorTests {
    static let opsACL = """
        serve w1@localhost /test/echo
        serve w2@localhost /test/echo
        alice@localhost /test
        ops@localhost /security/jobs
        """

    private func echoArguments(_ text: String = "x") throws -> [XElement] {
        try TypedValueEncoder().encodeFields(Echo(text: text))
    }

    /// The events of `handle` up to its end: `done` (true) or not.
    private static func ends(_ handle: JobHandle) async -> (done: Bool, data: Int) {
        var data = 0
        for await event in handle.events {
            switch event {
            case .data: data += 1
            case .done: return (true, data)
            case .failed: return (false, data)
            default: continue
            }
        }
        return (false, data)
    }

    // MARK: - Unique keys

    @Test func aHundredConcurrentSubmissionsWithOneKeyMakeOneJob() async throws {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        cluster.runs.block("w1")
        let arguments = try echoArguments()
        let handles = try await withThrowingTaskGroup(of: JobHandle.self) { group in
            for _ in 0..<100 { group.addTask { try await coordinator.submit(Echo.path, arguments: arguments, key: "nightly-report") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(handles.map(\.id)).count == 1)
        cluster.runs.block("w1", false)
        let ends = await withTaskGroup(of: (done: Bool, data: Int).self) { group in
            for handle in handles { group.addTask { await Self.ends(handle) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        // Every submission sees the job's result, those that joined late included.
        #expect(ends.allSatisfy { $0.done && $0.data == 1 })
        #expect(cluster.runs.total == 1)
        let jobs = try await journal.jobs(matching: JobFilter(operation: Echo.path.path, limit: 500))
        #expect(jobs.count == 1)
        #expect(jobs.first?.key == "nightly-report")
        // A finished job frees its key.
        let again = try await coordinator.submit(Echo.path, arguments: arguments, key: "nightly-report")
        #expect(again.id != handles.first?.id)
        #expect(await Self.ends(again).done)
        await worker.stop()
        await coordinator.stop()
    }

    /// A coordinator, a worker whose runs are held, and two submissions (alice, from two
    /// resources) with one key: the second follows the job the first started.
    private struct KeyedPair {
        let cluster: MemoryCluster
        let journal: ExchangeJournal
        var coordinator: Coordinator
        let worker: Worker
        let first: Submitter, second: Submitter
        let one: Submitter.Job, two: Submitter.Job

        func stop() async {
            for submitter in [first, second] { await submitter.stop() }
            await worker.stop()
            await coordinator.stop()
        }
    }

    private func keyedPair() async throws -> KeyedPair {
        let cluster = try MemoryCluster()
        let (journal, coordinator, worker) = try await cluster.startCoordinatorAndWorker()
        cluster.runs.block("w1")
        let first = try await cluster.startSubmitter()
        let second = try await startOps(cluster, "alice")  // alice again, from another resource
        let arguments = try echoArguments("shared")
        let one = try await first.submit(Echo.path, arguments: arguments, key: "k1")
        let two = try await second.submit(Echo.path, arguments: arguments, key: "k1")
        return KeyedPair(cluster: cluster, journal: journal, coordinator: coordinator, worker: worker, first: first, second: second, one: one, two: two)
    }

    /// A submission that followed a keyed job and is then cancelled stops following it: it
    /// hears `cancelled`, and the job goes on for the submission that started it. The same after
    /// a coordinator restart (recovery takes the follower back as a follower; the stop must not
    /// end the follower's conversation, whose `ack` may be in flight).
    @Test(arguments: [false, true])
    func aFollowerThatCancelsStopsFollowingWithoutCancellingTheSharedJob(restartingTheCoordinator: Bool) async throws {
        var pair = try await keyedPair()
        let cluster = pair.cluster
        #expect(pair.one.id == pair.two.id)
        try await cluster.eventually("the run", step: .zero) { cluster.runs.total == 1 }
        if restartingTheCoordinator {
            await pair.coordinator.stop()
            pair.coordinator = try await cluster.startCoordinator(journal: pair.journal)
        }
        try await pair.second.cancel(pair.two)
        var followerEnd: VertebraError?
        for await event in pair.two.events { if case .failed(let error) = event { followerEnd = error } }
        #expect(followerEnd?.code == .cancelled, "the follower hears cancelled: \(String(describing: followerEnd))")
        cluster.runs.block("w1", false)
        var done = false
        for await event in pair.one.events { if case .done = event { done = true } }
        #expect(done, "the job went on for the submission that started it")
        #expect(cluster.runs.total == 1)
        await pair.stop()
    }

    @Test func submittersOverXMPPWithOneKeyFollowOneJob() async throws {
        let pair = try await keyedPair()
        #expect(pair.one.id == pair.two.id)
        pair.cluster.runs.block("w1", false)
        for job in [pair.one, pair.two] {
            var values: [XElement] = []
            var done = false
            for await event in job.events {
                if case .data(let chunk) = event { values += chunk }
                if case .done = event { done = true }
            }
            #expect(done)
            #expect(try TypedValueDecoder().decodeFields(Echo.Result.self, from: values).text == "shared")
        }
        #expect(pair.cluster.runs.total == 1)
        await pair.stop()
    }

    @Test func aBadKeyIsRefusedBeforeAnythingIsSent() async throws {
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
        for key in ["", String(repeating: "k", count: 257), "tab\there"] {
            await #expect(throws: VertebraError.self) { try await coordinator.submit(Echo.path, arguments: try echoArguments(), key: key) }
            #expect(Submitter.keyProblem(key) != nil)
        }
        #expect(Submitter.keyProblem("report-2026-11-30") == nil)
        await coordinator.stop()
    }

    // MARK: - Delayed jobs

    @Test func aDelayedJobStartsNotBeforeItsTime() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal)
        // An advertisement outliving the test: its renewal at 54 s, racing the jumps of the
        // clock below on a loaded machine, could leave no live worker at 65 s.
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1")) { $0.advertiseTTL = .seconds(3600) }
        try await worker.start()
        try await cluster.waitForWorkers(coordinator, 1)
        let handle = try await coordinator.submit(Echo.path, arguments: try echoArguments(), notBefore: Date().addingTimeInterval(60))
        let job = try #require(try await journal.job(handle.id))
        #expect(job.state == .pending)
        #expect(job.notBefore != nil)
        clock.advance(by: .seconds(55))
        try await cluster.settle()
        #expect(cluster.runs.total == 0)
        clock.advance(by: .seconds(10))
        try await cluster.eventually("the delayed job's end") { await cluster.endState(of: handle.id, in: journal) == .done }
        #expect(cluster.runs.total == 1)
        await worker.stop()
        await coordinator.stop()
    }

    /// A job delayed by an hour, journalled by a coordinator that has stopped since.
    private func delayedJobOfAStoppedCoordinator() async throws -> (ManualClock, MemoryCluster, ExchangeJournal, JobHandle) {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let first = try await cluster.startCoordinator(journal: journal)
        let handle = try await first.submit(Echo.path, arguments: try echoArguments(), notBefore: Date().addingTimeInterval(3600))
        await first.stop()
        return (clock, cluster, journal, handle)
    }

    @Test func aDelayedJobKeepsItsDelayAcrossARestart() async throws {
        let (clock, cluster, journal, handle) = try await delayedJobOfAStoppedCoordinator()
        let coordinator = try await cluster.startCoordinator(journal: journal)
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        try await cluster.advance(clock, by: .seconds(1800))
        #expect(cluster.runs.total == 0)
        #expect(try await journal.job(handle.id)?.state == .pending)
        // To 10 s before the start in steps, then on in the small steps of `eventually`: a
        // 20 s step while the job runs would outlast its op's answer timeout (10 s).
        try await cluster.advance(clock, by: .seconds(1790))
        try await cluster.eventually("the delayed job's end") { await cluster.endState(of: handle.id, in: journal) == .done }
        #expect(cluster.runs.total == 1)
        await worker.stop()
        await coordinator.stop()
    }

    /// A delayed job whose time passed while the coordinator was down runs at the next start,
    /// its deadline counted from then (it failed deadline-exceeded, never run).
    @Test func aDelayedJobDueWhileTheCoordinatorWasDownRunsWithItsWholeDeadline() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let first = try await cluster.startCoordinator(journal: journal)
        let handle = try await first.submit(
            Echo.path, arguments: try echoArguments(), deadline: .seconds(1), notBefore: Date().addingTimeInterval(0.3))
        await first.stop()
        try await Task.sleep(for: .milliseconds(1_600))  // its time and its deadline pass while it is down
        let second = try await cluster.startCoordinator(journal: journal)
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.eventually("the delayed job's end") { await cluster.endState(of: handle.id, in: journal) != nil }
        let job = try #require(try await journal.job(handle.id))
        #expect(job.state == .done, "\(job.state): \(job.error ?? "")")
        await worker.stop()
        await second.stop()
    }

    /// A cancel ends a delayed job before it is answered, and frees its key: the next
    /// submission with that key is a new job (it followed the cancelled one for up to 250 ms).
    @Test func aDelayedJobCanBeCancelledWhileItWaits() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal)
        let handle = try await coordinator.submit(
            Echo.path, arguments: try echoArguments(), key: "nightly", notBefore: Date().addingTimeInterval(600))
        try await cluster.settle()  // it waits for its start
        await coordinator.cancel(job: handle.id)
        #expect(await cluster.endState(of: handle.id, in: journal) == .cancelled)
        let next = try await coordinator.submit(
            Echo.path, arguments: try echoArguments(), key: "nightly", notBefore: Date().addingTimeInterval(600))
        #expect(next.id != handle.id)
        #expect(cluster.runs.total == 0)
        await coordinator.stop()
    }

    /// A cancel once acknowledged survives a stop right after it, before the worker heard it:
    /// the next start applies it again and the job ends cancelled (it ran on). The cancel's
    /// journal entry goes with the job's end.
    @Test func anAcknowledgedCancelSurvivesAStopBeforeTheWorkerHeardIt() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let first = try await cluster.startCoordinator(journal: journal)
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        try await cluster.waitForWorkers(first, 1)
        cluster.runs.block("w1")
        let handle = try await cluster.submit(first)
        try await cluster.eventually("the run", step: .zero) { cluster.runs.total == 1 }
        let muted = cluster.network.intercept { stanza, _ in stanza.elements.first?.name == "cancel" ? .drop : .route }
        await first.cancel(job: handle.id, reason: "cancelled by ops@localhost")
        await first.stop()
        #expect(try await journal.job(handle.id)?.state == .running)
        cluster.network.removeInterceptor(muted)
        let second = try await cluster.startCoordinator(journal: journal)
        try await cluster.eventually("the cancelled end", step: .zero) { await cluster.endState(of: handle.id, in: journal) == .cancelled }
        #expect(try await journal.job(handle.id)?.error?.contains("cancelled by ops@localhost") == true)
        #expect(try await journal.meta(prefix: "cancel.").isEmpty, "the cancel's entry outlived the job")
        #expect(cluster.runs.total == 1)
        cluster.runs.block("w1", false)
        await worker.stop()
        await second.stop()
    }

    /// A delayed job whose cancel was journalled by a run that stopped before it ended the job
    /// (the operator had the answer) ends cancelled at the next start; it came back pending.
    @Test func aJournalledCancelOfADelayedJobIsAppliedAtTheNextStart() async throws {
        let (_, cluster, journal, handle) = try await delayedJobOfAStoppedCoordinator()
        // What `cancel` journals before it answers, as the stopped run left it.
        try await journal.write(.setMeta(key: "cancel.\(handle.id)", value: "cancelled by ops@localhost"))
        try await journal.write(.setMeta(key: "cancel.\(String(repeating: "f", count: 32))", value: "a job pruned since"))
        let second = try await cluster.startCoordinator(journal: journal)
        try await cluster.eventually("the cancelled end") { await cluster.endState(of: handle.id, in: journal) == .cancelled }
        #expect(try await journal.job(handle.id)?.error?.contains("cancelled by ops@localhost") == true)
        #expect(try await journal.meta(prefix: "cancel.").isEmpty)
        #expect(cluster.runs.total == 0)
        await second.stop()
    }

    /// A submitter that uses one IQ id again for another job (a client that restarts its id
    /// counter) hears `conflict`; the coordinator answered the earlier job's acceptance, and
    /// the new job was never run. The same op again still gets the journalled answer.
    @Test func anIQIdUsedAgainForAnotherJobIsAConflictNotTheOldAnswer() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal)
        let raw = cluster.network.transport(JID("alice@localhost/raw")!, clock: cluster.clock, requestTimeout: .seconds(5))
        try await raw.start()
        func send(_ token: JobToken, id: String) async throws -> IQ {
            let op = ProtocolMessage.op(type: Echo.path, token: token, scope: .single, arguments: try echoArguments()).element
            return try await raw.sendAndWait(IQ(type: .set, id: id, to: MemoryCluster.coordinatorJID, payload: op), timeout: .seconds(5))
        }
        let first = try #require(JobToken.newJob())
        let second = try #require(JobToken.newJob())
        let accepted = try await send(first, id: "e1")
        #expect(try await send(first, id: "e1").payload == accepted.payload, "a repeat is answered as before")
        let refused = await #expect(throws: NatterError.self) { _ = try await send(second, id: "e1") }
        #expect(refused?.stanzaError?.condition == .conflict && refused?.stanzaError?.text?.contains("send this op with a new id") == true)
        #expect(try await journal.job(second.job) == nil)
        #expect(try await journal.job(first.job) != nil)
        await raw.stop()
        await coordinator.stop()
    }

    @Test func aSubmitterDelaysAJobAndTheCoordinatorRefusesADelayPastTenYears() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal)
        let submitter = try await cluster.startSubmitter()
        let job = try await submitter.submit(Echo.path, arguments: try echoArguments(), notBefore: Date().addingTimeInterval(120))
        let stored = try #require(try await journal.job(job.id))
        #expect(abs((stored.notBefore ?? .distantPast).timeIntervalSinceNow - 120) < 30)
        await #expect(throws: VertebraError.self) {
            _ = try await submitter.submit(Echo.path, arguments: try echoArguments(), notBefore: Date().addingTimeInterval(20 * 365 * 86400))
        }
        await submitter.stop()
        await coordinator.stop()
    }

    // MARK: - Cancel and retry over XMPP

    private func startOps(_ cluster: MemoryCluster, _ name: String) async throws -> Submitter {
        let transport = cluster.network.transport(JID("\(name)@localhost/ops")!, clock: cluster.clock, requestTimeout: cluster.answerTimeout)
        let submitter = Submitter(client: transport, coordinator: MemoryCluster.coordinatorJID, answerTimeout: cluster.answerTimeout)
        try await submitter.start()
        return submitter
    }

    @Test func anOperatorCancelsARunningJobAndRetriesItAsANewLinkedJob() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) { $0.accessList = (try? AccessList(parsing: Self.opsACL)) ?? AccessList() }
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"), fastPath: false)
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.block("w1")
        let alice = try await cluster.startSubmitter()
        let job = try await cluster.submit(alice, "again")
        try await cluster.eventually("the first run") { cluster.runs.total == 1 }
        let ops = try await startOps(cluster, "ops")
        let cancelled = try await ops.cancelJob(String(job.id.prefix(12)))
        #expect(cancelled == JobActionResult(job: job.id, state: "cancelling", retryOf: nil))
        try await cluster.eventually("the cancelled end") { await cluster.endState(of: job.id, in: journal) == .cancelled }
        cluster.runs.block("w1", false)
        let retried = try await ops.retryJob(job.id)
        #expect(retried.retryOf == job.id)
        #expect(retried.job != job.id)
        try await cluster.eventually("the retry's end") { await cluster.endState(of: retried.job, in: journal) == .done }
        #expect(try await journal.job(retried.job)?.retryOf == job.id)
        #expect(try await journal.timeline(ofJob: job.id).retries == [retried.job])
        // The submitter may act on its own job too; a done job cannot be retried, an ended
        // one not cancelled.
        await #expect(throws: VertebraError.self) { _ = try await alice.retryJob(retried.job) }
        await #expect(throws: VertebraError.self) { _ = try await alice.cancelJob(retried.job) }
        await alice.stop()
        await ops.stop()
        await worker.stop()
        await coordinator.stop()
    }

    @Test func strangersAndUnknownJobsAreRefused() async throws {
        let cluster = try MemoryCluster()
        let journal = try cluster.journal("coordinator")
        let coordinator = try await cluster.startCoordinator(journal: journal) {
            $0.accessList = (try? AccessList(parsing: Self.opsACL + "\nbob@localhost /test")) ?? AccessList()
        }
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.failNext(100)
        let alice = try await cluster.startSubmitter()
        let job = try await cluster.submit(alice, "fails")
        try await cluster.eventually("the failed end") { await cluster.endState(of: job.id, in: journal) == .failed }
        // bob may dispatch, but not act on alice's job; mallory is not in the ACL at all.
        for name in ["bob", "mallory"] {
            let other = try await startOps(cluster, name)
            await #expect(throws: VertebraError.self) { _ = try await other.retryJob(job.id) }
            await other.stop()
        }
        let ops = try await startOps(cluster, "ops")
        let unknown = await #expect(throws: VertebraError.self) { _ = try await ops.cancelJob("ffffffffffffffff") }
        #expect(unknown?.message.contains("No job") == true || unknown?.message.contains("no job") == true, "\(String(describing: unknown))")
        await #expect(throws: VertebraError.self) { _ = try await ops.retryJob("") }
        #expect(try await journal.jobs(matching: JobFilter(limit: 10)).count == 1)
        await ops.stop()
        await alice.stop()
        await worker.stop()
        await coordinator.stop()
    }
}
