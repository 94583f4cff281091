import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// Real processes killed and restarted mid-job: nothing acknowledged is lost, nothing runs twice.
@Suite(.serialized, .timeLimit(.minutes(5))) struct CrashTests {
    struct Setup {
        let server: XMPPServerProcess
        let directory: String

        static func make() async throws -> Setup {
            let server = try await XMPPServerProcess.start(.router, users: Cluster.users)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-crash-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return Setup(server: server, directory: directory)
        }

        var coordinatorJournal: String { directory + "/coordinator.sqlite" }

        func finish() {
            server.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }

        func submitter() async throws -> Submitter {
            let submitter = Submitter(
                client: XMPPClient(configuration: Cluster.configuration(server, user: "coordinator", resource: "submit-\(UUID().uuidString.prefix(6))")),
                coordinator: Cluster.jid(server, "coordinator", "coordinator"))
            try await submitter.start()
            return submitter
        }

        /// Jobs in the coordinator's journal by state (only `tokens`, when given).
        func states(of tokens: Set<String>? = nil) async throws -> [JobState: Int] {
            let reader = try readJournal(coordinatorJournal)
            return try await reader.jobs(matching: JobFilter(limit: 100_000))
                .filter { tokens?.contains($0.token) ?? true }
                .reduce(into: [:]) { $0[$1.state, default: 0] += 1 }
        }

        /// Handler runs per job on the workers (performer conversations).
        func handlerRuns(workers: Int) async throws -> [String: Int] {
            var runs: [String: Int] = [:]
            for index in 1...workers {
                let path = "\(directory)/w\(index).sqlite"
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let reader = try readJournal(path)
                for job in try await reader.jobs(matching: JobFilter(limit: 100_000)) {
                    let timeline = try await reader.timeline(ofJob: job.token)
                    runs[job.token, default: 0] += timeline.conversations.filter { $0.role == .performer }.count
                }
            }
            return runs
        }
    }

    func waitForWorkers(_ setup: Setup, count: Int) async throws {
        // Each worker logs "advertised" at debug only; ask the coordinator instead: an echo per
        // worker through scope all succeeds once all are registered.
        let submitter = try await setup.submitter()
        let ready = try await eventually(timeout: .seconds(30)) {
            // The coordinator may not be logged in yet: that is "not ready", not a failure.
            guard let job = try? await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=ping"]), scope: .all)
            else { return false }
            let result = await outcome(of: job)
            return result.error == nil && result.chunks.count >= count
        }
        await submitter.stop()
        #expect(ready, "workers did not register")
    }

    @Test func coordinatorKilledMidStreamResumesEveryJobAndNoHandlerRunsTwice() async throws {
        let setup = try await Setup.make()
        defer { setup.finish() }
        var coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
        let workers = try (1...2).map { try AgentProcess.worker($0, setup.server, directory: setup.directory) }
        defer {
            coordinator.stop()
            for worker in workers { worker.stop() }
        }
        try await waitForWorkers(setup, count: 2)
        let submitter = try await setup.submitter()
        var jobs: [Submitter.Job] = []
        for _ in 0..<20 {
            jobs.append(try await submitter.submit(
                // 4 s each: the jobs must still run when the journal is read after the kill,
                // which on a loaded machine comes well over a second after the last submission.
                Diagnostics.Count.path, arguments: try TypedArguments.parse(["count=i4:5", "intervalMilliseconds=i4:1000"])))
        }
        try await Task.sleep(for: .milliseconds(500))
        coordinator.kill()
        try await Task.sleep(for: .milliseconds(800))
        let tokens = Set(jobs.map(\.id))
        // The dead coordinator's journal holds unfinished jobs: the kill really was mid-run. (Its
        // log is no proof: a submitter's repeated op may bring a job back before recovery does.)
        let atKill = try await setup.states(of: tokens)
        #expect(atKill.filter { !$0.key.isTerminal }.values.reduce(0, +) > 0, "every job had ended before the kill: \(atKill)")
        coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
        let finished = try await eventually { try await setup.states(of: tokens)[.done] == jobs.count }
        let states = try await setup.states()
        #expect(finished, "states: \(states)\n\(coordinator.logText.suffix(3000))")
        let reader = try readJournal(setup.coordinatorJournal)
        for job in jobs {
            let stored = try #require(try await reader.jobs(matching: JobFilter(limit: 100)).first { $0.token == job.id })
            let indexes = stored.result.map { text in text.components(separatedBy: "name='index'").count - 1 } ?? 0
            let timeline = try await reader.timeline(ofJob: job.id)
            let story = timeline.stanzas.map { "\($0.conversation)\($0.direction.rawValue)\($0.kind.rawValue)\($0.acked == nil ? "?" : "")" }
            #expect(indexes == 5, "job \(job.id) result has \(indexes) chunks: \(stored.result ?? "nil") attempts \(stored.attempts) \(story) \(timeline.conversations.map { "\($0.id) \($0.role) \($0.state) current=\($0.isCurrent)" })")
        }
        let runs = try await setup.handlerRuns(workers: 2)
        #expect(jobs.allSatisfy { runs[$0.id] == 1 }, "handler runs: \(runs.filter { $0.value != 1 })")
        // The submitter hears the end of every job, across the restart.
        var ends = 0
        for job in jobs { if await outcome(of: job).error == nil { ends += 1 } }
        #expect(ends == jobs.count)
        await submitter.stop()
    }

    @Test func workerKilledMidHandlerRetryableMovesOnNonRetryableFails() async throws {
        let setup = try await Setup.make()
        defer { setup.finish() }
        let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory)
        let first = try AgentProcess.worker(1, setup.server, directory: setup.directory)
        defer {
            coordinator.stop()
            first.stop()
        }
        try await waitForWorkers(setup, count: 1)
        let submitter = try await setup.submitter()
        let retryable = try await submitter.submit(
            Diagnostics.IdempotentSleep.path, arguments: try TypedArguments.parse(["milliseconds=i4:15000"]))
        let fragile = try await submitter.submit(Diagnostics.Sleep.path, arguments: try TypedArguments.parse(["milliseconds=i4:15000"]))
        let second = try AgentProcess.worker(2, setup.server, directory: setup.directory)
        defer { second.stop() }
        try await waitForWorkers(setup, count: 2)
        first.kill()
        let retried = await outcome(of: retryable)
        #expect(retried.error == nil, "\(String(describing: retried.error))")
        let failed = await outcome(of: fragile)
        #expect(failed.error?.code == .workerLost)
        #expect(failed.error?.message.contains("not retryable") == true)
        let reader = try readJournal(setup.coordinatorJournal)
        let stored = try await reader.jobs(matching: JobFilter(limit: 100))
        let done = try #require(stored.first { $0.token == retryable.id })
        #expect(done.state == .done)
        #expect(done.attempts == 2)
        #expect(done.worker == "w2@\(setup.server.domain)/w2")
        let lost = try #require(stored.first { $0.token == fragile.id })
        #expect(lost.state == .failed)
        #expect(lost.error?.contains("w1@") == true)
        await submitter.stop()
    }

    @Test func routerRestartAgentsReconnectAndWorkContinues() async throws {
        var setup = try await Setup.make()
        defer { setup.finish() }
        // A lease longer than the agents' reconnection after the restart: nobody is lost.
        let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, lease: 20)
        let workers = try (1...2).map { try AgentProcess.worker($0, setup.server, directory: setup.directory) }
        defer {
            coordinator.stop()
            for worker in workers { worker.stop() }
        }
        try await waitForWorkers(setup, count: 2)
        let submitter = try await setup.submitter()
        var jobs: [Submitter.Job] = []
        for _ in 0..<10 {
            jobs.append(try await submitter.submit(
                Diagnostics.Count.path, arguments: try TypedArguments.parse(["count=i4:4", "intervalMilliseconds=i4:300"])))
        }
        try await Task.sleep(for: .milliseconds(400))
        let restarted = try await setup.server.restart(users: Cluster.users)
        setup = Setup(server: restarted, directory: setup.directory)
        let current = setup
        let tokens = Set(jobs.map(\.id))
        let finished = try await eventually(timeout: .seconds(180)) { try await current.states(of: tokens)[.done] == jobs.count }
        let states = try await setup.states()
        #expect(finished, "states: \(states)\ncoordinator: \(coordinator.logText.suffix(4000))\nw1: \(workers[0].logText.suffix(2000))")
        let after = try await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=after"]))
        let afterOutcome = await outcome(of: after)
        #expect(afterOutcome.error == nil)
        let runs = try await setup.handlerRuns(workers: 2)
        #expect(jobs.allSatisfy { runs[$0.id] == 1 }, "handler runs: \(runs)")
        await submitter.stop()
    }
}
