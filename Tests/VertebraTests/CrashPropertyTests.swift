import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import Vertebra
import VertebraJournal
import VertebraXML

/// For a job run on the in-memory network, the coordinator (or the worker) dies after its
/// 0th, 1st, 2nd, ... journal commit in turn — its in-memory state dropped, its link cut at
/// that instant — and starts again from its journal. Whatever the commit, the job ends `done`
/// with its result, and no attempt's handler ran twice.
@Suite(.timeLimit(.minutes(5))) struct CrashPropertyTests {
    @Test(arguments: ["coordinator", "worker"])
    func aJobEndsDoneWhicheverCommitItsProcessDiesAfter(victim: String) async throws {
        // CRASH_POINT=N runs only that commit (to debug one).
        if let only = ProcessInfo.processInfo.environment["CRASH_POINT"].flatMap(Int.init) {
            _ = try await timed(victim, only, { try await runJob(dyingAfter: only, victim: victim) })
            return
        }
        var commit = 0
        while try await timed(victim, commit, { try await runJob(dyingAfter: commit, victim: victim) }) {
            commit += 1
            guard commit < 40 else {
                Issue.record("the \(victim) still had commits to die after at 40")
                return
            }
        }
        // The last run finished before its crash point: every point before it was tried.
        #expect(commit >= 2, "the \(victim) made only \(commit) commits for a whole job")
    }

    private func timed(_ victim: String, _ commit: Int, _ body: () async throws -> Bool) async rethrows -> Bool {
        let start = ContinuousClock.now
        let result = try await body()
        if ProcessInfo.processInfo.environment["CRASH_TIMES"] != nil { print("\(victim) \(commit): \(ContinuousClock.now - start)") }
        return result
    }

    /// Runs one job, submitted over the network as `vertebra dispatch` does, with `victim`
    /// dying after `commits` commits; returns whether it died.
    private func runJob(dyingAfter commits: Int, victim: String) async throws -> Bool {
        let cluster = try MemoryCluster()
        let victimJID = victim == "coordinator" ? MemoryCluster.coordinatorJID : JID("w1@localhost/w")!
        let died = NIOLockedValueBox(false)
        let network = cluster.network
        let crash = ExchangeJournal.SimulatedCrash(afterCommits: commits) {
            died.withLockedValue { $0 = true }
            network.cut(victimJID, reason: "the process died")
        }
        let hasDied: @Sendable () -> Bool = { died.withLockedValue { $0 } }
        let context = "\(victim) dying after commit \(commits)"

        var coordinatorJournal = try cluster.journal("coordinator", crash: victim == "coordinator" ? crash : nil)
        var workerJournal = try cluster.journal("w1", crash: victim == "worker" ? crash : nil)
        var coordinator = try? await cluster.startCoordinator(journal: coordinatorJournal)
        var worker = try? await cluster.startWorker("w1", journal: workerJournal)
        let submitter = try await cluster.startSubmitter()
        var accepted: Submitter.Job?
        var heard: SubmitterEnd?
        if let coordinator, worker != nil {
            try? await cluster.eventually("registration", limit: .seconds(5)) { await coordinator.workers.count == 1 || hasDied() }
            if !hasDied() { accepted = try? await cluster.submit(submitter, "payload") }
            if let accepted {
                let end = SubmitterEnd(accepted)
                heard = end
                // Done means: the submitter heard the end (nothing is left to commit).
                try? await cluster.eventually("the job or the crash", limit: .seconds(10)) { end.outcome != nil || hasDied() }
            }
        }
        let crashed = hasDied()
        if crashed {
            // The process is gone: drop it, and start a new one from its journal.
            if victim == "coordinator" {
                await coordinator?.stop()
                await coordinatorJournal.close()
                coordinatorJournal = try cluster.journal("coordinator")
                coordinator = try await cluster.startCoordinator(journal: coordinatorJournal)
            } else {
                await worker?.stop()
                await workerJournal.close()
                workerJournal = try cluster.journal("w1")
                worker = try await cluster.startWorker("w1", journal: workerJournal)
            }
        }
        guard let coordinator, let worker else {
            Issue.record("\(context): an agent did not start")
            return crashed
        }
        var jobs = try await coordinatorJournal.jobs(matching: JobFilter()).map(\.token)
        if let job = accepted?.id {
            #expect(jobs == [job], "\(context): the accepted job \(job) is not (alone) in the journal: \(jobs)")
        } else if jobs.isEmpty {
            // Never accepted nor journalled: nothing ran; a new submission goes through.
            #expect(cluster.runs.total == 0, "\(context): a handler ran for a job nobody journalled")
            try await cluster.waitForWorkers(coordinator, 1)
            accepted = try await cluster.submit(submitter, "payload")
            heard = accepted.map(SubmitterEnd.init)
            jobs = accepted.map { [$0.id] } ?? []
        }
        for job in jobs {
            let journal = coordinatorJournal
            try await cluster.eventually("\(context): the job to end") { await cluster.endState(of: job, in: journal) != nil }
            let ended = try await coordinatorJournal.job(job)
            #expect(ended?.state == .done, "\(context): \(ended?.state.rawValue ?? "?") \(ended?.error ?? "")")
            #expect(ended?.result?.contains("payload") == true, "\(context): result \(ended?.result ?? "none")")
        }
        if let heard {
            try? await cluster.eventually("\(context): the submitter to hear the end", limit: .seconds(10)) { heard.outcome != nil }
            #expect(heard.outcome == "done", "\(context): the submitter heard \(heard.outcome ?? "nothing")")
        }
        let twice = cluster.runs.byAttempt.filter { $0.value > 1 }
        #expect(twice.isEmpty, "\(context): attempts run twice: \(twice)")
        await submitter.stop()
        await worker.stop()
        await coordinator.stop()
        return crashed
    }
}

/// How a submitted job ended, as its submitter heard it (`done`, `failed: ...`), once it did.
final class SubmitterEnd: Sendable {
    private let box = NIOLockedValueBox<String?>(nil)
    private let listener: Task<Void, Never>

    init(_ job: Submitter.Job) {
        let box = self.box
        listener = Task {
            for await event in job.events {
                switch event {
                case .done: box.withLockedValue { $0 = "done" }
                case .failed(let error): box.withLockedValue { $0 = "failed: \(error)" }
                default: continue
                }
            }
        }
    }

    deinit { listener.cancel() }

    var outcome: String? { box.withLockedValue { $0 } }
}
