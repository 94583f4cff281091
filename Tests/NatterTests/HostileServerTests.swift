import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Natter

/// A TCP server on 127.0.0.1 that answers the client's first bytes with a fixed script, then
/// optionally hangs up: a broken or hostile XMPP server.
final class ScriptedServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init(reply: String, thenClose: Bool) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ScriptHandler(reply: reply, thenClose: thenClose))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async { try? await channel.close() }

    private final class ScriptHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let reply: String
        let thenClose: Bool
        var answered = false

        init(reply: String, thenClose: Bool) {
            self.reply = reply
            self.thenClose = thenClose
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            guard !reply.isEmpty else { return }
            let close = thenClose
            let channel = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer(string: reply))).whenComplete { _ in
                if close { channel.close(promise: nil) }
            }
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct HostileServerTests {
    static let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='x' version='1.0'>"

    func login(against reply: String, thenClose: Bool = false, configure: (inout ClientConfiguration) -> Void = { _ in }) async throws -> NatterError? {
        let server = try await ScriptedServer(reply: reply, thenClose: thenClose)
        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: server.port, jid: JID("me@localhost/test")!, password: .value("pw"), tls: .optional)
        configuration.negotiationTimeout = .seconds(3)
        configure(&configuration)
        let client = XMPPClient(configuration: configuration, logger: Logger(label: "hostile"))
        defer { Task { await client.stop(); await server.stop() } }
        do {
            try await client.start()
            return nil
        } catch let error as NatterError {
            #expect(await client.isConnected == false)
            return error
        }
    }

    @Test func garbageBytesAreAProtocolViolation() async throws {
        let error = try await login(against: "HTTP/1.1 400 Bad Request\r\n\r\n", thenClose: false)
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("bad XML") == true)
    }

    @Test func aStreamErrorIsReportedWithItsCondition() async throws {
        let reply = Self.header + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></stream:error></stream:stream>"
        let error = try await login(against: reply, thenClose: true)
        #expect(error?.code == .streamError)
        #expect(error?.message.contains("host-unknown") == true)
        #expect(error?.message.contains("no such host") == true)
    }

    @Test func anOversizedStanzaIsRefused() async throws {
        let reply = Self.header + "<stream:features>" + String(repeating: "<x/>", count: 5_000) + "</stream:features>"
        let error = try await login(against: reply) { $0.maxStanzaBytes = 4_096 }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("stanza-too-large") == true)
    }

    @Test func aSocketClosedInTheMiddleOfAStanzaFailsCleanly() async throws {
        let error = try await login(against: Self.header + "<stream:features><mechanisms xmlns='urn:ietf:par", thenClose: true)
        #expect(error?.code == .connectionFailed)
        #expect(error?.message.contains("closed") == true)
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        let error = try await login(against: "") { $0.negotiationTimeout = .milliseconds(300) }
        #expect(error?.code == .timeout)
    }

    @Test func aServerWithoutTLSIsRefusedWhenTLSIsRequired() async throws {
        let reply = Self.header + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        let error = try await login(against: reply) { $0.tls = .required }
        #expect(error?.code == .tlsPolicy)
    }

    @Test func badConfigurationsFailFastWithWhatToFix() async throws {
        let cases: [(ClientConfiguration, String)] = [
            (ClientConfiguration(host: "xmpp.example.org", jid: JID("me@example.org")!, password: .value("pw"), tls: .disabled), "loopback"),
            (ClientConfiguration(host: "127.0.0.1", port: 0, jid: JID("me@localhost")!, password: .value("pw")), "port 0"),
            (ClientConfiguration(host: "127.0.0.1", jid: JID("localhost")!, password: .value("pw")), "no local part"),
            (ClientConfiguration(host: "127.0.0.1", jid: JID("me@localhost")!, password: .file("/nonexistent/pw")), "/nonexistent/pw"),
            (ClientConfiguration(host: "127.0.0.1", jid: JID("me@localhost")!, password: .environment("VERTEBRA_NO_SUCH_VAR")), "VERTEBRA_NO_SUCH_VAR"),
            (ClientConfiguration(host: "127.0.0.1", jid: JID("me@localhost")!, password: .value("pw"), trustedCAFile: "/nonexistent/ca.pem"), "/nonexistent/ca.pem"),
        ]
        for (configuration, fragment) in cases {
            let error = await #expect(throws: NatterError.self) { try await XMPPClient(configuration: configuration).start() }
            #expect(error?.code == .configuration)
            #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
        }
    }
}
