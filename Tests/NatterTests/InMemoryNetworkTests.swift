import NIOConcurrencyHelpers
import Testing
import VertebraXML

@testable import Natter

/// The in-memory network behaves as the router does for what the runtime relies on.
@Suite(.timeLimit(.minutes(1))) struct InMemoryNetworkTests {
    let alice = JID("alice@localhost/a")!
    let bob = JID("bob@localhost/b")!

    func echoPayload(_ text: String) -> XElement { XElement("q", namespace: "urn:test", text: text) }

    @Test func requestsAreAnsweredByHandlersAndMatchedByPeerAndID() async throws {
        let network = InMemoryNetwork()
        let a = network.transport(alice)
        let b = network.transport(bob)
        try await a.start()
        try await b.start()
        await b.respondToIQ(namespace: "urn:test", name: "q") { request in
            IQAnswer(payload: XElement("r", namespace: "urn:test", text: (request.payload?.text ?? "") + "!"))
        }
        let answer = try await a.sendAndWait(IQ(type: .get, id: "", to: bob, payload: echoPayload("hi")))
        #expect(answer.payload?.text == "hi!")
        #expect(answer.from == bob)
        // Nobody handles another payload: service-unavailable, as a client answers.
        await #expect(throws: NatterError.self) {
            try await a.sendAndWait(IQ(type: .get, id: "", to: bob, payload: XElement("other", namespace: "urn:test")))
        }
        await a.stop()
        await b.stop()
    }

    @Test func aRequestToAnAbsentJIDIsAnsweredServiceUnavailableAndTheServerAnswersPing() async throws {
        let network = InMemoryNetwork()
        let a = network.transport(alice)
        try await a.start()
        do {
            _ = try await a.sendAndWait(IQ(type: .set, id: "x", to: bob, payload: echoPayload("?")))
            Issue.record("an absent JID answered")
        } catch let error as NatterError {
            #expect(error.stanzaError?.condition == .serviceUnavailable)
        }
        let pong = try await a.sendAndWait(
            IQ(type: .get, id: "", to: JID("localhost"), payload: XElement("ping", namespace: XMPPNamespace.ping)))
        #expect(pong.type == .result)
        await a.stop()
    }

    @Test func aCutLinkFailsPendingRequestsAndTellsPresenceRecipients() async throws {
        let network = InMemoryNetwork()
        let a = network.transport(alice)
        let b = network.transport(bob)
        try await a.start()
        try await b.start()
        let presence = await b.exchange(.presence, from: alice)
        let events = await a.connectionEvents()
        try await a.sendPresence(to: bob)
        var iterator = presence.makeAsyncIterator()
        #expect(await iterator.next()?[attribute: "type"] == nil)
        // bob does not answer in time: the request waits until the cut, which fails it.
        await b.respondToIQ(namespace: "urn:test", name: "silent") { _ in
            try await Task.sleep(for: .seconds(30))
            return IQAnswer()
        }
        async let answer = a.sendAndWait(IQ(type: .get, id: "", to: bob, payload: XElement("silent", namespace: "urn:test")))
        try await Task.sleep(for: .milliseconds(20))
        network.cut(alice)
        do {
            _ = try await answer
            Issue.record("answered")
        } catch let error as NatterError {
            #expect(error.code == .disconnected)
        }
        #expect(await iterator.next()?[attribute: "type"] == "unavailable")
        #expect(await a.isConnected == false)
        var seen: [XMPPClient.ConnectionEvent] = []
        for await event in events {
            seen.append(event)
            if case .disconnected = event { break }
        }
        #expect(seen.first == .connected(alice, resumed: false))
        await #expect(throws: NatterError.self) { try await a.send(Presence.available(to: bob)) }
        await a.reconnect()
        #expect(await a.isConnected)
        await a.stop()
        await b.stop()
    }

    @Test func interceptorsSeeStampedStanzasAndCanDropThem() async throws {
        let network = InMemoryNetwork()
        let a = network.transport(alice)
        let b = network.transport(bob)
        try await a.start()
        try await b.start()
        let messages = await b.exchange(.message, from: nil)
        let senders = NIOLockedValueBox<[String]>([])
        let id = network.intercept { stanza, from in
            senders.withLockedValue { $0.append(stanza[attribute: "from"] ?? "none") }
            return stanza[attribute: "id"] == "drop" ? .drop : .route
        }
        for messageID in ["drop", "keep"] {
            try await a.send(XElement("message", namespace: XMLNamespace.client, attributes: [XAttribute("to", bob.description), XAttribute("id", messageID)]))
        }
        var iterator = messages.makeAsyncIterator()
        #expect(await iterator.next()?[attribute: "id"] == "keep")
        #expect(senders.withLockedValue { $0 } == [alice.description, alice.description])
        network.removeInterceptor(id)
        await a.stop()
        await b.stop()
    }

    /// As the client: a stop answers the request being handled before the link goes.
    @Test func aStopAnswersTheRequestBeingHandled() async throws {
        let network = InMemoryNetwork()
        let a = network.transport(alice)
        let b = network.transport(bob, stopAnswerLimit: .seconds(60))  // a loaded machine is slow
        try await a.start()
        try await b.start()
        let (started, gate) = (Gate(), Gate())
        await b.respondToIQ(namespace: "urn:test", name: "q") { request in
            await started.open(1)
            await gate.pass()
            return IQAnswer(payload: XElement("r", namespace: "urn:test", text: "late"))
        }
        let request = Task { try await a.sendAndWait(IQ(type: .set, id: "", to: bob, payload: echoPayload("hi"))) }
        await started.pass()
        let stopping = Task { await b.stop() }
        while await !b.isStopping { await Task.yield() }
        await gate.open(1)
        #expect(try await request.value.payload?.text == "late")
        await stopping.value
        await a.stop()
    }

    @Test func requestsTimeOutOnTheInjectedClock() async throws {
        let clock = ManualClock()
        let network = InMemoryNetwork()
        let a = network.transport(alice, clock: clock, requestTimeout: .seconds(10))
        let b = network.transport(bob)
        try await a.start()
        try await b.start()
        await b.respondToIQ(namespace: "urn:test", name: "slow") { _ in
            try await Task.sleep(for: .seconds(30))
            return IQAnswer()
        }
        let request = Task { try await a.sendAndWait(IQ(type: .get, id: "", to: bob, payload: XElement("slow", namespace: "urn:test"))) }
        while clock.sleeperCount == 0 { try await Task.sleep(for: .milliseconds(1)) }
        clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(20))
        clock.advance(by: .seconds(1))
        do {
            _ = try await request.value
            Issue.record("answered")
        } catch let error as NatterError {
            #expect(error.code == .timeout)
        }
        await a.stop()
        await b.stop()
    }
}

@Suite struct ManualClockTests {
    @Test func sleepersWakeInDeadlineOrderOnlyWhenTheTimeComes() async throws {
        let clock = ManualClock()
        let woken = NIOLockedValueBox<[Int]>([])
        let sleepers = [3, 1, 2].map { seconds in
            Task {
                try await clock.sleep(for: .seconds(seconds))
                woken.withLockedValue { $0.append(seconds) }
            }
        }
        while clock.sleeperCount < 3 { try await Task.sleep(for: .milliseconds(1)) }
        clock.advance(by: .milliseconds(999))
        try await Task.sleep(for: .milliseconds(10))
        #expect(woken.withLockedValue { $0 }.isEmpty)
        clock.advance(by: .seconds(2))
        // sleepers[1] slept 1 s and sleepers[2] 2 s; sleepers[0] (3 s) sleeps on.
        try await sleepers[1].value
        try await sleepers[2].value
        #expect(Set(woken.withLockedValue { $0 }) == [1, 2])
        #expect(clock.sleeperCount == 1)
        sleepers[0].cancel()
        await #expect(throws: CancellationError.self) { try await sleepers[0].value }
        #expect(clock.sleeperCount == 0)
    }

    @Test func aPastDeadlineReturnsAtOnce() async throws {
        let clock = ManualClock()
        try await clock.sleep(until: clock.now)
        try await clock.sleep(for: .zero)
        #expect(clock.sleeperCount == 0)
    }
}
