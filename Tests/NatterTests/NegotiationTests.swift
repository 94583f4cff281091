import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing
import VertebraXML

@testable import Natter

/// Stream negotiation driven step by step on a socket-less channel, the test playing the server.
struct NegotiationScript {
    let channel = NIOAsyncTestingChannel()
    let events: AsyncThrowingStream<XMLStreamEvent, any Error>
    static let serverHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>"

    init() async throws {
        let (events, continuation) = AsyncThrowingStream<XMLStreamEvent, any Error>.makeStream()
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(XMPPFrameHandler(limits: .stream))
            try channel.pipeline.syncOperations.addHandler(StreamEventBridge(continuation: continuation))
        }.get()
        self.events = events
    }

    /// Starts the client's side of the negotiation.
    func login(_ configuration: ClientConfiguration, password: String) -> Task<LinkInfo, any Error> {
        let channel = self.channel
        let events = self.events
        return Task {
            let session = NegotiationSession(
                configuration: configuration, channel: channel, reader: StreamReader(events), logger: Logger(label: "t"))
            return try await session.run(password: password, resuming: nil)
        }
    }

    /// The next write of the client, as text.
    func written() async throws -> String {
        let buffer = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
        return String(buffer: buffer)
    }

    /// The next write of the client, parsed as one element.
    func element() async throws -> XElement {
        try XElement(xml: try await written())
    }

    func reply(_ xml: String) async throws {
        try await channel.writeInbound(ByteBuffer(string: xml))
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func decode(_ text: String) -> String { String(decoding: Data(base64Encoded: text) ?? Data(), as: UTF8.self) }
}

@Suite(.timeLimit(.minutes(1))) struct NegotiationTests {
    static func configuration() -> ClientConfiguration {
        ClientConfiguration(host: "127.0.0.1", jid: JID("user@localhost/agent")!, password: .value("pencil"), tls: .optional)
    }

    @Test func scramBindSessionAndStreamManagementInOrder() async throws {
        let script = try await NegotiationScript()
        let login = script.login(Self.configuration(), password: "pencil")

        #expect(try await script.written().contains("<stream:stream"))
        try await script.reply(NegotiationScript.serverHeader + """
            <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
            <mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>
            """)
        let auth = try await script.element()
        #expect(auth.name == "auth" && auth[attribute: "mechanism"] == "SCRAM-SHA-256")
        let stored = try SCRAMCredentials.derive(password: "pencil", hash: .sha256)
        var server = SCRAMServer(hash: .sha256) { $0 == "user" ? stored : nil }
        let first = try server.respond(toClientFirst: NegotiationScript.decode(auth.text))
        try await script.reply("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\(NegotiationScript.base64(first))</challenge>")
        let response = try await script.element()
        let final = try server.verify(clientFinal: NegotiationScript.decode(response.text))
        try await script.reply("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\(NegotiationScript.base64(final))</success>")

        #expect(try await script.written().contains("<stream:stream"))
        try await script.reply(NegotiationScript.serverHeader + """
            <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>\
            <sm xmlns='urn:xmpp:sm:3'/></stream:features>
            """)
        let bind = try await script.element()
        #expect(bind.firstElement?.firstElement(named: "resource")?.text == "agent")
        try await script.reply("<iq type='result' id='\(bind[attribute: "id"] ?? "")'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@localhost/agent</jid></bind></iq>")
        let sessionRequest = try await script.element()
        #expect(sessionRequest.firstElement?.name == "session")
        try await script.reply("<iq type='result' id='\(sessionRequest[attribute: "id"] ?? "")'/>")
        let enable = try await script.element()
        #expect(enable.name == "enable" && enable[attribute: "resume"] == "true")
        try await script.reply("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>")

        let info = try await login.value
        #expect(info.boundJID.description == "user@localhost/agent")
        #expect(info.mechanism == "SCRAM-SHA-256")
        #expect(info.streamManagementEnabled && info.streamManagementID == "sm-1")
        #expect(!info.encrypted)
    }

    @Test func aRefusedLoginSaysWhy() async throws {
        let script = try await NegotiationScript()
        let login = script.login(Self.configuration(), password: "wrong")
        _ = try await script.written()
        try await script.reply(NegotiationScript.serverHeader + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>")
        _ = try await script.element()
        try await script.reply("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>bad password</text></failure>")
        let error = await #expect(throws: NatterError.self) { try await login.value }
        #expect(error?.code == .authenticationFailed)
        #expect(error?.message.contains("not-authorized") == true && error?.message.contains("bad password") == true)
    }

    @Test func noCommonMechanismIsNamed() async throws {
        let script = try await NegotiationScript()
        let login = script.login(Self.configuration(), password: "pencil")
        _ = try await script.written()
        try await script.reply(NegotiationScript.serverHeader + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>DIGEST-MD5</mechanism></mechanisms></stream:features>")
        let error = await #expect(throws: NatterError.self) { try await login.value }
        #expect(error?.code == .noCommonMechanism)
        #expect(error?.message.contains("DIGEST-MD5") == true)
    }

    @Test func aServerThatDoesNotKnowThePasswordIsRefused() async throws {
        let script = try await NegotiationScript()
        let login = script.login(Self.configuration(), password: "pencil")
        _ = try await script.written()
        try await script.reply(NegotiationScript.serverHeader + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>")
        let auth = try await script.element()
        let stored = try SCRAMCredentials.derive(password: "something else", hash: .sha1)
        var server = SCRAMServer(hash: .sha1) { _ in stored }
        let first = try server.respond(toClientFirst: NegotiationScript.decode(auth.text))
        try await script.reply("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\(NegotiationScript.base64(first))</challenge>")
        _ = try await script.element()
        // A server that accepts anything but cannot sign: success with a forged signature.
        try await script.reply("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\(NegotiationScript.base64("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="))</success>")
        let error = await #expect(throws: NatterError.self) { try await login.value }
        #expect(error?.code == .serverNotVerified)
    }
}
