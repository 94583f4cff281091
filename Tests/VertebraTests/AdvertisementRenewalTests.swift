import NIOConcurrencyHelpers
import Logging
import Natter
import Testing
import Vertebra
import VertebraXML
import XMPPTestSupport

/// A worker's advertisement is renewed before the coordinator lets it run out, however long
/// the coordinator takes to end the advertising conversation.
@Suite(.timeLimit(.minutes(1))) struct AdvertisementRenewalTests {
    /// The coordinator stamps an advertisement's expiry when it receives it; the worker counts
    /// its next renewal from when it sent it, not from when the conversation ended. Here the
    /// renewal at 54 s ends only at ~64 s (its `final` is lost twice and resent after the
    /// coordinator's 5 s answer timeout each time); the worker must still renew before 114 s.
    @Test func aSlowAnswerDoesNotDelayTheNextRenewalPastTheExpiry() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        try await cluster.settle()
        let dropped = NIOLockedValueBox(0)
        cluster.network.intercept { stanza, from in
            guard from == MemoryCluster.coordinatorJID, stanza[attribute: "type"] == "set", stanza.elements.first?.name == "final" else { return .route }
            return dropped.withLockedValue { count in
                count += 1
                return count <= 2 ? .drop : .route
            }
        }
        var lost: [Int] = []
        for second in 1...118 {
            try await cluster.advance(clock, by: .seconds(1))
            if await coordinator.workers.isEmpty { lost.append(second) }
        }
        #expect(dropped.withLockedValue { $0 } >= 3, "the renewal's final was dropped twice, then delivered")
        #expect(lost.isEmpty, "the coordinator had no worker at seconds \(lost)")
        await worker.stop()
        await coordinator.stop()
    }

    /// A worker that starts while the coordinator is up hears its presence (the answer to the
    /// worker's own) while the first advertisement is in flight. That is no coordinator
    /// restart: the advertisement goes on (it used to be cut off, which logged a warning on
    /// both sides at every start and made the coordinator answer into a closed conversation).
    @Test func aWorkerStartingBesideARunningCoordinatorAdvertisesOnceAndCutsNothingOff() async throws {
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
        let (advertisements, refused) = Self.watchAdvertisements(cluster)
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        try await cluster.settle()
        #expect(advertisements.withLockedValue { $0 } == 1)
        #expect(refused.withLockedValue { $0 }.isEmpty)
        await worker.stop()
        await coordinator.stop()
    }

    /// A worker the ACL does not let serve keeps asking; the coordinator says so once, not at

    /// A graceful stop drains, then stops: the advertisement is withdrawn once (the stop used to
    /// withdraw it again, a second round trip, and a stop cut short answered the coordinator's
    /// reply to it with an error).
    @Test func aDrainThenStopWithdrawsTheAdvertisementOnce() async throws {
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator"))
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.waitForWorkers(coordinator, 1)
        try await cluster.settle()
        let (advertisements, refused) = Self.watchAdvertisements(cluster)
        await worker.drain(timeout: .zero)
        await worker.stop()
        try await cluster.settle()
        #expect(advertisements.withLockedValue { $0 } == 1)
        #expect(refused.withLockedValue { $0 }.isEmpty)
        try await cluster.eventually("the worker's withdrawal", step: .zero) { await coordinator.workers.isEmpty }
        await coordinator.stop()
    }
    /// every retry.
    @Test func aRefusedWorkerIsLoggedOnceNotPerRetry() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let lines = LineCapture.Lines()
        let coordinator = try await Self.startCoordinatorRefusingW1(cluster, clock, logger: Logger(label: "refusals") { _ in LineCapture(lines) })
        let worker = try await cluster.startWorker("w1", journal: try cluster.journal("w1"))
        try await cluster.advance(clock, by: .seconds(6), step: .seconds(1))
        let refusals = lines.all.filter { $0.contains("refused operations a worker may not serve") }
        #expect(refusals.count == 1, "\(refusals)")
        #expect(await coordinator.workers.isEmpty)
        await worker.stop()
        await coordinator.stop()
    }

    /// Only an operator can change a refusal: the refused worker asks again after 1, 2, 4 … 60
    /// s, not every second, and says so once, as an error naming the fix.
    @Test func aRefusedWorkerBacksOffAndSaysWhyOnce() async throws {
        let clock = ManualClock()
        let cluster = try MemoryCluster(clock: clock)
        let coordinator = try await Self.startCoordinatorRefusingW1(cluster, clock, logger: MemoryCluster.quiet)
        let advertisements = NIOLockedValueBox<[Int]>([])
        let second = NIOLockedValueBox(0)
        cluster.network.intercept { stanza, _ in
            if stanza[attribute: "type"] == "set", stanza.elements.first?[attribute: "type"] == ServiceOperation.advertise.path {
                advertisements.withLockedValue { $0.append(second.withLockedValue { $0 }) }
            }
            return .route
        }
        let lines = LineCapture.Lines()
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1"), logger: Logger(label: "w1") { _ in LineCapture(lines) })
        try await worker.start()
        for tick in 1...200 {
            try await cluster.settle()
            second.withLockedValue { $0 = tick }
            clock.advance(by: .seconds(1))
        }
        try await cluster.settle()
        // Asked at 0, 1, 3, 7, 15, 31, 63, 123, 183 s (a second either way for the ticks).
        let asked = advertisements.withLockedValue { $0 }
        #expect((8...10).contains(asked.count), "advertised at seconds \(asked)")
        let gaps = zip(asked.dropFirst(), asked).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 <= 61 }, "gaps \(gaps)")
        #expect(gaps.suffix(2).allSatisfy { $0 >= 59 }, "gaps \(gaps)")
        let errors = lines.all.filter { $0.contains("refuses this worker") && !$0.hasPrefix("[debug]") }
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.hasPrefix("[error]") == true && errors.first?.contains("'serve' rule") == true, "\(errors)")
        #expect(await coordinator.workers.isEmpty)
        await worker.stop()
        await coordinator.stop()
    }

    @Test func refusedRetryDelaysDoubleUpToAMinute() {
        let delays = (1...9).map { Worker.refusedRetryDelay(afterRefusals: $0) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60].map { Duration.seconds($0) })
        #expect(Worker.refusedRetryDelay(afterRefusals: 0) == .seconds(1))
        #expect(Worker.refusedRetryDelay(afterRefusals: Int.max) == .seconds(60))
    }

    /// A started coordinator whose ACL lets only w2 serve: w1's advertisements are refused.
    static func startCoordinatorRefusingW1(_ cluster: MemoryCluster, _ clock: ManualClock, logger: Logger) async throws -> Coordinator {
        var options = cluster.coordinatorOptions()
        options.accessList = try AccessList(parsing: "serve w2@localhost /test/echo")
        let coordinator = Coordinator(
            client: cluster.network.transport(MemoryCluster.coordinatorJID, clock: clock, requestTimeout: cluster.answerTimeout),
            journal: try cluster.journal("coordinator"), options: options, logger: logger)
        try await coordinator.start()
        return coordinator
    }

    /// From now on: the advertisements routed, and the error stanzas (as text).
    private static func watchAdvertisements(_ cluster: MemoryCluster) -> (NIOLockedValueBox<Int>, NIOLockedValueBox<[String]>) {
        let advertisements = NIOLockedValueBox(0)
        let refused = NIOLockedValueBox<[String]>([])
        cluster.network.intercept { stanza, from in
            if stanza.elements.first?[attribute: "type"] == ServiceOperation.advertise.path { advertisements.withLockedValue { $0 += 1 } }
            if stanza[attribute: "type"] == "error" { refused.withLockedValue { $0.append(stanza.serializedString()) } }
            return .route
        }
        return (advertisements, refused)
    }
}
