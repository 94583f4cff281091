import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// Jobs end to end through a real server (our router and Prosody): coordinator and workers in
/// this process, each with its own journal.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DispatchTests {
    static let servers: [XMPPServerProcess.Kind] = [.router, .prosody]

    @Test(arguments: servers)
    func typedDispatchWithEveryScope(kind: XMPPServerProcess.Kind) async throws {
        try await Cluster.with(kind) { cluster in
            let coordinator = cluster.coordinator
            let echoed = try await coordinator.dispatch(Diagnostics.Echo(text: "héllo <&> wörld"))
            #expect(echoed == "héllo <&> wörld")

            let everyone = try await coordinator.dispatchAll(Diagnostics.Sleep(milliseconds: 1), scope: .all)
            #expect(Set(everyone.map(\.worker.description)) == ["w1@\(cluster.server.domain)/w1", "w2@\(cluster.server.domain)/w2"])
            #expect(everyone.allSatisfy { (try? $0.result.get()) == Diagnostics.Sleep.Result(slept: 1) })

            let target = Cluster.jid(cluster.server, "w2", "w2")
            let direct = try await coordinator.dispatchAll(Diagnostics.Echo(text: "to w2"), scope: .direct, to: [target])
            #expect(direct.map(\.worker) == [target])
            #expect(try direct.first?.result.get() == "to w2")

            let jobs = try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 10))
            #expect(jobs.count == 3)
            #expect(jobs.allSatisfy { $0.state == .done })
            #expect(try await cluster.handlerRuns().values.reduce(0, +) == 4)
        }
    }

    @Test(arguments: servers)
    func streamingResultsArriveInOrderAndFinalComesLast(kind: XMPPServerProcess.Kind) async throws {
        try await Cluster.with(kind) { cluster in
            var received: [Int] = []
            for try await chunk in try await cluster.coordinator.results(of: Diagnostics.Count(count: 25)) {
                received.append(chunk.index)
            }
            #expect(received == Array(0..<25))

            let submitter = try await cluster.submitter()
            let job = try await submitter.submit(Diagnostics.Count.path, arguments: try TypedValueEncoder().encodeFields(Diagnostics.Count(count: 10)))
            let result = await outcome(of: job)
            #expect(result.error == nil)
            let indexes = result.chunks.compactMap { chunk in chunk.first { $0[attribute: "name"] == "index" }.flatMap { Int($0.text) } }
            #expect(indexes == Array(0..<10))

            let worker = cluster.workerJournals
            var finalsAfterData = true
            for journal in worker {
                for conversation in try await journal.jobs(matching: JobFilter(limit: 100)) {
                    for c in try await journal.conversations(ofJob: conversation.token) {
                        let kinds = try await journal.stanzas(ofConversation: c.id).filter { $0.direction == .outbound }.map(\.kind)
                        if let last = kinds.last, kinds.contains(.data) { finalsAfterData = finalsAfterData && last == .final }
                    }
                }
            }
            #expect(finalsAfterData)
            await submitter.stop()
        }
    }

    @Test(arguments: servers)
    func typedArgumentsRoundTripThroughTheSubmitterPath(kind: XMPPServerProcess.Kind) async throws {
        try await Cluster.with(kind) { cluster in
            let submitter = try await cluster.submitter()
            let arguments = try TypedArguments.parse(["text=string:a=b:c <x/> ✓"])
            let job = try await submitter.submit(Diagnostics.Echo.path, arguments: arguments)
            let result = await outcome(of: job)
            #expect(result.error == nil)
            let first = try #require(result.chunks.first)
            let response = TypedValueJSON.object(first)["response"] as? String
            #expect(response == "a=b:c <x/> ✓")
            let stored = try #require(try await cluster.coordinatorJournal.job(job.id))
            #expect(stored.state == .done)
            #expect(stored.submitter?.hasPrefix("alice@") == true)
            await submitter.stop()
        }
    }

    @Test(arguments: servers)
    func badInputsFailTheJobWithTheRightError(kind: XMPPServerProcess.Kind) async throws {
        try await Cluster.with(kind) { cluster in
            let submitter = try await cluster.submitter()
            // A payload that does not decode: the worker names the field.
            let bad = try await submitter.submit(Diagnostics.Sleep.path, arguments: try TypedArguments.parse(["milliseconds=soon"]))
            let badResult = await outcome(of: bad)
            #expect(badResult.error?.code == .badRequest)
            #expect(badResult.error?.message.contains("milliseconds") == true)
            #expect(try await cluster.coordinatorJournal.job(bad.id)?.state == .failed)

            // An operation nobody offers (after the start-up grace period it fails at once).
            let unknown = try await cluster.coordinator.submit("/no/such/op", arguments: [])
            var failure: VertebraError?
            for await event in unknown.events { if case .failed(let error) = event { failure = error } }
            #expect(failure?.code == .noWorker)
            #expect(try await cluster.coordinatorJournal.job(unknown.id)?.error?.contains("/no/such/op") == true)

            // A handler that fails on purpose: fatal, not retried.
            do {
                _ = try await cluster.coordinator.dispatch(Diagnostics.Fail(message: "broken on purpose"))
                Issue.record("the failing operation succeeded")
            } catch let error as VertebraError {
                #expect(error.code == .failed)
                #expect(error.message.contains("broken on purpose"))
            }

            // An unauthorized submitter: refused before anything is journalled.
            let mallory = try await cluster.submitter("mallory")
            await #expect(throws: VertebraError.self) {
                _ = try await mallory.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=x"]))
            }
            do {
                _ = try await mallory.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=x"]))
                Issue.record("the coordinator took a job from a submitter its ACL does not allow")
            } catch let error as VertebraError {
                #expect(error.code == .notAuthorized)
            }
            let failed = try await cluster.coordinatorJournal.jobs(matching: JobFilter(states: [.failed], limit: 10))
            #expect(failed.count == 3)
            #expect(failed.allSatisfy { $0.error?.isEmpty == false })
            await mallory.stop()
            await submitter.stop()
        }
    }

    @Test func aRefusingWorkerFailsItsDirectJobWithTheReason() async throws {
        try await Cluster.with(.router, workers: 2, workerOptions: { _, options in options.maxConcurrentJobs = 1 }) { cluster in
            let w1 = Cluster.jid(cluster.server, "w1", "w1")
            let busy = try await cluster.coordinator.submit(
                Diagnostics.Sleep.path, arguments: try TypedValueEncoder().encodeFields(Diagnostics.Sleep(milliseconds: 1_500)),
                scope: .direct, to: [w1])
            try await Task.sleep(for: .milliseconds(300))
            await #expect(throws: VertebraError.self) {
                _ = try await cluster.coordinator.dispatchAll(Diagnostics.Echo(text: "x"), scope: .direct, to: [w1])
            }
            let failed = try await cluster.coordinatorJournal.jobs(matching: JobFilter(states: [.failed], limit: 10))
            #expect(failed.count == 1)
            #expect(failed.first?.error?.contains("busy") == true)
            for await _ in busy.events {}
            #expect(try await cluster.coordinatorJournal.job(busy.id)?.state == .done)
        }
    }

    @Test func aWorkerRefusesOpsFromStrangers() async throws {
        try await Cluster.with(.router, workers: 1) { cluster in
            let direct = Submitter(
                client: XMPPClient(configuration: Cluster.configuration(cluster.server, user: "mallory", resource: "m")),
                coordinator: Cluster.jid(cluster.server, "w1", "w1"))
            try await direct.start()
            do {
                _ = try await direct.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=x"]))
                Issue.record("the worker ran an op from a stranger")
            } catch let error as VertebraError {
                #expect(error.code == .notAuthorized)
            }
            #expect(try await cluster.handlerRuns().isEmpty)
            await direct.stop()
        }
    }

    /// w1 is made busy behind the coordinator's back (another session of the coordinator's
    /// account, which a worker always serves, sends it an op directly), so the coordinator still
    /// counts it idle: it picks w1 first (same load, sorted by JID), w1 answers `nack` busy, and
    /// the job moves on to w2.
    @Test func aBusyWorkerNacksAndTheJobMovesOn() async throws {
        try await Cluster.with(.router, workers: 2, workerOptions: { _, options in options.maxConcurrentJobs = 1 }) { cluster in
            let w1 = Cluster.jid(cluster.server, "w1", "w1")
            let w2 = Cluster.jid(cluster.server, "w2", "w2")
            let direct = Submitter(
                client: XMPPClient(
                    configuration: Cluster.configuration(cluster.server, user: "coordinator", resource: "direct-\(UUID().uuidString.prefix(6))")),
                coordinator: w1)
            try await direct.start()
            let busy = try await direct.submit(
                Diagnostics.Sleep.path, arguments: try TypedValueEncoder().encodeFields(Diagnostics.Sleep(milliseconds: 5_000)))
            let w1Journal = cluster.workerJournals[0]
            let running = try await eventually(timeout: .seconds(10)) { try await w1Journal.job(busy.id)?.state == .running }
            try #require(running, "w1 did not start the job sent to it directly")

            let quick = try await cluster.coordinator.dispatch(Diagnostics.Echo(text: "queued"))
            #expect(quick == "queued")
            let jobs = try await cluster.coordinatorJournal.jobs(matching: JobFilter(operation: Diagnostics.Echo.path.path, limit: 10))
            #expect(jobs.count == 1)
            let timeline = try await cluster.coordinatorJournal.timeline(ofJob: try #require(jobs.first).token)
            let withW1 = Set(timeline.conversations.filter { $0.peer == w1.description }.map(\.id))
            #expect(
                timeline.stanzas.contains { $0.direction == .inbound && $0.kind == .nack && withW1.contains($0.conversation) },
                "no nack from w1 in \(timeline.stanzas.map { "\($0.direction.rawValue) \($0.kind.rawValue) \($0.peer)" })")
            #expect(timeline.job.worker == w2.description)

            #expect(await outcome(of: busy).error == nil)
            await direct.stop()
        }
    }

    @Test func cancellationReachesTheHandlerAndTheJobEndsCancelled() async throws {
        try await Cluster.with(.router) { cluster in
            let handle = try await cluster.coordinator.submit(
                Diagnostics.Sleep.path, arguments: try TypedValueEncoder().encodeFields(Diagnostics.Sleep(milliseconds: 30_000)))
            var failure: VertebraError?
            for await event in handle.events {
                if case .running = event { await cluster.coordinator.cancel(job: handle.id) }
                if case .failed(let error) = event { failure = error }
            }
            #expect(failure?.code == .cancelled)
            #expect(try await cluster.coordinatorJournal.job(handle.id)?.state == .cancelled)
            // The worker records the end once the coordinator acknowledged its error stanza.
            let journals = cluster.workerJournals
            let workerCancelled = try await eventually(timeout: .seconds(10)) {
                var states: [JobState] = []
                for journal in journals { states += try await journal.jobs(matching: JobFilter(limit: 10)).map(\.state) }
                return states == [.cancelled]
            }
            #expect(workerCancelled)
        }
    }

    @Test func deadlinesFailTheJob() async throws {
        try await Cluster.with(.router) { cluster in
            let started = ContinuousClock.now
            await #expect(throws: VertebraError.self) {
                _ = try await cluster.coordinator.dispatch(Diagnostics.Sleep(milliseconds: 20_000), deadline: .milliseconds(500))
            }
            #expect(ContinuousClock.now - started < .seconds(10))
            let jobs = try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 10))
            #expect(jobs.first?.state == .failed)
            #expect(jobs.first?.error?.contains("deadline") == true)
        }
    }
}
