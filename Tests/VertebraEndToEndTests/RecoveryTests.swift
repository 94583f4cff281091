import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// The recovery promise with real processes: a graceful stop, a restart, a silent worker, a
/// burst and a crash sequence each leave every job in a known end, run once per attempt.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RecoveryTests {
    typealias Setup = CrashTests.Setup

    /// Runs `body` with a router and a journal directory, stopped and removed on every path.
    func withSetup(_ body: (Setup) async throws -> Void) async throws {
        let setup = try await Setup.make()
        defer { setup.finish() }
        try await body(setup)
    }

    func job(_ setup: Setup, _ token: String) async throws -> Job? {
        try await readJournal(setup.coordinatorJournal).jobs(matching: JobFilter(limit: 100_000)).first { $0.token == token }
    }

    func states(_ setup: Setup, _ tokens: [String]) async throws -> [JobState] {
        let all = try await readJournal(setup.coordinatorJournal).jobs(matching: JobFilter(limit: 100_000))
        return tokens.compactMap { token in all.first { $0.token == token }?.state }
    }

    // 1. A graceful stop leaves running jobs unfinished; they finish after the restart.
    @Test func aGracefulStopLeavesRunningJobsToFinishAfterTheRestart() async throws {
        try await withSetup { setup in
            var coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let workers = try (1...2).map { try AgentProcess.worker($0, setup.server, directory: setup.directory) }
            defer {
                coordinator.stop()
                for worker in workers { worker.stop() }
            }
            try await CrashTests().waitForWorkers(setup, count: 2)
            let submitter = try await setup.submitter()
            defer { Task { await submitter.stop() } }
            var tokens: [String] = []
            for _ in 0..<4 {
                // Not retryable: failing it on stop would be final. Long enough that all four
                // overlap even when a loaded machine starts them seconds apart.
                tokens.append(try await submitter.submit(Diagnostics.Sleep.path, arguments: try TypedArguments.parse(["milliseconds=i4:20000"])).id)
            }
            let running = try await eventually(timeout: .seconds(30)) { try await states(setup, tokens) == Array(repeating: .running, count: 4) }
            let seen = try await states(setup, tokens)
            #expect(running, "\(seen)")
            coordinator.stop()
            #expect(coordinator.logText.contains("stopping; unfinished jobs resume at the next start"))
            let afterStop = try await states(setup, tokens)
            #expect(afterStop.allSatisfy { !$0.isTerminal }, "a graceful stop ended jobs: \(afterStop)")
            coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let done = try await eventually(timeout: .seconds(60)) { try await states(setup, tokens) == Array(repeating: .done, count: 4) }
            let final = try await states(setup, tokens)
            #expect(done, "states \(final)\n\(coordinator.logText.suffix(3000))")
            let runs = try await setup.handlerRuns(workers: 2)
            #expect(tokens.allSatisfy { runs[$0] == 1 }, "handler runs: \(runs)")
        }
    }

    // 2. A restarted coordinator knows its live workers at once (their TTL is long).
    @Test(arguments: [false, true])
    func aRestartedCoordinatorKnowsItsLiveWorkersAtOnce(killed: Bool) async throws {
        try await withSetup { setup in
            var coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, workerWait: 3)
            // Refreshed every 108 s: a coordinator that waits for the refresh cannot pass.
            let workers = try (1...2).map { try AgentProcess.worker($0, setup.server, directory: setup.directory, ttl: 120) }
            defer {
                coordinator.stop()
                for worker in workers { worker.stop() }
            }
            try await CrashTests().waitForWorkers(setup, count: 2)
            if killed { coordinator.kill() } else { coordinator.stop() }
            coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, workerWait: 3)
            let restarted = ContinuousClock.now
            let submitter = try await setup.submitter()
            defer { Task { await submitter.stop() } }
            // scope all: the result names every worker the coordinator knows.
            var workersSeen = 0
            var lastError: VertebraError?
            while ContinuousClock.now - restarted < .seconds(20) && workersSeen < 2 {
                if let job = try? await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=x"]), scope: .all) {
                    let result = await outcome(of: job)
                    lastError = result.error
                    workersSeen = result.error == nil ? result.chunks.count : 0
                }
                if workersSeen < 2 { try await Task.sleep(for: .milliseconds(250)) }
            }
            let took = ContinuousClock.now - restarted
            #expect(workersSeen == 2, "after \(took): \(String(describing: lastError))\n\(coordinator.logText.suffix(2000))")
            #expect(took < .seconds(15), "the restarted coordinator knew its workers only after \(took)")
        }
    }

    // 3. A 0.4 performer (no journal) that lost its conversation while the coordinator was down
    //    stays present and silent: the attempt ends worker-silent instead of running forever.
    @Test func anAttemptWhoseWorkerFallsSilentEndsWorkerSilent() async throws {
        try await withSetup { setup in
            let extra = ["--silence-timeout", "3"]
            var coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: extra)
            defer { coordinator.stop() }
            let performer = Cluster.jid(setup.server, "w3", "py")
            let python = Process()
            python.executableURL = URL(fileURLWithPath: TestPython.path)
            python.arguments = [
                Vertebra04InteropTests.peer, "perform", "--port", String(setup.server.port), "--jid", performer.description,
                "--cafile", setup.server.caFile,
            ]
            python.environment = ProcessInfo.processInfo.environment.merging(["PEER_PASSWORD": XMPPServerProcess.password]) { $1 }
            let pipe = Pipe()
            python.standardOutput = pipe
            python.standardError = FileHandle.nullDevice
            try python.run()
            defer {
                // SIGKILL: the test process's blocked signal mask is inherited, SIGTERM would wait.
                kill(python.processIdentifier, SIGKILL)
                python.waitUntilExit()
            }
            var printed = Data()
            while !String(decoding: printed, as: UTF8.self).contains("\"ready\"") {
                let chunk = pipe.fileHandleForReading.availableData
                guard !chunk.isEmpty else { break }
                printed += chunk
            }
            let submitter = try await setup.submitter()
            defer { Task { await submitter.stop() } }
            let job = try await submitter.submit(
                "/test/count", arguments: try TypedArguments.parse(["n=i4:30", "delay_ms=i4:300"]), scope: .direct, to: [performer])
            let running = try await eventually(timeout: .seconds(20)) { try await states(setup, [job.id]) == [.running] }
            #expect(running)
            coordinator.kill()
            // The performer's next data finds nobody: it drops the attempt, and stays online.
            try await Task.sleep(for: .seconds(2))
            coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: extra)
            let ended = try await eventually(timeout: .seconds(40)) { try await states(setup, [job.id]).first?.isTerminal == true }
            let stored = try await self.job(setup, job.id)
            #expect(ended, "the job is \(String(describing: stored?.state)) after 40 s\n\(coordinator.logText.suffix(2000))")
            #expect(stored?.state == .failed)
            #expect(stored?.error?.contains("worker-silent") == true, "\(String(describing: stored?.error))")
            #expect(python.isRunning, "the performer should still be online (present but silent)")
        }
    }

    // 4. A burst far beyond the workers' capacity queues and every job finishes.
    @Test func aBurstBeyondEveryWorkersCapacityQueuesAndEveryJobFinishes() async throws {
        try await withSetup { setup in
            // --worker-wait 2 is far shorter than the burst takes: only "no capable worker at
            // all" may fail a job, never "all busy".
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, workerWait: 2)
            let workers = try (1...2).map { try AgentProcess.worker($0, setup.server, directory: setup.directory, extra: ["--max-jobs", "4"]) }
            defer {
                coordinator.stop()
                for worker in workers { worker.stop() }
            }
            try await CrashTests().waitForWorkers(setup, count: 2)
            let submitter = try await setup.submitter()
            defer { Task { await submitter.stop() } }
            var jobs: [Submitter.Job] = []
            for _ in 0..<240 {
                jobs.append(try await submitter.submit(Diagnostics.Sleep.path, arguments: try TypedArguments.parse(["milliseconds=i4:100"])))
            }
            var failures: [String] = []
            for job in jobs {
                if let error = await outcome(of: job).error { failures.append("\(job.id): \(error)") }
            }
            #expect(failures.isEmpty, "\(failures.count) failed, first: \(failures.prefix(3))")
            let states = try await self.states(setup, jobs.map(\.id))
            #expect(states.count == 240 && states.allSatisfy { $0 == .done })
        }
    }

    // 5. A retryable job dispatched from the CLI stays retryable across a coordinator crash:
    //    its worker then dies and it finishes on the other worker.
    @Test func aRetryableCLIJobSurvivesACoordinatorCrashThenAWorkerCrash() async throws {
        try await withSetup { setup in
            var coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let workers = try (1...2).map { try AgentProcess.worker($0, setup.server, directory: setup.directory) }
            defer {
                coordinator.stop()
                for worker in workers { worker.stop() }
            }
            try await CrashTests().waitForWorkers(setup, count: 2)
            let (status, printed) = try await AgentProcess.command(
                ["dispatch", Diagnostics.IdempotentSleep.path.path, "milliseconds=i4:8000", "--detach"],
                server: setup.server, directory: setup.directory)
            #expect(status == 0, "dispatch printed: \(printed)")
            let id = printed.trimmingCharacters(in: .whitespacesAndNewlines)
            let running = try await eventually(timeout: .seconds(20)) { try await states(setup, [id]) == [.running] }
            let seen = try await states(setup, [id])
            #expect(running, "job '\(id)': \(seen)")
            let first = try #require(try await job(setup, id)?.worker)
            coordinator.kill()
            coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            #expect(try await eventually(timeout: .seconds(20)) { coordinator.logText.contains("resuming unfinished jobs") })
            let victim = first.hasPrefix("w1@") ? workers[0] : workers[1]
            victim.kill()
            let done = try await eventually(timeout: .seconds(60)) { try await states(setup, [id]) == [.done] }
            let stored = try await job(setup, id)
            #expect(done, "\(String(describing: stored?.state)) \(String(describing: stored?.error))\n\(coordinator.logText.suffix(2000))")
            #expect(stored?.attempts == 2)
            #expect(stored?.worker != first)
        }
    }
}

extension RecoveryTests {
    // 6. A worker whose journal fills up ends the affected attempts loudly (journal-failed), so
    //    they are retried on the other worker at once instead of waiting on a silent worker.
    @Test func aWorkerWhoseJournalFillsEndsItsJobsLoudlyAndTheyFinishElsewhere() async throws {
        try await withSetup { setup in
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let full = try AgentProcess.worker(1, setup.server, directory: setup.directory, extra: ["--journal-max-size", "256k"])
            let roomy = try AgentProcess.worker(2, setup.server, directory: setup.directory)
            defer {
                coordinator.stop()
                full.stop()
                roomy.stop()
            }
            try await CrashTests().waitForWorkers(setup, count: 2)
            let submitter = try await setup.submitter()
            defer { Task { await submitter.stop() } }
            let text = String(repeating: "0123456789abcdef", count: 512)  // 8 KiB
            var jobs: [Submitter.Job] = []
            for _ in 0..<60 {
                jobs.append(try await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=\(text)"])))
            }
            // Far below the silence timeout (120 s): no job may wait on a silent worker.
            let deadline = ContinuousClock.now + .seconds(60)
            var failures: [String] = []
            for job in jobs {
                switch try await end(of: job, before: deadline) {
                case .done: continue
                case .failed(let error): failures.append("\(job.id): \(error)")
                case .timedOut: failures.append("\(job.id): did not end within 60 s")
                }
            }
            let stuck = failures.compactMap { $0.split(separator: ":").first.map(String.init) }
            func lines(_ process: AgentProcess) -> String {
                process.logText.split(separator: "\n").filter { line in stuck.contains { line.contains($0) } }.suffix(40).joined(separator: "\n")
            }
            #expect(failures.isEmpty, "\(failures.count) of 60 did not finish: \(failures.prefix(3))\ncoordinator:\n\(lines(coordinator))\nfull worker:\n\(lines(full))\nroomy worker:\n\(lines(roomy))")
            #expect(full.logText.contains("could not journal"), "the full journal was never hit:\n\(full.logText.suffix(2000))")
        }
    }

    // A stop signal stops a worker whose server is gone (it used to wait on its reconnection to
    // withdraw its advertisement).
    @Test func aWorkerWhoseServerIsGoneStopsAtOnceOnSIGTERM() async throws {
        try await withSetup { setup in
            let worker = try AgentProcess.worker(1, setup.server, directory: setup.directory)
            defer { worker.stop() }
            #expect(try await eventually(timeout: .seconds(20)) { worker.logText.contains("worker ready") })
            try await expectAPromptExitOnSIGTERMWithTheServerGone(setup, worker)
        }
    }

    /// The same with a job running and a long drain: its end cannot reach the coordinator, so
    /// the drain does not wait for it (it waited out --drain-timeout); the end stays journalled.
    @Test func aWorkerWhoseServerIsGoneStopsAtOnceOnSIGTERMEvenWithAJobRunning() async throws {
        try await withAJobRunningOnW1(drainTimeout: 60, milliseconds: 60_000) { setup, worker, id in
            try await expectAPromptExitOnSIGTERMWithTheServerGone(setup, worker)
            #expect(worker.logText.contains("the server is gone"))
            #expect(!worker.logText.contains("could not journal"), "\(worker.logText.suffix(1500))")
            // Interrupted, not ended: the next start sends its end.
            let conversations = try await readJournal("\(setup.directory)/w1.sqlite").timeline(ofJob: id).conversations
            #expect(conversations.map(\.state) == [.open])
        }
    }

    /// Stops the server, waits for `worker` to notice, sends SIGTERM: it must exit within 8 s.
    private func expectAPromptExitOnSIGTERMWithTheServerGone(_ setup: Setup, _ worker: AgentProcess) async throws {
        setup.server.stop()
        #expect(try await eventually(timeout: .seconds(10)) { worker.logText.contains("reconnecting") })
        let signalled = ContinuousClock.now
        worker.signalTerminate()
        let exited = try await eventually(timeout: .seconds(8)) { worker.hasExited }
        #expect(exited, "still running \(ContinuousClock.now - signalled) after SIGTERM:\n\(worker.logText.suffix(1500))")
    }

    enum End { case done, failed(VertebraError), timedOut }

    func end(of job: Submitter.Job, before deadline: ContinuousClock.Instant) async throws -> End {
        try await withThrowingTaskGroup(of: End.self) { group in
            group.addTask { await outcome(of: job).error.map(End.failed) ?? .done }
            group.addTask {
                try await Task.sleep(until: deadline)
                return .timedOut
            }
            defer { group.cancelAll() }
            return try await group.next() ?? .timedOut
        }
    }
}

/// Graceful drain (SIGTERM to `vertebra worker`): no new jobs, running ones finish within
/// `--drain-timeout`, then the worker exits; past the timeout they are cancelled and a
/// retryable job finishes elsewhere.
extension RecoveryTests {
    @Test func aDrainingWorkerFinishesItsRunningJobTakesNoNewOneAndExits() async throws {
        try await withSetup { setup in
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let leaving = try AgentProcess.worker(1, setup.server, directory: setup.directory, extra: ["--drain-timeout", "20"])
            let staying = try AgentProcess.worker(2, setup.server, directory: setup.directory)
            defer {
                coordinator.stop()
                leaving.stop()
                staying.stop()
            }
            try await CrashTests().waitForWorkers(setup, count: 2)
            let w1 = "w1@\(setup.server.domain)/w1"
            let (status, printed) = try await AgentProcess.command(
                ["dispatch", Diagnostics.Sleep.path.path, "milliseconds=i4:3000", "--scope", "direct", "--to", w1, "--detach"],
                server: setup.server, directory: setup.directory)
            #expect(status == 0, "dispatch printed: \(printed)")
            let running = printed.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await eventually(timeout: .seconds(20)) { try await states(setup, [running]) == [.running] })
            leaving.signalTerminate()
            #expect(try await eventually(timeout: .seconds(10)) { leaving.logText.contains("draining") })
            // A new job goes to the worker that stays.
            let (_, newPrinted) = try await AgentProcess.command(
                ["dispatch", Diagnostics.Echo.path.path, "text=after", "--detach"], server: setup.server, directory: setup.directory)
            let fresh = newPrinted.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await eventually(timeout: .seconds(20)) { try await states(setup, [running, fresh]) == [.done, .done] })
            #expect(try await job(setup, fresh)?.worker?.hasPrefix("w2@") == true)
            let finished = try await job(setup, running)
            #expect(finished?.attempts == 1, "the running job finished where it ran")
            #expect(try await eventually(timeout: .seconds(10)) { leaving.hasExited }, "\(leaving.logText.suffix(1500))")
        }
    }

    @Test func pastTheDrainTimeoutARetryableJobIsCancelledAndFinishesElsewhere() async throws {
        try await withAJobRunningOnALeavingWorker(drainTimeout: 1, milliseconds: 4000) { setup, leaving, id in
            let signalled = ContinuousClock.now
            leaving.signalTerminate()
            #expect(try await eventually(timeout: .seconds(10)) { leaving.hasExited })
            #expect(ContinuousClock.now - signalled < .seconds(8), "the drain timeout (1 s) bounds the stop")
            #expect(try await eventually(timeout: .seconds(40)) { try await states(setup, [id]) == [.done] })
            let stored = try await job(setup, id)
            #expect(stored?.worker?.hasPrefix("w2@") == true)
            #expect((stored?.attempts ?? 0) >= 2)
        }
    }

    @Test func aSecondSignalCutsTheDrainShortAndTheJobFinishesElsewhere() async throws {
        try await withAJobRunningOnALeavingWorker(drainTimeout: 120, milliseconds: 60_000) { setup, leaving, id in
            leaving.signalTerminate()
            #expect(try await eventually(timeout: .seconds(10)) { leaving.logText.contains("draining") })
            try await Task.sleep(for: .seconds(1))
            #expect(!leaving.hasExited, "a 60 s job and a 120 s drain: the first signal alone does not stop the worker")
            let signalled = ContinuousClock.now
            leaving.signalTerminate()
            #expect(try await eventually(timeout: .seconds(10)) { leaving.hasExited }, "\(leaving.logText.suffix(1500))")
            #expect(ContinuousClock.now - signalled < .seconds(8), "the second signal stops the drain at once")
            #expect(leaving.logText.contains("second signal: stopping at once"))
            // The cut-off attempt ends worker-lost at once, and the retry runs on w2 (60 s).
            #expect(try await eventually(timeout: .seconds(20)) { try await job(setup, id)?.worker?.hasPrefix("w2@") == true })
            #expect((try await job(setup, id)?.attempts ?? 0) >= 2)
        }
    }

    /// A coordinator, worker w1 (`leaving`, with `--drain-timeout`) running a retryable sleep of
    /// `milliseconds` (job `id`), and worker w2 started after it to take the retry; every
    /// process is stopped on every path.
    private func withAJobRunningOnALeavingWorker(
        drainTimeout: Int, milliseconds: Int, _ body: (Setup, AgentProcess, String) async throws -> Void
    ) async throws {
        try await withAJobRunningOnW1(drainTimeout: drainTimeout, milliseconds: milliseconds) { setup, leaving, id in
            let staying = try AgentProcess.worker(2, setup.server, directory: setup.directory, extra: ["--drain-timeout", "0"])
            defer { staying.stop() }
            try await CrashTests().waitForWorkers(setup, count: 2)
            try await body(setup, leaving, id)
        }
    }

    /// A coordinator and worker w1 (`--drain-timeout` as given) as processes, w1 running a
    /// retryable sleep of `milliseconds` (job `id`); every process is stopped on every path.
    private func withAJobRunningOnW1(
        drainTimeout: Int, milliseconds: Int, _ body: (Setup, AgentProcess, String) async throws -> Void
    ) async throws {
        try await withSetup { setup in
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let worker = try AgentProcess.worker(1, setup.server, directory: setup.directory, extra: ["--drain-timeout", "\(drainTimeout)"])
            defer {
                coordinator.stop()
                worker.stop()
            }
            try await CrashTests().waitForWorkers(setup, count: 1)
            let (status, printed) = try await AgentProcess.command(
                ["dispatch", Diagnostics.IdempotentSleep.path.path, "milliseconds=i4:\(milliseconds)", "--detach"],
                server: setup.server, directory: setup.directory)
            #expect(status == 0, "dispatch printed: \(printed)")
            let id = printed.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await eventually(timeout: .seconds(20)) { try await states(setup, [id]) == [.running] })
            try await body(setup, worker, id)
        }
    }
}

/// `vertebra dispatch --batch FILE` against real processes: every line becomes a job, the ids
/// come back in file order, and every job runs once.
extension RecoveryTests {
    /// Runs `body` with a router, a coordinator and worker w1 as processes, stopped on every path.
    func withCoordinatorAndOneWorker(_ body: (Setup) async throws -> Void) async throws {
        try await withSetup { setup in
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
            let worker = try AgentProcess.worker(1, setup.server, directory: setup.directory)
            defer {
                coordinator.stop()
                worker.stop()
            }
            try await CrashTests().waitForWorkers(setup, count: 1)
            try await body(setup)
        }
    }

    /// From a file, and piped in (`--batch -`: read once, checked, then sent).
    @Test func aBatchFileIsSubmittedAndEveryJobRuns() async throws {
        try await withCoordinatorAndOneWorker { setup in
            let file = "\(setup.directory)/jobs.txt"
            let lines = (0..<1_200).map { "\(Diagnostics.Echo.path.path) text=\"line \($0)\"" }
            try ("# 1,200 echoes: two requests\n" + lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let piped = try await AgentProcess.command(
                ["dispatch", "--batch", "-"], server: setup.server, directory: setup.directory, errors: true,
                input: "\(Diagnostics.Echo.path.path) text=piped\n")
            #expect(piped.0 == 0 && piped.1.contains("accepted 1 of 1 jobs"), "dispatch --batch - printed: \(piped.1)")
            let (status, printed) = try await AgentProcess.command(["dispatch", "--batch", file], server: setup.server, directory: setup.directory)
            #expect(status == 0, "dispatch printed: \(printed.suffix(500))")
            let ids = printed.split(separator: "\n").map(String.init)
            #expect(ids.count == 1_200)
            #expect(Set(ids).count == 1_200)
            #expect(try await eventually(timeout: .seconds(120)) { try await states(setup, ids).allSatisfy { $0 == .done } })
            for index in [0, 599, 1_199] {
                let stored = try await job(setup, ids[index])
                #expect(stored?.result?.contains("line \(index)") == true, "job \(index): \(stored?.result ?? "none")")
                #expect(stored?.attempts == 1)
            }
        }
    }
}

/// `vertebra dispatch` answers the coordinator's last message before it exits.
extension RecoveryTests {
    /// The command stops its client right after the job's `final`; that `final`'s answer used to
    /// be lost now and then (1 run in 10), leaving the coordinator's conversation with it open,
    /// the `final` re-sent at every restart.
    @Test func dispatchesLeaveNoConversationOpenAtTheCoordinator() async throws {
        try await withCoordinatorAndOneWorker { setup in
            var ids: [String] = []
            for index in 0..<20 {
                let (status, printed) = try await AgentProcess.command(
                    ["dispatch", Diagnostics.Echo.path.path, "text=run\(index)", "--json"], server: setup.server, directory: setup.directory)
                #expect(status == 0, "dispatch printed: \(printed)")
                let object = try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any]
                ids += [object?["job"] as? String].compactMap { $0 }
            }
            #expect(ids.count == 20)
            let open = { () async throws -> [String] in
                let journal = try readJournal(setup.coordinatorJournal)
                var open: [String] = []
                for id in ids {
                    open += try await journal.timeline(ofJob: id).conversations.filter { $0.state == .open }.map { "\(id) \($0.peer)" }
                }
                return open
            }
            let closed = try await eventually(timeout: .seconds(10)) { try await open().isEmpty }
            let left = try await open()
            #expect(closed, "open: \(left)")
        }
    }
}

/// `vertebra workers` against real processes.
extension RecoveryTests {
    @Test func theWorkersCommandListsTheLiveRoster() async throws {
        try await withCoordinatorAndOneWorker { setup in
            let (status, printed) = try await AgentProcess.command(["workers", "--json"], server: setup.server, directory: setup.directory)
            #expect(status == 0, "workers printed: \(printed)")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [[String: Any]])
            #expect(rows.count == 1)
            #expect(rows.first?["jid"] as? String == "w1@\(setup.server.domain)/w1")
            #expect((rows.first?["operations"] as? [String])?.contains(Diagnostics.Echo.path.path) == true)
            #expect(rows.first?["capacity"] as? Int != nil && rows.first?["outstanding"] as? Int == 0)
            let (_, table) = try await AgentProcess.command(["workers"], server: setup.server, directory: setup.directory)
            #expect(table.hasPrefix("JID"), "table: \(table)")
            #expect(table.contains("w1@\(setup.server.domain)/w1  0/"), "table: \(table)")
        }
    }
}

/// Operator commands, unique keys and delayed jobs against real processes, through the CLI.
extension RecoveryTests {
    private func dispatchDetached(_ arguments: [String], _ setup: Setup) async throws -> String {
        let (status, printed) = try await AgentProcess.command(["dispatch"] + arguments + ["--detach"], server: setup.server, directory: setup.directory)
        #expect(status == 0, "dispatch printed: \(printed)")
        return printed.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func jobsAreKeyedCancelledRetriedAndDelayedFromTheCommandLine() async throws {
        try await withCoordinatorAndOneWorker { setup in
            let sleep = [Diagnostics.IdempotentSleep.path.path, "milliseconds=i4:3000"]
            let first = try await dispatchDetached(sleep + ["--key", "nightly"], setup)
            let second = try await dispatchDetached(sleep + ["--key", "nightly"], setup)
            #expect(second == first, "a second submission with the key follows the first job")
            #expect(try await eventually(timeout: .seconds(20)) { try await states(setup, [first]) == [.running] })
            let (cancelStatus, cancelled) = try await AgentProcess.command(["jobs", "cancel", String(first.prefix(10))], server: setup.server, directory: setup.directory)
            #expect(cancelStatus == 0, "jobs cancel printed: \(cancelled)")
            #expect(try await eventually(timeout: .seconds(20)) { try await states(setup, [first]) == [.cancelled] })
            let (retryStatus, retried) = try await AgentProcess.command(["jobs", "retry", first, "--json"], server: setup.server, directory: setup.directory)
            #expect(retryStatus == 0, "jobs retry printed: \(retried)")
            let answer = try #require(try JSONSerialization.jsonObject(with: Data(retried.utf8)) as? [String: Any])
            #expect(answer["retry_of"] as? String == first)
            let again = try #require(answer["job"] as? String)
            #expect(try await eventually(timeout: .seconds(30)) { try await states(setup, [again]) == [.done] })
            #expect(try await job(setup, again)?.retryOf == first)
            #expect(try await readJournal(setup.coordinatorJournal).timeline(ofJob: first).retries == [again])
            // Refusals: a done job cannot be retried; an unknown one neither.
            let (doneStatus, doneText) = try await AgentProcess.command(["jobs", "retry", again], server: setup.server, directory: setup.directory, errors: true)
            #expect(doneStatus == 1 && doneText.contains("only a failed or cancelled job"), "status \(doneStatus): \(doneText)")
            let (unknownStatus, unknownJSON) = try await AgentProcess.command(
                ["jobs", "cancel", "ffffffffffff", "--json"], server: setup.server, directory: setup.directory)
            #expect(unknownStatus == 1)
            let refusal = try JSONSerialization.jsonObject(with: Data(unknownJSON.utf8)) as? [String: Any]
            #expect(refusal?["job"] as? String == "ffffffffffff" && refusal?["state"] as? String == "refused", "\(unknownJSON)")
            #expect(refusal?["code"] as? String != nil && refusal?["error"] as? String != nil, "\(unknownJSON)")
            // A delayed job waits, pending, for its time.
            let delayed = try await dispatchDetached([Diagnostics.Echo.path.path, "text=later", "--in", "3s"], setup)
            #expect(try await states(setup, [delayed]) == [.pending])
            #expect(try await eventually(timeout: .seconds(30)) { try await states(setup, [delayed]) == [.done] })
            let stored = try #require(try await job(setup, delayed))
            #expect((stored.finished ?? stored.created).timeIntervalSince(stored.created) >= 2.5, "it ran before its time")
            // --detach: the command's conversation ended with the answer; nothing was relayed to it.
            let timeline = try await readJournal(setup.coordinatorJournal).timeline(ofJob: delayed)
            let submissions = timeline.conversations.filter { $0.role == .performer }
            #expect(submissions.map(\.state) == [.finished], "\(submissions)")
            let relayed = timeline.stanzas.filter { $0.direction == .outbound && $0.conversation == submissions.first?.id }
            #expect(relayed.isEmpty, "relayed to a detached submitter: \(relayed.map(\.kind))")
            let (badStatus, badText) = try await AgentProcess.command(["dispatch", Diagnostics.Echo.path.path, "--in", "5x"], server: setup.server, directory: setup.directory, errors: true)
            #expect(badStatus != 0 && badText.contains("not a duration"), "\(badText)")
        }
    }

    /// `dispatch --json` prints its one object however it ends: a job not accepted (`job` null)
    /// and a job that did not end within `--timeout` (`unknown`) included.
    @Test func dispatchJSONIsPrintedWhenTheJobIsNotAcceptedOrTimesOut() async throws {
        try await withCoordinatorAndOneWorker { setup in
            let (slowStatus, slow) = try await AgentProcess.command(
                ["dispatch", Diagnostics.Sleep.path.path, "milliseconds=i4:5000", "--timeout", "1", "--json"],
                server: setup.server, directory: setup.directory)
            #expect(slowStatus == 3)
            let timedOut = try JSONSerialization.jsonObject(with: Data(slow.utf8)) as? [String: Any]
            #expect(timedOut?["state"] as? String == "unknown" && timedOut?["job"] as? String != nil, "\(slow)")
            let (absentStatus, absent) = try await AgentProcess.command(
                ["dispatch", Diagnostics.Echo.path.path, "--coordinator", "coordinator@\(setup.server.domain)/absent", "--json"],
                server: setup.server, directory: setup.directory)
            #expect(absentStatus == 3)
            let unreachable = try JSONSerialization.jsonObject(with: Data(absent.utf8)) as? [String: Any]
            #expect(unreachable?["job"] is NSNull && unreachable?["state"] as? String == "unknown", "\(absent)")
            #expect(unreachable?["code"] as? String == "unreachable", "\(absent)")
            // Every key, however it ends: null where it does not apply (a done job has no
            // error, a job not accepted no results).
            let keys: Set<String> = ["job", "state", "results", "error", "code"]
            for object in [timedOut, unreachable] { #expect(Set(object?.keys ?? [:].keys) == keys, "\(object ?? [:])") }
            #expect(unreachable?["results"] as? [Any] != nil, "\(absent)")
            let (_, done) = try await AgentProcess.command(
                ["dispatch", Diagnostics.Echo.path.path, "text=x", "--json"], server: setup.server, directory: setup.directory)
            let finished = try JSONSerialization.jsonObject(with: Data(done.utf8)) as? [String: Any]
            #expect(Set(finished?.keys ?? [:].keys) == keys && finished?["error"] is NSNull && finished?["code"] is NSNull, "\(done)")
        }
    }
}

/// `--metrics-address`: the Prometheus endpoint of real agents while jobs run.
extension RecoveryTests {
    /// The endpoint an agent printed at its start.
    private func metricsURL(_ agent: AgentProcess) async throws -> URL {
        var found: URL?
        _ = try await eventually(timeout: .seconds(20)) {
            found = agent.logText.split(separator: "\n").first { $0.hasPrefix("metrics: ") }
                .flatMap { URL(string: String($0.dropFirst("metrics: ".count))) }
            return found != nil
        }
        return try #require(found, "no metrics line in: \(agent.logText.prefix(800))")
    }

    /// `name{labels} value` lines of a scrape, by `name{labels}`.
    private func scrape(_ url: URL) throws -> [String: Double] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    @Test func theMetricsEndpointsCountTheJobsThatRun() async throws {
        try await withSetup { setup in
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: ["--metrics-address", "127.0.0.1:0"])
            let worker = try AgentProcess.worker(1, setup.server, directory: setup.directory, extra: ["--metrics-address", "127.0.0.1:0"])
            defer {
                coordinator.stop()
                worker.stop()
            }
            try await CrashTests().waitForWorkers(setup, count: 1)
            let coordinatorURL = try await metricsURL(coordinator)
            let workerURL = try await metricsURL(worker)
            let done = #"vertebra_jobs_finished_total{operation="/vertebra/echo",state="done"}"#
            let workerDone = #"vertebra_worker_jobs_total{operation="/vertebra/echo",state="done"}"#
            let before = try scrape(coordinatorURL)
            let workerBefore = try scrape(workerURL)
            #expect(before["vertebra_workers"] == 1)
            for index in 0..<5 {
                let (status, printed) = try await AgentProcess.command(
                    ["dispatch", Diagnostics.Echo.path.path, "text=m\(index)"], server: setup.server, directory: setup.directory)
                #expect(status == 0, "dispatch printed: \(printed)")
            }
            let after = try scrape(coordinatorURL)
            #expect((after[done] ?? 0) - (before[done] ?? 0) == 5, "\(after.filter { $0.key.contains("finished") })")
            let submitted = #"vertebra_jobs_submitted_total{operation="/vertebra/echo"}"#
            #expect((after[submitted] ?? 0) - (before[submitted] ?? 0) == 5)
            #expect((after[#"vertebra_job_duration_seconds_count{operation="/vertebra/echo"}"#] ?? 0) >= 5)
            #expect((after["vertebra_journal_commit_duration_seconds_count"] ?? 0) > (before["vertebra_journal_commit_duration_seconds_count"] ?? 0))
            #expect((after[#"vertebra_stanzas_total{direction="in"}"#] ?? 0) > (before[#"vertebra_stanzas_total{direction="in"}"#] ?? 0))
            let workerAfter = try scrape(workerURL)
            #expect((workerAfter[workerDone] ?? 0) - (workerBefore[workerDone] ?? 0) == 5)
            // An agent built on VertebraAgent takes the same option (the example agents had none).
            let root = setup.directory + "/files"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try "abc".write(toFile: root + "/a.txt", atomically: true, encoding: .utf8)
            let files = try AgentProcess(
                ["--root", root, "--journal", setup.directory + "/files.sqlite", "--metrics-address", "127.0.0.1:0"],
                user: "w2", resource: "files", server: setup.server, directory: setup.directory, executable: "files-agent")
            defer { files.stop() }
            let filesURL = try await metricsURL(files)
            // The job waits for the agent's advertisement (--worker-wait).
            let (summaryStatus, summary) = try await AgentProcess.command(["dispatch", "/files/summary", "path=."], server: setup.server, directory: setup.directory)
            #expect(summaryStatus == 0, "dispatch printed: \(summary)")
            #expect(try scrape(filesURL)[#"vertebra_worker_jobs_total{operation="/files/summary",state="done"}"#] == 1)
            #expect(workerAfter["vertebra_worker_running_jobs"] == 0)
            // Anything but /metrics is not found.
            var other = URLRequest(url: coordinatorURL.deletingLastPathComponent().appendingPathComponent("jobs"))
            other.httpMethod = "GET"
            let (_, response) = try await URLSession.shared.data(for: other)
            #expect((response as? HTTPURLResponse)?.statusCode == 404)
        }
    }
}

/// `--trace-file`: one job's spans from three processes share one trace.
extension RecoveryTests {
    private func spans(_ file: String) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func aJobsSpansFromThreeProcessesShareOneTrace() async throws {
        try await withSetup { setup in
            let files = ["coordinator", "worker", "dispatch"].map { "\(setup.directory)/\($0)-spans.jsonl" }
            let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: ["--trace-file", files[0]])
            let worker = try AgentProcess.worker(1, setup.server, directory: setup.directory, extra: ["--trace-file", files[1]])
            defer {
                coordinator.stop()
                worker.stop()
            }
            try await CrashTests().waitForWorkers(setup, count: 1)
            let (status, printed) = try await AgentProcess.command(
                ["dispatch", Diagnostics.Echo.path.path, "text=traced", "--trace-file", files[2]], server: setup.server, directory: setup.directory)
            #expect(status == 0, "dispatch printed: \(printed)")
            coordinator.stop()
            worker.stop()
            let submit = try #require(spans(files[2]).first { ($0["name"] as? String)?.hasPrefix("vertebra.submit") == true })
            let traceID = try #require(submit["trace_id"] as? String)
            let coordinatorSpans = spans(files[0]).filter { $0["trace_id"] as? String == traceID }
            let workerSpans = spans(files[1]).filter { $0["trace_id"] as? String == traceID }
            let job = try #require(coordinatorSpans.first { ($0["name"] as? String)?.hasPrefix("vertebra.job") == true }, "\(spans(files[0]))")
            let attempt = try #require(coordinatorSpans.first { ($0["name"] as? String)?.hasPrefix("vertebra.attempt") == true })
            let handler = try #require(workerSpans.first { ($0["name"] as? String)?.hasPrefix("vertebra.handler") == true }, "\(spans(files[1]))")
            #expect(job["parent_span_id"] as? String == submit["span_id"] as? String)
            #expect(attempt["parent_span_id"] as? String == job["span_id"] as? String)
            #expect(handler["parent_span_id"] as? String == attempt["span_id"] as? String)
            let mode = try FileManager.default.attributesOfItem(atPath: files[0])[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }
}
