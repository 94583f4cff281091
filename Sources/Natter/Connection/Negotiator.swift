import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import VertebraXML

/// Reads one stream's events in order; owned by the one task that drives the connection.
final class StreamReader {
    private var iterator: AsyncThrowingStream<XMLStreamEvent, any Error>.AsyncIterator

    init(_ events: AsyncThrowingStream<XMLStreamEvent, any Error>) {
        iterator = events.makeAsyncIterator()
    }

    /// The next event; `nil` when the connection closed. Runs in the caller's isolation, so an
    /// actor can own the reader.
    func next(isolation actor: isolated (any Actor)? = #isolation) async throws -> XMLStreamEvent? {
        try await iterator.next(isolation: actor)
    }
}

/// What a successful login settled.
struct LinkInfo: Sendable {
    let channel: any Channel
    let boundJID: JID
    let encrypted: Bool
    let mechanism: String
    /// Stream management: the id to resume with (when the server allows resumption).
    let streamManagementID: String?
    let streamManagementEnabled: Bool
    /// When a previous session was resumed: how many of our stanzas the server had received.
    let resumedServerCount: Int?
}

/// A previous stream-management session to resume.
struct ResumptionTicket: Sendable {
    let id: String
    let handledInbound: Int
}

/// Makes logged-in links for a client: the real one is ``Negotiator``; tests supply others.
protocol LinkFactory: Sendable {
    func connect(resuming ticket: ResumptionTicket?) async throws -> sending (LinkInfo, StreamReader)
}

/// Opens a TCP connection and negotiates an XMPP client stream (RFC 6120): STARTTLS, SASL
/// (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN only over TLS or loopback), resource binding, the legacy
/// session step when required, and XEP-0198 enable or resume.
struct Negotiator: LinkFactory {
    let configuration: ClientConfiguration
    let group: any EventLoopGroup
    let logger: Logger

    /// Connects and logs in; the reader continues with the first stanza after login.
    func connect(resuming ticket: ResumptionTicket?) async throws -> sending (LinkInfo, StreamReader) {
        let password = try configuration.readPassword()
        let (channel, reader) = try await openChannel()
        let timedOut = NIOLockedValueBox(false)
        let timer = channel.eventLoop.scheduleTask(in: configuration.negotiationTimeout.timeAmount) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            let session = NegotiationSession(
                configuration: configuration, channel: channel, reader: reader, logger: logger)
            let info = try await session.run(password: password, resuming: ticket)
            return (info, reader)
        } catch {
            channel.close(promise: nil)
            if timedOut.withLockedValue({ $0 }) {
                throw NatterError(.timeout, "login to \(configuration.host):\(configuration.port) took longer than \(configuration.negotiationTimeout)")
            }
            throw Negotiator.describe(error)
        }
    }

    private func openChannel() async throws -> (any Channel, StreamReader) {
        let (events, continuation) = AsyncThrowingStream<XMLStreamEvent, any Error>.makeStream()
        let limits = XMLParserLimits(maxStanzaBytes: configuration.maxStanzaBytes)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // STARTTLS puts the TLS handler before (socket-side of) the coalescer.
                    try channel.pipeline.syncOperations.addHandler(FlushCoalescer())
                    try channel.pipeline.syncOperations.addHandler(XMPPFrameHandler(limits: limits))
                    try channel.pipeline.syncOperations.addHandler(StreamEventBridge(continuation: continuation))
                }
            }
        do {
            let channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
            return (channel, StreamReader(events))
        } catch {
            continuation.finish()
            throw NatterError(
                .connectionFailed, "cannot connect to \(configuration.host):\(configuration.port): \(error)")
        }
    }

    /// Maps low-level failures (TLS, parse errors) to ``NatterError``.
    /// A TLS failure; one of the server's certificate says what to do about it.
    private static func tlsFailed(_ detail: String) -> NatterError {
        if detail.contains("CERTIFICATE_VERIFY_FAILED") {
            return NatterError(
                .tlsFailed,
                "TLS failed: the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED); give the CA that signed it "
                    + "(the embedded router's cert.pem) as the trusted CA file: --ca-file or VERTEBRA_CA_FILE on the command line, ClientConfiguration.trustedCAFile in code. Detail: \(detail)")
        }
        return NatterError(.tlsFailed, "TLS failed: \(detail)")
    }

    static func describe(_ error: any Error) -> NatterError {
        switch error {
        case let error as NatterError: return error
        case let error as NIOSSLError: return tlsFailed("\(error)")
        case let error as NIOSSLExtraError: return tlsFailed("\(error)")
        case let error as BoringSSLError: return tlsFailed("\(error)")
        case let error as XMLParseError: return NatterError(.protocolViolation, "the server sent bad XML: \(error)")
        default: return NatterError(.connectionFailed, "\(error)")
        }
    }
}

/// One login attempt on an open channel.
struct NegotiationSession {
    let configuration: ClientConfiguration
    let channel: any Channel
    let reader: StreamReader
    let logger: Logger

    private var domain: String { configuration.jid.domain }

    func run(password: String, resuming ticket: ResumptionTicket?) async throws -> LinkInfo {
        var features = try await openStream()
        var encrypted = false
        if let starttls = features.firstElement(named: "starttls", namespace: XMPPNamespace.tls) {
            if configuration.tls != .disabled {
                try await startTLS()
                encrypted = true
                features = try await openStream()
            } else if starttls.firstElement(named: "required") != nil {
                throw NatterError(.tlsPolicy, "the server requires TLS but TLS is disabled in the configuration")
            }
        } else if configuration.tls == .required {
            throw NatterError(
                .tlsPolicy,
                "the server does not offer STARTTLS and TLS is required; configure TLS on the server or use tls=optional")
        }
        let mechanism = try await authenticate(features: features, password: password, encrypted: encrypted)
        features = try await openStream()
        let offersSM = features.firstElement(named: "sm", namespace: XMPPNamespace.streamManagement) != nil
        if let ticket, offersSM, configuration.streamManagement, let resumed = try await resume(ticket) {
            logger.info("stream resumed", metadata: ["jid": "\(resumed.jid)"])
            return LinkInfo(
                channel: channel, boundJID: resumed.jid, encrypted: encrypted, mechanism: mechanism,
                streamManagementID: ticket.id, streamManagementEnabled: true, resumedServerCount: resumed.count)
        }
        let jid = try await bind()
        if let session = features.firstElement(named: "session", namespace: XMPPNamespace.session),
            session.firstElement(named: "optional") == nil
        {
            try await requestSession()
        }
        var smID: String?
        var smEnabled = false
        if offersSM && configuration.streamManagement {
            (smEnabled, smID) = try await enableStreamManagement()
        }
        return LinkInfo(
            channel: channel, boundJID: jid, encrypted: encrypted, mechanism: mechanism,
            streamManagementID: smID, streamManagementEnabled: smEnabled, resumedServerCount: nil)
    }

    // MARK: Streams

    private func write(_ element: XElement) async throws {
        try await send(ByteBuffer(bytes: element.serializedBytes(inheritedNamespace: XMLNamespace.client)))
    }

    /// Writes bytes; when the write fails because the connection died (a failed TLS handshake,
    /// for one), throws the error that killed it rather than "I/O on closed channel".
    private func send(_ bytes: ByteBuffer) async throws {
        do {
            try await channel.writeAndFlush(bytes)
        } catch {
            do {
                while try await reader.next() != nil {}
            } catch let cause {
                throw cause
            }
            throw error
        }
    }

    /// Sends a stream header and returns the server's stream features.
    private func openStream() async throws -> XElement {
        var header = Array("<?xml version='1.0'?>".utf8)
        let stream = XElement(
            "stream", namespace: XMLNamespace.stream,
            attributes: [
                XAttribute("to", domain), XAttribute("from", configuration.jid.bare.description),
                XAttribute("version", "1.0"), XAttribute("lang", "en", namespace: XMLNamespace.xml),
            ])
        XMLSerializer.writeStartTag(
            of: stream, prefix: "stream", declaring: [("stream", XMLNamespace.stream)],
            defaultNamespace: XMLNamespace.client, into: &header)
        try await send(ByteBuffer(bytes: header))
        guard case .streamOpened(let opened)? = try await reader.next() else {
            throw NatterError(.protocolViolation, "the server did not open an XMPP stream")
        }
        guard opened.namespace == XMLNamespace.stream, opened.name == "stream" else {
            throw NatterError(.protocolViolation, "the server opened <\(opened.name)> in \(opened.namespace), not an XMPP stream")
        }
        let features = try await nextElement()
        guard features.name == "features", features.namespace == XMLNamespace.stream else {
            throw NatterError(.protocolViolation, "expected stream features, got <\(features.name)>")
        }
        return features
    }

    /// The next top-level element; stream errors and closes become errors.
    private func nextElement() async throws -> XElement {
        switch try await reader.next() {
        case .stanza(let element)?:
            if element.name == "error", element.namespace == XMLNamespace.stream {
                throw StreamErrorReport(element).error
            }
            return element
        case .streamOpened?:
            throw NatterError(.protocolViolation, "the server opened a second stream")
        case .streamClosed?, nil:
            throw NatterError(.connectionFailed, "the server closed the connection during login")
        }
    }

    private func restart() async throws {
        try await channel.triggerUserOutboundEvent(XMPPFrameHandler.RestartStream()).get()
    }

    // MARK: TLS

    private func startTLS() async throws {
        try await write(XElement("starttls", namespace: XMPPNamespace.tls))
        let answer = try await nextElement()
        guard answer.name == "proceed", answer.namespace == XMPPNamespace.tls else {
            throw NatterError(.tlsFailed, "the server refused STARTTLS (<\(answer.name)>)")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        if let file = configuration.trustedCAFile { tls.trustRoots = .file(file) }
        let context = try NIOSSLContext(configuration: tls)
        let serverName = configuration.tlsServerName ?? domain
        let channel = self.channel
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(promise: handshake), position: .after(handler))
        }.get()
        do { try await handshake.futureResult.get() } catch {
            throw Self.tlsFailure(error)
        }
        try await restart()
        logger.debug("TLS started", metadata: ["server": "\(serverName)"])
    }

    /// Whatever ended the handshake, reported as a TLS failure.
    private static func tlsFailure(_ error: any Error) -> NatterError {
        let described = Negotiator.describe(error)
        return described.code == .tlsFailed ? described : NatterError(.tlsFailed, "TLS failed: \(described.message)")
    }

    // MARK: SASL

    private func authenticate(features: XElement, password: String, encrypted: Bool) async throws -> String {
        let offered = Set(
            features.firstElement(named: "mechanisms", namespace: XMPPNamespace.sasl)?.elements
                .filter { $0.name == "mechanism" }.map(\.text) ?? [])
        let plainAllowed = encrypted || configuration.isLoopback
        if let hash = [SCRAMHash.sha256, .sha1].first(where: { offered.contains($0.mechanism) }) {
            try await authenticateSCRAM(hash, password: password)
            return hash.mechanism
        }
        if offered.contains("PLAIN") && plainAllowed {
            try await authenticatePlain(password: password)
            return "PLAIN"
        }
        throw NatterError(
            .noCommonMechanism,
            "the server offers \(offered.sorted().joined(separator: ", ")); this client accepts SCRAM-SHA-256, SCRAM-SHA-1, or PLAIN over TLS or loopback")
    }

    private func authenticateSCRAM(_ hash: SCRAMHash, password: String) async throws {
        guard let user = configuration.jid.local else { throw NatterError(.configuration, "the JID has no local part") }
        var scram = try SCRAMClient(hash: hash, username: user, password: password)
        try await write(saslElement("auth", mechanism: hash.mechanism, payload: scram.clientFirstMessage))
        let challenge = try await saslStep(expecting: "challenge")
        let final = try scram.respond(toServerFirst: challenge)
        try await write(saslElement("response", payload: final))
        let outcome = try await saslStep(expecting: "success")
        try scram.verify(serverFinal: outcome)
        try await restart()
    }

    private func authenticatePlain(password: String) async throws {
        guard let user = configuration.jid.local else { throw NatterError(.configuration, "the JID has no local part") }
        try await write(saslElement("auth", mechanism: "PLAIN", payload: "\u{0}\(user)\u{0}\(password)"))
        _ = try await saslStep(expecting: "success")
        try await restart()
    }

    private func saslElement(_ name: String, mechanism: String? = nil, payload: String) -> XElement {
        XElement(
            name, namespace: XMPPNamespace.sasl,
            attributes: mechanism.map { [XAttribute("mechanism", $0)] } ?? [],
            text: Data(payload.utf8).base64EncodedString())
    }

    /// Reads a SASL answer; `<failure>` becomes ``NatterError/Code-swift.struct/authenticationFailed``.
    private func saslStep(expecting name: String) async throws -> String {
        let answer = try await nextElement()
        guard answer.namespace == XMPPNamespace.sasl else {
            throw NatterError(.protocolViolation, "unexpected <\(answer.name)> during SASL")
        }
        if answer.name == "failure" {
            let condition = answer.elements.first { $0.name != "text" }?.name ?? "failure"
            let text = answer.firstElement(named: "text")?.text
            throw NatterError(
                .authenticationFailed,
                "the server refused the login for \(configuration.jid.bare): \(condition)" + (text.map { " (\($0))" } ?? ""))
        }
        guard answer.name == name || (name == "challenge" && answer.name == "success") else {
            throw NatterError(.protocolViolation, "expected SASL <\(name)>, got <\(answer.name)>")
        }
        let text = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text != "=", !text.isEmpty else { return "" }
        guard let data = Data(base64Encoded: text) else {
            throw NatterError(.protocolViolation, "SASL <\(answer.name)> is not base64")
        }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Binding, session, stream management

    private func bind() async throws -> JID {
        let resource = configuration.requestedResource.map { [XNode.element(XElement("resource", text: $0))] } ?? []
        let request = IQ(
            type: .set, id: "bind-1",
            payload: XElement("bind", namespace: XMPPNamespace.bind, children: resource.map(Negotiator.inBindNamespace)))
        try await write(request.element)
        let answer = try await nextElement()
        guard let iq = IQ(answer), iq.id == "bind-1" else {
            throw NatterError(.bindFailed, "unexpected answer to resource binding: <\(answer.name)>")
        }
        if let error = iq.error { throw NatterError(.bindFailed, "the server refused the resource: \(error)", stanzaError: error) }
        guard let text = iq.payload?.firstElement(named: "jid")?.text, let jid = JID(text), jid.isFull else {
            throw NatterError(.bindFailed, "the server's bind result carries no full JID")
        }
        return jid
    }

    private func requestSession() async throws {
        try await write(IQ(type: .set, id: "session-1", payload: XElement("session", namespace: XMPPNamespace.session)).element)
        let answer = try await nextElement()
        guard let iq = IQ(answer), iq.type == .result else {
            throw NatterError(.bindFailed, "the server refused the session")
        }
    }

    private func enableStreamManagement() async throws -> (Bool, String?) {
        try await write(XElement("enable", namespace: XMPPNamespace.streamManagement, attributes: [XAttribute("resume", "true")]))
        let answer = try await nextElement()
        guard answer.namespace == XMPPNamespace.streamManagement, answer.name == "enabled" else {
            logger.info("stream management not enabled", metadata: ["answer": "\(answer.name)"])
            return (false, nil)
        }
        let resumable = answer[attribute: "resume"] == "true" || answer[attribute: "resume"] == "1"
        return (true, resumable ? answer[attribute: "id"] : nil)
    }

    private func resume(_ ticket: ResumptionTicket) async throws -> (jid: JID, count: Int)? {
        try await write(
            XElement(
                "resume", namespace: XMPPNamespace.streamManagement,
                attributes: [XAttribute("previd", ticket.id), XAttribute("h", String(ticket.handledInbound))]))
        let answer = try await nextElement()
        guard answer.namespace == XMPPNamespace.streamManagement, answer.name == "resumed",
            let count = answer[attribute: "h"].flatMap(Int.init)
        else { return nil }
        return (configuration.jid, count)
    }
}

extension Negotiator {
    static func inBindNamespace(_ node: XNode) -> XNode {
        guard case .element(let element) = node else { return node }
        return .element(XElement(element.name, namespace: XMPPNamespace.bind, children: element.children))
    }
}

/// A `<stream:error>` from the server, as an error.
struct StreamErrorReport {
    let condition: String
    let text: String?

    init(_ element: XElement) {
        condition = element.elements.first { $0.namespace == XMPPNamespace.streams && $0.name != "text" }?.name ?? "undefined-condition"
        text = element.elements.first { $0.name == "text" }?.text
    }

    var error: NatterError {
        let detail = "the server closed the stream: \(condition)" + (text.map { " (\($0))" } ?? "")
        if condition == "conflict" {
            return NatterError(.sessionReplaced, detail + "; another session uses this JID and resource, so this one does not reconnect")
        }
        return NatterError(.streamError, detail)
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(Int64(components.seconds) * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
