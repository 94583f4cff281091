import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Natter
import Testing
import VertebraRouter
import VertebraXML

/// A router on 127.0.0.1 with a random port, a fresh self-signed certificate and two accounts
/// (alice and bob, password `secret-pw`, plus carol `c:olon pw`).
final class TestRouter: Sendable {
    static let password = "secret-pw"
    static let domain = "localhost"

    let router: XMPPRouter
    let port: Int
    let directory: String
    let certificate: String
    let accounts: AccountStore

    init(
        tls: Bool = true, requireTLS: Bool = true, logger custom: Logger? = nil, adjust: (inout RouterConfiguration) -> Void = { _ in }
    ) async throws {
        directory = NSTemporaryDirectory() + "router-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = RouterConfiguration.TLSFiles(certificatePath: directory + "/cert.pem", privateKeyPath: directory + "/key.pem")
        certificate = files.certificatePath
        if tls { try RouterTLS.ensureSelfSigned(files, domain: TestRouter.domain) }
        accounts = AccountStore(accounts: [
            try Account(username: "alice", password: TestRouter.password),
            try Account(username: "bob", password: TestRouter.password),
            try Account(username: "carol", password: "c:olon pw"),
        ])
        var configuration = RouterConfiguration(port: 0, domain: TestRouter.domain, tls: tls ? files : nil, requireTLS: requireTLS)
        configuration.authFailureDelay = .milliseconds(50)
        adjust(&configuration)
        var logger = Logger(label: "router-test")
        logger.logLevel = ProcessInfo.processInfo.environment["ROUTER_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        router = try XMPPRouter(configuration: configuration, accounts: accounts, logger: custom ?? logger)
        guard let port = try await router.start().port else { throw RouterTestError("the router has no port") }
        self.port = port
    }

    static let clientLogger: Logger = {
        var logger = Logger(label: "router-test-client")
        logger.logLevel = .critical
        return logger
    }()

    /// Starts a router (as ``init(tls:requireTLS:adjust:)``), runs `body` with it and stops it
    /// however `body` ends: also when a `#require` fails or anything in it throws.
    static func with<T>(
        tls: Bool = true, requireTLS: Bool = true, logger: Logger? = nil, adjust: (inout RouterConfiguration) -> Void = { _ in },
        _ body: (TestRouter) async throws -> T
    ) async throws -> T {
        let router = try await TestRouter(tls: tls, requireTLS: requireTLS, logger: logger, adjust: adjust)
        do {
            let result = try await body(router)
            await router.stop()
            return result
        } catch {
            await router.stop()
            throw error
        }
    }

    func stop() async {
        await router.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func configuration(
        _ user: String, resource: String? = nil, password: String = TestRouter.password, tls: ClientConfiguration.TLSPolicy = .required
    ) throws -> ClientConfiguration {
        guard let jid = JID(local: user, domain: TestRouter.domain, resource: resource) else { throw RouterTestError("bad JID") }
        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: port, jid: jid, password: .value(password), tls: tls,
            trustedCAFile: tls == .disabled ? nil : certificate)
        configuration.reconnect = ReconnectPolicy(enabled: false)
        configuration.pingInterval = nil
        // Generous: the unit pass runs hundreds of tests at once on two cores, and a TLS login
        // (handshake, SCRAM) may wait its turn; these tests check behaviour, not login speed.
        configuration.requestTimeout = .seconds(30)
        configuration.negotiationTimeout = .seconds(30)
        return configuration
    }

    /// A logged-in Natter client.
    func client(_ user: String, resource: String? = nil, tls: ClientConfiguration.TLSPolicy = .required) async throws -> XMPPClient {
        let client = XMPPClient(configuration: try configuration(user, resource: resource, tls: tls), logger: TestRouter.clientLogger)
        try await client.start()
        return client
    }

    /// Waits until `condition` holds (polling), or fails the test after `timeout`.
    func eventually(_ what: String, timeout: Duration = .seconds(15), _ condition: @Sendable () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
    }
}

struct RouterTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A raw TCP client that writes whatever it is told and records everything it receives.
final class RawClient: Sendable {
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox<[UInt8]>([])
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) }
        }
    }

    let channel: any Channel
    private let collector: Collector

    /// Connects to the router on `port`, from the loopback address `source` when given, with a
    /// small socket receive buffer when `receiveBuffer` is given.
    init(port: Int, source: String? = nil, receiveBuffer: Int? = nil) async throws {
        let collector = Collector()
        self.collector = collector
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: receiveBuffer) }
        channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
    }

    /// Logs in with PLAIN and binds `resource`; returns whether both succeeded.
    func bind(_ user: String, resource: String) async throws -> Bool {
        guard try await logInPLAIN(user) else { return false }
        try await send(Self.header)
        try await send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>\(resource)</resource></bind></iq>")
        return try await waitFor("</jid>")
    }

    /// Stops (or resumes) reading from the socket, as a client that does not read would.
    func setReading(_ on: Bool) async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: on).get()
    }

    static let header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    /// Opens the stream and authenticates `user` with SASL PLAIN (plaintext loopback); returns
    /// whether the router said `<success>`.
    func logInPLAIN(_ user: String, password: String = TestRouter.password) async throws -> Bool {
        try await send(Self.header)
        guard try await waitFor("</stream:features>") else { return false }
        let credentials = Data("\u{0}\(user)\u{0}\(password)".utf8).base64EncodedString()
        try await send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>\(credentials)</auth>")
        return try await waitFor("<success")
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    var text: String { String(decoding: collector.received.withLockedValue { $0 }, as: UTF8.self) }

    var isOpen: Bool { channel.isActive }

    /// Waits until the received text contains `fragment`; `false` after `timeout`.
    func waitFor(_ fragment: String, timeout: Duration = .seconds(15)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if text.contains(fragment) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return text.contains(fragment)
    }

    /// Waits until the router closed the connection; `false` after `timeout`.
    func waitClosed(timeout: Duration = .seconds(15)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return !channel.isActive
    }

    func close() async { try? await channel.close() }
}

extension TestRouter {
    /// Checks that a normal client can still log in and ping the server.
    func stillServesNormalClients() async throws {
        let client = try await client("bob", resource: "check")
        let answer = try await client.sendAndWait(
            IQ(type: .get, id: "", to: JID(TestRouter.domain), payload: XElement("ping", namespace: XMPPNamespace.ping)))
        #expect(answer.type == .result)
        await client.stop()
    }
}
