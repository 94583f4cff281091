import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// The negotiated fast path (DESIGN §6.2) through our router: a handler that ends within the
/// worker's budget ends its job in the answer to the op; a longer one continues classic, in
/// order; either side can refuse it; a repeated op gets exactly the same answer.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FastPathTests {
    @Test func aQuickJobEndsInTheAnswerToItsOp() async throws {
        try await Cluster.with(.router, workers: 1) { cluster in
            let echoed = try await cluster.coordinator.dispatch(Diagnostics.Echo(text: "fast <&>"))
            #expect(echoed == "fast <&>")
            let job = try #require(try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 1)).first)
            let ours = try await Self.settled(cluster.coordinatorJournal, job: job.token, role: .requester)
            #expect(ours.kinds == [.op, .data, .final])
            #expect(ours.stanzas.first?.body.contains(FastPath.namespace) == true)
            #expect(ours.stanzas.dropFirst().allSatisfy { FastPath.isInline($0.iqID) })
            #expect(ours.job == .done)
            let theirs = try await Self.settled(cluster.workerJournals[0], job: job.token, role: .performer)
            #expect(theirs.kinds == [.op, .data, .final])
            #expect(theirs.job == .done)
            #expect(try await cluster.handlerRuns()[job.token] == 1)
        }
    }

    @Test func aQuickStreamingJobKeepsItsChunksApart() async throws {
        try await Cluster.with(.router, workers: 1) { cluster in
            var received: [Int] = []
            for try await chunk in try await cluster.coordinator.results(of: Diagnostics.Count(count: 25)) {
                received.append(chunk.index)
            }
            #expect(received == Array(0..<25))
            let job = try #require(try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 1)).first)
            let ours = try await Self.settled(cluster.coordinatorJournal, job: job.token, role: .requester)
            #expect(ours.kinds == [.op] + Array(repeating: VertebraJournal.StanzaKind.data, count: 25) + [.final])
        }
    }

    @Test func aHandlerPastTheBudgetContinuesClassicWithEveryChunkInOrder() async throws {
        try await Cluster.with(.router, workers: 1, workerOptions: { _, options in options.fastPathBudget = .milliseconds(30) }) { cluster in
            var received: [Int] = []
            for try await chunk in try await cluster.coordinator.results(of: Diagnostics.Count(count: 6, intervalMilliseconds: 15)) {
                received.append(chunk.index)
            }
            #expect(received == Array(0..<6))
            let job = try #require(try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 1)).first)
            let ours = try await Self.settled(cluster.coordinatorJournal, job: job.token, role: .requester)
            // The chunks collected during the budget go out after the ack, before later ones.
            #expect(ours.kinds == [.op, .ack] + Array(repeating: VertebraJournal.StanzaKind.data, count: 6) + [.final])
            #expect(ours.job == .done)
        }
    }

    @Test(arguments: ["coordinator", "worker"])
    func eitherSideCanTurnItOff(side: String) async throws {
        try await Cluster.with(
            .router, workers: 1,
            workerOptions: { _, options in if side == "worker" { options.fastPathBudget = .zero } },
            coordinatorOptions: { options in if side == "coordinator" { options.fastPath = false } }
        ) { cluster in
            #expect(try await cluster.coordinator.dispatch(Diagnostics.Echo(text: "classic")) == "classic")
            let job = try #require(try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 1)).first)
            let ours = try await Self.settled(cluster.coordinatorJournal, job: job.token, role: .requester)
            #expect(ours.kinds == [.op, .ack, .data, .final])
            #expect(ours.stanzas.first?.body.contains(FastPath.namespace) == false)
        }
    }

    @Test func aFailureTravelsInlineAndIsNotRetried() async throws {
        try await Cluster.with(.router, workers: 1) { cluster in
            await #expect(throws: VertebraError.self) { try await cluster.coordinator.dispatch(Diagnostics.Fail(message: "broken <inline>")) }
            let job = try #require(try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 1)).first)
            let ours = try await Self.settled(cluster.coordinatorJournal, job: job.token, role: .requester)
            #expect(ours.kinds == [.op, .error])
            #expect(ours.job == .failed)
            let stored = try #require(try await cluster.coordinatorJournal.job(job.token))
            #expect(stored.error?.contains("broken <inline>") == true)
            #expect(stored.attempts == 1)
        }
    }

    /// A requester that sends the same op twice (its answer was lost) gets the same answer, end
    /// included, and the handler runs once.
    @Test func aRepeatedOpGetsTheSameAnswerAndRunsOnce() async throws {
        try await Cluster.with(.router, workers: 1) { cluster in
            let raw = XMPPClient(configuration: Cluster.configuration(cluster.server, user: "coordinator", resource: "raw"))
            try await raw.start()
            let token = try #require(JobToken.newJob())
            let op = ProtocolMessage.op(
                type: Diagnostics.Echo.path, token: token, scope: .single,
                arguments: try TypedValueEncoder().encodeFields(Diagnostics.Echo(text: "twice"))
            ).element.appending(FastPath.request)
            let worker = Cluster.jid(cluster.server, "w1", "w1")
            let first = try await raw.sendAndWait(IQ(type: .set, id: "repeat-1", to: worker, payload: op))
            let second = try await raw.sendAndWait(IQ(type: .set, id: "repeat-1", to: worker, payload: op))
            let firstPayload = try #require(first.payload)
            #expect(firstPayload.firstElement(named: "data", namespace: XMLNamespace.vertebraAPI)?.elements.first?.text == "twice")
            #expect(firstPayload.firstElement(named: "final", namespace: XMLNamespace.vertebraAPI) != nil)
            #expect(second.payload == firstPayload)
            #expect(try await cluster.handlerRuns()[token.job] == 1)
            await raw.stop()
        }
    }

    @Test(arguments: [0, 5_001, -3])
    func anAdvertisedBudgetOutOfRangeIsRefused(budget: Int) async throws {
        try await Cluster.with(.router, workers: 0) { cluster in
            let w3 = XMPPClient(configuration: Cluster.configuration(cluster.server, user: "w3", resource: "w3"))
            try await w3.start()
            let arguments = try TypedArguments.parse([
                "ttl=i4:60", "fastPath=i4:\(budget)",
            ]) + [XElement("list", namespace: XMLNamespace.vertebraAPI, attributes: [XAttribute("name", "operations")],
                           children: [.element(XElement("res", namespace: XMLNamespace.vertebraAPI, text: "/vertebra/echo"))]),
                  XElement("struct", namespace: XMLNamespace.vertebraAPI, attributes: [XAttribute("name", "resources")])]
            let token = try #require(JobToken.newJob())
            let op = ProtocolMessage.op(type: ServiceOperation.advertise, token: token, scope: .direct, arguments: arguments).element
            await #expect {
                _ = try await w3.sendAndWait(IQ(type: .set, id: "ad-1", to: cluster.coordinatorJID, payload: op))
            } throws: { error in
                (error as? NatterError)?.stanzaError?.condition == .badRequest
                    && ((error as? NatterError)?.stanzaError?.text ?? "").contains("fastPath")
            }
            #expect(await cluster.coordinator.workers.isEmpty)
            await w3.stop()
        }
    }

    // MARK: - Helpers

    struct Settled {
        var stanzas: [VertebraJournal.Stanza]
        var kinds: [VertebraJournal.StanzaKind] { stanzas.map(\.kind) }
        var job: JobState?
    }

    /// The job's conversation in `role` once the writes that are not awaited have committed.
    static func settled(_ journal: ExchangeJournal, job token: String, role: ConversationRole) async throws -> Settled {
        let deadline = ContinuousClock.now + .seconds(3)
        while true {
            let conversation = try await journal.conversations(ofJob: token).last { $0.role == role }
            var stanzas: [VertebraJournal.Stanza] = []
            if let conversation { stanzas = try await journal.stanzas(ofConversation: conversation.id) }
            let state = try await journal.job(token)?.state
            if state?.isTerminal == true && conversation?.state != .open || ContinuousClock.now > deadline {
                return Settled(stanzas: stanzas, job: state)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
