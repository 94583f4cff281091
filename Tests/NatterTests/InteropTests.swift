import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing
import VertebraXML

@testable import Natter

/// The client against real Prosody and ejabberd and our embedded router — the same suite for
/// each: every test starts its own private server on 127.0.0.1 and stops it by PID.
@Suite(.serialized, .timeLimit(.minutes(3))) struct InteropTests {
    static let testNamespace = "urn:vertebra:test:echo"

    static func configuration(_ server: XMPPServerProcess, user: String, resource: String, password: String = XMPPServerProcess.password) -> ClientConfiguration {
        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: server.port, jid: JID("\(user)@\(server.domain)/\(resource)")!,
            password: .value(password), tls: .required, trustedCAFile: server.caFile)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))
        configuration.requestTimeout = .seconds(10)
        return configuration
    }

    static func client(_ server: XMPPServerProcess, user: String, resource: String) async throws -> XMPPClient {
        let client = XMPPClient(configuration: configuration(server, user: user, resource: resource), logger: Logger(label: "interop.\(user)"))
        try await client.start()
        return client
    }

    /// A responder that echoes the request's payload text.
    static func echoResponder(_ server: XMPPServerProcess) async throws -> XMPPClient {
        let responder = try await client(server, user: "bob", resource: "echo")
        await responder.handleIQ(namespace: testNamespace, name: "echo") { request in
            XElement("echo", namespace: testNamespace, text: request.payload?.text ?? "")
        }
        return responder
    }

    static func echo(_ text: String, to peer: JID) -> IQ {
        IQ(type: .set, id: "", to: peer, payload: XElement("echo", namespace: testNamespace, text: text))
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func logsInWithSTARTTLSAndSCRAM(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice"])
        defer { server.stop() }
        let alice = try await Self.client(server, user: "alice", resource: "laptop")
        let info = try #require(await alice.connection)
        #expect(info.encrypted)
        #expect(info.saslMechanism.hasPrefix("SCRAM-SHA-"))
        #expect(info.jid.description == "alice@\(server.domain)/laptop")
        #expect(info.streamManagement == kind.offersStreamManagement)
        await alice.stop()
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func twoClientsExchangeIQsAndManyConcurrentRequestsAreMatched(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice", "bob"])
        defer { server.stop() }
        let responder = try await Self.echoResponder(server)
        let alice = try await Self.client(server, user: "alice", resource: "laptop")
        let peer = try #require(await responder.boundJID)
        let single = try await alice.sendAndWait(Self.echo("hello", to: peer))
        #expect(single.payload?.text == "hello")
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for index in 0..<100 {
                group.addTask { (index, try await alice.sendAndWait(Self.echo("n\(index)", to: peer)).payload?.text ?? "") }
            }
            var seen = 0
            for try await (index, text) in group {
                #expect(text == "n\(index)")
                seen += 1
            }
            #expect(seen == 100)
        }
        await alice.stop()
        await responder.stop()
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func anIQToAnOfflineJIDGetsServiceUnavailable(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice", "bob"])
        defer { server.stop() }
        let alice = try await Self.client(server, user: "alice", resource: "laptop")
        let offline = try #require(JID("bob@\(server.domain)/not-here"))
        do {
            _ = try await alice.sendAndWait(Self.echo("anyone?", to: offline))
            Issue.record("expected service-unavailable")
        } catch let error as NatterError {
            #expect(error.code == .stanzaError)
            #expect(error.stanzaError?.condition == .serviceUnavailable)
        }
        await alice.stop()
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func aWrongPasswordFailsCleanly(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice"])
        defer { server.stop() }
        let client = XMPPClient(configuration: Self.configuration(server, user: "alice", resource: "x", password: "wrong"))
        do {
            try await client.start()
            Issue.record("a wrong password was accepted")
        } catch let error as NatterError {
            #expect(error.code == .authenticationFailed)
            #expect(error.message.contains("not-authorized"))
        }
        #expect(await client.isConnected == false)
        await client.stop()
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func anUntrustedCertificateIsRefused(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice"])
        defer { server.stop() }
        var configuration = Self.configuration(server, user: "alice", resource: "x")
        configuration.tlsServerName = "impostor.example"
        let client = XMPPClient(configuration: configuration)
        do {
            try await client.start()
            Issue.record("a certificate for the wrong name was accepted")
        } catch let error as NatterError {
            #expect(error.code == .tlsFailed, "\(error)")
        }
        await client.stop()
    }

    /// A certificate signed by a CA the client does not trust says which file to give (it
    /// printed BoringSSL's raw error).
    @Test func aCertificateFromAnUntrustedCASaysWhichFileToGive() async throws {
        let server = try await XMPPServerProcess.start(.router, users: ["alice"])
        defer { server.stop() }
        var configuration = Self.configuration(server, user: "alice", resource: "x")
        configuration.trustedCAFile = nil  // the system's CAs, which never signed the router's certificate
        let client = XMPPClient(configuration: configuration)
        do {
            try await client.start()
            Issue.record("a certificate from an untrusted CA was accepted")
        } catch let error as NatterError {
            #expect(error.code == .tlsFailed && error.message.contains("not trusted") && error.message.contains("--ca-file"), "\(error)")
        }
        await client.stop()
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func clientsReconnectAfterTheServerRestarts(kind: XMPPServerProcess.Kind) async throws {
        var server = try await XMPPServerProcess.start(kind, users: ["alice", "bob"])
        defer { server.stop() }
        let responder = try await Self.echoResponder(server)
        let alice = try await Self.client(server, user: "alice", resource: "laptop")
        let peer = try #require(await responder.boundJID)
        _ = try await alice.sendAndWait(Self.echo("before", to: peer))
        let aliceEvents = await alice.connectionEvents()
        let responderEvents = await responder.connectionEvents()
        server = try await server.restart(users: [])  // accounts persist; re-registering would kick sessions
        try await Self.waitForReconnection(aliceEvents)
        try await Self.waitForReconnection(responderEvents)
        let after = try await alice.sendAndWait(Self.echo("after", to: peer), timeout: .seconds(15))
        #expect(after.payload?.text == "after")
        await alice.stop()
        await responder.stop()
    }

    /// A request waiting for a lost link ends as soon as its task is cancelled, with
    /// `CancellationError`, not at its timeout (a stopping worker's last advertisement must not
    /// hold up its shutdown).
    @Test func aRequestWaitingForTheLinkEndsWhenCancelled() async throws {
        let server = try await XMPPServerProcess.start(.router, users: ["alice"])
        defer { server.stop() }
        let alice = try await Self.client(server, user: "alice", resource: "laptop")
        let events = await alice.connectionEvents()
        server.stop(purge: false)
        for await event in events { if case .disconnected = event { break } }
        let request = Task { try await alice.sendAndWait(Self.echo("lost", to: JID("bob@\(server.domain)/x")!), timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(200))
        let cancelled = ContinuousClock.now
        request.cancel()
        await #expect(throws: CancellationError.self) { try await request.value }
        #expect(ContinuousClock.now - cancelled < .seconds(5), "it waited \(ContinuousClock.now - cancelled)")
        await alice.stop()
    }

    /// Waits for a disconnection followed by a connection.
    static func waitForReconnection(_ events: AsyncStream<XMPPClient.ConnectionEvent>) async throws {
        var sawDisconnect = false
        for await event in events {
            switch event {
            case .disconnected: sawDisconnect = true
            case .connected where sawDisconnect: return
            default: continue
            }
        }
        throw XMPPServerProcess.ServerError(message: "event stream ended before reconnection")
    }

    @Test(arguments: XMPPServerProcess.Kind.allCases)
    func inspectorDropDelayAndRepeatAreObservable(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice", "bob"])
        defer { server.stop() }
        let calls = NIOLockedCounter()
        let responder = try await Self.client(server, user: "bob", resource: "echo")
        await responder.handleIQ(namespace: InteropTests.testNamespace, name: "echo") { request in
            _ = calls.next()
            return XElement("echo", namespace: InteropTests.testNamespace, text: request.payload?.text ?? "")
        }
        let inspector = try RuleInspector(
            document: XElement(xml: """
                <inspector xmlns='urn:vertebra:inspector:1'>
                  <rule direction='outbound' payload='echo'><drop probability='0'/><repeat times='1'/></rule>
                </inspector>
                """))
        var configuration = Self.configuration(server, user: "alice", resource: "laptop")
        configuration.requestTimeout = .seconds(5)
        let alice = XMPPClient(configuration: configuration, inspector: RoutingOverride(inspector))
        try await alice.start()
        let peer = try #require(await responder.boundJID)
        // repeat: the responder runs twice, the requester gets one answer.
        #expect(try await alice.sendAndWait(Self.echo("twice", to: peer)).payload?.text == "twice")
        try await Task.sleep(for: .milliseconds(300))
        // the original and its repeat
        #expect(calls.current == 2)
        // drop: no answer, a timeout.
        RoutingOverride.mode.withLockedValue { $0 = .drop }
        let dropped = await #expect(throws: NatterError.self) {
            try await alice.sendAndWait(Self.echo("lost", to: peer), timeout: .milliseconds(500))
        }
        #expect(dropped?.code == .timeout)
        // delay: the answer comes, late.
        RoutingOverride.mode.withLockedValue { $0 = .delay(.milliseconds(400)) }
        let clock = ContinuousClock()
        let started = clock.now
        #expect(try await alice.sendAndWait(Self.echo("late", to: peer)).payload?.text == "late")
        #expect(clock.now - started >= .milliseconds(400))
        await alice.stop()
        await responder.stop()
    }

    @Test(arguments: XMPPServerProcess.Kind.withStreamManagement)
    func aLostConnectionIsResumedAndTheAnswerStillArrives(kind: XMPPServerProcess.Kind) async throws {
        let server = try await XMPPServerProcess.start(kind, users: ["alice", "bob"])
        defer { server.stop() }
        let responder = try await Self.client(server, user: "bob", resource: "slow")
        await responder.handleIQ(namespace: InteropTests.testNamespace, name: "echo") { request in
            try await Task.sleep(for: .milliseconds(800))
            return XElement("echo", namespace: InteropTests.testNamespace, text: request.payload?.text ?? "")
        }
        let alice = try await Self.client(server, user: "alice", resource: "laptop")
        #expect(await alice.connection?.streamManagement == true)
        let peer = try #require(await responder.boundJID)
        let events = await alice.connectionEvents()
        async let answer = alice.sendAndWait(Self.echo("kept", to: peer), timeout: .seconds(15))
        try await Task.sleep(for: .milliseconds(200))
        await alice.simulateConnectionLoss()
        var resumed = false
        var sawDisconnect = false
        for await event in events {
            if case .disconnected = event { sawDisconnect = true }
            if case .connected(_, let wasResumed) = event, sawDisconnect {
                resumed = wasResumed
                break
            }
        }
        #expect(resumed)
        #expect(try await answer.payload?.text == "kept")
        await alice.stop()
        await responder.stop()
    }
}

/// Lets a test switch the verdict for outbound echo requests between rule-driven, drop and delay.
final class RoutingOverride: StanzaInspector {
    enum Mode: Sendable { case rules, drop, delay(Duration) }
    static let mode = NIOLockedValueBox(Mode.rules)
    let rules: RuleInspector

    init(_ rules: RuleInspector) {
        self.rules = rules
        Self.mode.withLockedValue { $0 = .rules }
    }

    func inspect(_ stanza: XElement, direction: StanzaDirection, peer: JID?) -> InspectorVerdict {
        guard direction == .outbound, stanza.firstElement?.name == "echo" else { return .route }
        switch Self.mode.withLockedValue({ $0 }) {
        case .rules: return rules.inspect(stanza, direction: direction, peer: peer)
        case .drop: return .drop
        case .delay(let pause): return .delay(pause)
        }
    }
}
