import Logging
import NIOCore
import NIOEmbedded
import Testing
import VertebraXML

@testable import Natter

/// Hands the client a socket-less link: an `NIOAsyncTestingChannel` with the real frame handler,
/// already "logged in" as `me@localhost/test`.
final class ScriptedLinkFactory: LinkFactory {
    let channel = NIOAsyncTestingChannel()
    let jid = JID("me@localhost/test")!

    func connect(resuming ticket: ResumptionTicket?) async throws -> sending (LinkInfo, StreamReader) {
        let (events, continuation) = AsyncThrowingStream<XMLStreamEvent, any Error>.makeStream()
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(XMPPFrameHandler(limits: .stream))
            try channel.pipeline.syncOperations.addHandler(StreamEventBridge(continuation: continuation))
        }.get()
        let reader = StreamReader(events)
        try await channel.writeInbound(ByteBuffer(string: "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"))
        _ = try await reader.next()
        let info = LinkInfo(
            channel: channel, boundJID: jid, encrypted: false, mechanism: "TEST", streamManagementID: nil,
            streamManagementEnabled: false, resumedServerCount: nil)
        return (info, reader)
    }
}

/// A client wired to a scripted link, with helpers to play the server.
struct Harness {
    let client: XMPPClient
    let link: ScriptedLinkFactory
    private let outbound = XMLStreamParser()

    init(inspector: (any StanzaInspector)? = nil, configure: (inout ClientConfiguration) -> Void = { _ in }) async throws {
        var configuration = ClientConfiguration(
            host: "127.0.0.1", jid: JID("me@localhost")!, password: .value("pw"), tls: .disabled)
        configuration.reconnect.enabled = false
        configuration.pingInterval = nil
        configure(&configuration)
        link = ScriptedLinkFactory()
        client = XMPPClient(configuration: configuration, logger: Logger(label: "test"), linkFactory: link, inspector: inspector)
        _ = try outbound.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
        try await client.start()
    }

    /// The next stanza the client wrote.
    func sent() async throws -> XElement {
        while true {
            let buffer = try await link.channel.waitForOutboundWrite(as: ByteBuffer.self)
            let events = try outbound.feed(Array(buffer.readableBytesView))
            if case .stanza(let stanza)? = events.first { return stanza }
        }
    }

    /// Delivers `xml` as if the server sent it.
    func receive(_ xml: String) async throws {
        try await link.channel.writeInbound(ByteBuffer(string: xml))
    }
}

@Suite(.timeLimit(.minutes(1))) struct ClientRoutingTests {
    @Test func answersAreMatchedByPeerAndIDEvenOutOfOrder() async throws {
        let harness = try await Harness()
        let client = harness.client
        let peer = JID("worker@localhost/w1")!
        async let first = client.sendAndWait(IQ(type: .get, id: "a", to: peer, payload: XElement("q", namespace: "urn:t")))
        async let second = client.sendAndWait(IQ(type: .get, id: "b", to: peer, payload: XElement("q", namespace: "urn:t")))
        var ids: Set<String> = []
        for _ in 0..<2 { ids.insert(try await harness.sent()[attribute: "id"] ?? "") }
        #expect(ids == ["a", "b"])
        try await harness.receive("<iq type='result' id='b' from='worker@localhost/w1'><r xmlns='urn:t'>B</r></iq>")
        try await harness.receive("<iq type='result' id='a' from='worker@localhost/w1'><r xmlns='urn:t'>A</r></iq>")
        #expect(try await first.payload?.text == "A")
        #expect(try await second.payload?.text == "B")
        await harness.client.stop()
    }

    @Test func anAnswerFromAnotherPeerWithTheSameIDIsNotAccepted() async throws {
        let harness = try await Harness()
        let client = harness.client
        let peer = JID("worker@localhost/w1")!
        async let answer = client.sendAndWait(IQ(type: .get, id: "x", to: peer, payload: XElement("q", namespace: "urn:t")))
        _ = try await harness.sent()
        try await harness.receive("<iq type='result' id='x' from='mallory@localhost/m'><r xmlns='urn:t'>forged</r></iq>")
        try await harness.receive("<iq type='result' id='x' from='worker@localhost/w1'><r xmlns='urn:t'>real</r></iq>")
        #expect(try await answer.payload?.text == "real")
        await harness.client.stop()
    }

    @Test func aRequestWithoutAnAnswerTimesOutAndCleansUp() async throws {
        let harness = try await Harness()
        let client = harness.client
        let request = IQ(type: .get, id: "slow", to: JID("worker@localhost/w1")!, payload: XElement("q", namespace: "urn:t"))
        let error = await #expect(throws: NatterError.self) {
            try await client.sendAndWait(request, timeout: .milliseconds(50))
        }
        #expect(error?.code == .timeout)
        _ = try await harness.sent()
        try await harness.receive("<iq type='result' id='slow' from='worker@localhost/w1'/>")
        async let again = client.sendAndWait(request, timeout: .seconds(5))
        _ = try await harness.sent()
        try await harness.receive("<iq type='result' id='slow' from='worker@localhost/w1'/>")
        #expect(try await again.type == .result)
        await harness.client.stop()
    }

    @Test func anErrorAnswerIsThrownWithItsCondition() async throws {
        let harness = try await Harness()
        let client = harness.client
        async let answer = client.sendAndWait(IQ(type: .set, id: "e", to: JID("gone@localhost/w")!, payload: XElement("q", namespace: "urn:t")))
        _ = try await harness.sent()
        try await harness.receive("<iq type='error' id='e' from='gone@localhost/w'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        do {
            _ = try await answer
            Issue.record("expected a stanza error")
        } catch let error as NatterError {
            #expect(error.code == .stanzaError)
            #expect(error.stanzaError?.condition == .serviceUnavailable)
            #expect(error.stanzaError?.meansRecipientGone == true)
        }
        await harness.client.stop()
    }

    @Test func unhandledRequestsAreAnsweredServiceUnavailable() async throws {
        let harness = try await Harness()
        try await harness.receive("<iq type='set' id='u1' from='boss@localhost/b'><job xmlns='urn:unknown'/></iq>")
        let reply = try await harness.sent()
        #expect(reply[attribute: "type"] == "error")
        #expect(reply[attribute: "id"] == "u1")
        #expect(reply[attribute: "to"] == "boss@localhost/b")
        #expect(IQ(reply)?.error?.condition == .serviceUnavailable)
        await harness.client.stop()
    }

    @Test func registeredHandlersAnswerWithResultsAndErrors() async throws {
        let harness = try await Harness()
        await harness.client.handleIQ(namespace: "urn:t", name: "double") { request in
            guard let value = Int(request.payload?.text ?? "") else { throw StanzaError.badRequest("not a number") }
            return XElement("double", namespace: "urn:t", text: String(value * 2))
        }
        try await harness.receive("<iq type='get' id='h1' from='boss@localhost/b'><double xmlns='urn:t'>21</double></iq>")
        let good = try await harness.sent()
        #expect(IQ(good)?.type == .result && IQ(good)?.payload?.text == "42")
        try await harness.receive("<iq type='get' id='h2' from='boss@localhost/b'><double xmlns='urn:t'>x</double></iq>")
        let bad = try await harness.sent()
        #expect(IQ(bad)?.error?.condition == .badRequest)
        await harness.client.stop()
    }

    @Test func aPeerWithTooManyRequestsInProgressIsToldToWaitAndOthersAreServed() async throws {
        let harness = try await Harness { $0.maxRequestsPerPeer = 2 }
        let gate = Gate()
        await harness.client.respondToIQ(namespace: "urn:t", name: "slow") { request in
            await gate.pass()
            return IQAnswer(payload: XElement("slow", namespace: "urn:t", text: request.id))
        }
        for id in ["a1", "a2", "a3"] {
            try await harness.receive("<iq type='set' id='\(id)' from='flood@localhost/f'><slow xmlns='urn:t'/></iq>")
        }
        let refused = try await harness.sent()
        #expect(refused[attribute: "id"] == "a3")
        #expect(IQ(refused)?.error?.condition == .resourceConstraint)
        #expect(IQ(refused)?.error?.type == .wait)
        // Another peer is not held back by the flood.
        try await harness.receive("<iq type='set' id='b1' from='other@localhost/o'><slow xmlns='urn:t'/></iq>")
        await gate.open(3)
        var answered: Set<String> = []
        for _ in 0..<3 { answered.insert(try await harness.sent()[attribute: "id"] ?? "") }
        #expect(answered == ["a1", "a2", "b1"])
        // Once answered, the peer may send again.
        try await harness.receive("<iq type='set' id='a4' from='flood@localhost/f'><slow xmlns='urn:t'/></iq>")
        await gate.open(1)
        #expect(try await harness.sent()[attribute: "id"] == "a4")
        await harness.client.stop()
    }

    /// A short-lived client (`vertebra dispatch`) stops right after a peer's last request: the
    /// stop answers it before the stream closes (its answer used to be lost now and then, and
    /// the peer re-sent it forever), and refuses what arrives meanwhile.
    @Test func aStopAnswersTheRequestsBeingHandledBeforeTheStreamCloses() async throws {
        let harness = try await Harness { $0.stopAnswerLimit = .seconds(60) }  // a loaded machine is slow
        let (started, gate) = (Gate(), Gate())
        await harness.client.respondToIQ(namespace: "urn:t", name: "slow") { request in
            await started.open(1)
            await gate.pass()
            return IQAnswer(payload: XElement("slow", namespace: "urn:t", text: request.id))
        }
        try await harness.receive("<iq type='set' id='s1' from='peer@localhost/p'><slow xmlns='urn:t'/></iq>")
        await started.pass()
        let client = harness.client
        let stopping = Task { await client.stop() }
        while await !client.isStopping { await Task.yield() }
        try await harness.receive("<iq type='set' id='s2' from='peer@localhost/p'><slow xmlns='urn:t'/></iq>")
        let refused = try await harness.sent()
        #expect(refused[attribute: "id"] == "s2" && IQ(refused)?.error?.condition == .serviceUnavailable)
        await gate.open(1)
        await stopping.value
        var written = ""
        while let buffer = try await harness.link.channel.readOutbound(as: ByteBuffer.self) {
            written += String(buffer: buffer)
        }
        let answer = try #require(written.range(of: "id=\"s1\"") ?? written.range(of: "id='s1'"), "no answer to s1 in \(written)")
        let close = try #require(written.range(of: "</stream:stream>"), "no close tag in \(written)")
        #expect(answer.lowerBound < close.lowerBound, "the answer went out after the close tag: \(written)")
    }

    @Test func serverPingsAreAnswered() async throws {
        let harness = try await Harness()
        try await harness.receive("<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        let reply = try await harness.sent()
        #expect(reply[attribute: "type"] == "result" && reply[attribute: "id"] == "p1")
        await harness.client.stop()
    }

    @Test func malformedRequestsGetBadRequest() async throws {
        let harness = try await Harness()
        try await harness.receive("<iq type='get' id='m1' from='x@localhost/y' to='bad@@jid'><q xmlns='urn:t'/></iq>")
        let reply = try await harness.sent()
        #expect(IQ(reply)?.error?.condition == .badRequest)
        await harness.client.stop()
    }

    @Test func exchangesReceiveStanzasBySenderWithTheDefaultAsFallback() async throws {
        let harness = try await Harness()
        let fromAlice = await harness.client.exchange(.message, from: JID("alice@localhost")!)
        let rest = await harness.client.defaultExchange()
        try await harness.receive("<message from='alice@localhost/phone'><body>hi</body></message>")
        try await harness.receive("<message from='bob@localhost/pc'><body>yo</body></message>")
        try await harness.receive("<presence from='carol@localhost/x' type='unavailable'/>")
        var aliceIterator = fromAlice.makeAsyncIterator()
        var restIterator = rest.makeAsyncIterator()
        #expect(await aliceIterator.next()?.firstElement(named: "body")?.text == "hi")
        #expect(await restIterator.next()?.fromJID?.local == "bob")
        #expect(await restIterator.next()?.name == "presence")
        await harness.client.stop()
    }

    @Test func cancellingAWaitingRequestThrowsCancellation() async throws {
        let harness = try await Harness()
        let client = harness.client
        let task = Task {
            try await client.sendAndWait(IQ(type: .get, id: "c", to: JID("w@localhost/r")!, payload: XElement("q", namespace: "urn:t")))
        }
        _ = try await harness.sent()
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        await harness.client.stop()
    }

    @Test func aLostConnectionFailsPendingRequests() async throws {
        let harness = try await Harness()
        let client = harness.client
        async let answer = client.sendAndWait(IQ(type: .get, id: "d", to: JID("w@localhost/r")!, payload: XElement("q", namespace: "urn:t")))
        _ = try await harness.sent()
        try await harness.link.channel.close()
        do {
            _ = try await answer
            Issue.record("expected disconnected")
        } catch let error as NatterError {
            #expect(error.code == .disconnected)
        }
        let error = await #expect(throws: NatterError.self) {
            try await client.sendAndWait(IQ(type: .get, id: "e", to: JID("w@localhost/r")!), timeout: .milliseconds(50))
        }
        #expect(error?.code == .disconnected)
        await harness.client.stop()
    }

    @Test func hostileBytesFromTheServerCloseTheLinkWithoutACrash() async throws {
        let harness = try await Harness()
        let client = harness.client
        async let answer = client.sendAndWait(IQ(type: .get, id: "h", to: JID("w@localhost/r")!, payload: XElement("q", namespace: "urn:t")))
        _ = try await harness.sent()
        try? await harness.receive("<!DOCTYPE x [<!ENTITY a 'b'>]><iq/>")
        do {
            _ = try await answer
            Issue.record("expected the request to fail")
        } catch {
            #expect(error is NatterError)
        }
        #expect(await harness.client.isConnected == false)
        await harness.client.stop()
    }

    @Test func anIdleLinkIsPingedAndClosedWhenThePingGoesUnanswered() async throws {
        let harness = try await Harness { configuration in
            configuration.pingInterval = .milliseconds(200)
            configuration.pingTimeout = .milliseconds(200)
        }
        let ping = try await harness.sent()
        #expect(ping.firstElement(named: "ping", namespace: XMPPNamespace.ping) != nil)
        #expect(ping[attribute: "to"] == "localhost")
        let events = await harness.client.connectionEvents()
        for await event in events {
            if case .disconnected = event { break }
        }
        #expect(await harness.client.isConnected == false)
        await harness.client.stop()
    }

    @Test func anAnsweredPingKeepsTheLinkUp() async throws {
        let harness = try await Harness { configuration in
            configuration.pingInterval = .milliseconds(200)
            configuration.pingTimeout = .seconds(5)
        }
        let ping = try await harness.sent()
        try await harness.receive("<iq type='result' id='\(ping[attribute: "id"] ?? "")' from='localhost'/>")
        let next = try await harness.sent()
        #expect(next.firstElement(named: "ping", namespace: XMPPNamespace.ping) != nil)
        #expect(await harness.client.isConnected)
        await harness.client.stop()
    }
}

/// Drops the first outbound IQ it sees, repeats the second.
final class ScriptedInspector: StanzaInspector {
    private let count = NIOLockedCounter()
    func inspect(_ stanza: XElement, direction: StanzaDirection, peer: JID?) -> InspectorVerdict {
        guard direction == .outbound else { return .route }
        switch count.next() {
        case 1: return .drop
        case 2: return .repeat(times: 2)
        default: return .route
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct InspectorHookTests {
    @Test func outboundDropAndRepeatAreApplied() async throws {
        let harness = try await Harness(inspector: ScriptedInspector())
        try await harness.client.send(XElement("message", namespace: XMLNamespace.client, attributes: [XAttribute("id", "one")]))
        try await harness.client.send(XElement("message", namespace: XMLNamespace.client, attributes: [XAttribute("id", "two")]))
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try await harness.sent()[attribute: "id"] ?? "") }
        #expect(ids == ["two", "two", "two"])
        await harness.client.stop()
    }
}

/// Lets a given number of waiters through.
actor Gate {
    private var permits = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func pass() async {
        if permits > 0 {
            permits -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open(_ count: Int) {
        for _ in 0..<count {
            if waiters.isEmpty { permits += 1 } else { waiters.removeFirst().resume() }
        }
    }
}
