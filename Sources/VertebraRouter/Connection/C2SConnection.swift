import Foundation
import Logging
import NIOCore
import NIOSSL
import Natter
import VertebraXML

/// One client connection: parses its stream, negotiates TLS, SASL and binding (RFC 6120), then
/// routes its stanzas. Lives on the channel's event loop; other connections reach it only
/// through its ``ConnectionHandle``.
final class C2SConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How far the stream has come.
    enum Phase: Equatable {
        /// Before authentication (TLS may or may not have started).
        case negotiating
        /// Authenticated as this user; waiting for the restarted stream and resource binding.
        case authenticated(String)
        /// Resource bound: stanzas are routed.
        case bound(JID)
    }

    let core: RouterCore
    let parser: XMLStreamParser
    var logger: Logger
    var context: ChannelHandlerContext?
    var handle: ConnectionHandle?
    var phase = Phase.negotiating
    var encrypted = false
    var headerSent = false
    var closing = false
    /// Set when the parser was reset mid-read (STARTTLS, SASL success): the rest of that read
    /// belonged to the old stream and is discarded.
    var streamRestarted = false
    var sasl: SASLState?
    var authFailures = 0
    /// Elements received before a resource was bound (bounded: ``RouterLimits/maxElementsBeforeBind``).
    var elementsBeforeBind = 0
    var authTimer: Scheduled<Void>?
    var rate: StanzaRateLimiter
    /// Entities this client sent directed available presence to; they get `unavailable` when
    /// the client goes away.
    var directedPresence: Set<JID> = []
    /// Set when a newer session took this one's full JID (`conflict`).
    var replaced = false

    /// An exchange in progress.
    enum SASLState {
        case scram(SCRAMServer, SCRAMHash)
        case failing
    }

    init(core: RouterCore) {
        self.core = core
        parser = XMLStreamParser(limits: XMLParserLimits(maxStanzaBytes: core.configuration.limits.maxStanzaBytes))
        logger = core.logger
        rate = StanzaRateLimiter(perSecond: core.configuration.limits.stanzasPerSecond, burst: core.configuration.limits.stanzaBurst)
    }

    /// The client's IP address ("?" when unknown).
    var address: String { context?.channel.remoteAddress?.ipAddress ?? "?" }

    var boundJID: JID? {
        if case .bound(let jid) = phase { return jid }
        return nil
    }

    var isLoopback: Bool {
        guard let address = context?.channel.remoteAddress?.ipAddress else { return false }
        return address.hasPrefix("127.") || address == "::1" || address.hasPrefix("::ffff:127.")
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        let id = core.registry.makeID()
        logger[metadataKey: "conn"] = "\(id)"
        logger[metadataKey: "peer"] = "\(context.channel.remoteAddress?.description ?? "?")"
        let handle = ConnectionHandle(id: id, channel: context.channel, handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        if let refusal = core.registry.admit(handle) {
            switch refusal {
            case .tooManyFromAddress:
                logger.warning("connection refused: too many connections from its address")
                terminate(.policyViolation, text: "too many connections from \(handle.address)")
            case .full, .shuttingDown:
                logger.warning("connection refused: too many connections or shutting down")
                terminate(.resourceConstraint, text: "too many connections")
            }
            context.fireChannelActive()
            return
        }
        self.handle = handle
        logger.info("connection opened")
        let timeout = core.configuration.limits.authTimeout
        authTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout.timeAmount) {
            self.logger.info("authentication timeout")
            self.terminate(.connectionTimeout, text: "no authentication within \(timeout)")
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        authTimer?.cancel()
        closing = true
        // A session replaced by a newer one with the same full JID is not gone: that JID is
        // still available, so its presence recipients hear nothing.
        if let jid = boundJID, !replaced {
            for target in directedPresence.sorted() {
                route(Presence.unavailable(to: target).setting(attribute: "from", to: jid.description), from: jid, to: target)
            }
        }
        directedPresence.removeAll()
        if let handle {
            core.registry.release(handle)
            self.handle = nil
        }
        logger.info("connection closed", metadata: boundJID.map { ["jid": "\($0)"] } ?? [:])
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("connection error", metadata: ["error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let buffer = unwrapInboundIn(data)
        let events: [XMLStreamEvent]
        do {
            events = try buffer.withUnsafeReadableBytes { bytes in try parser.feed(bytes) }
        } catch let error as XMLParseError {
            logger.info("bad XML from client", metadata: ["error": "\(error)"])
            terminate(StreamErrorCondition(error), text: error.message)
            return
        } catch {
            terminate(.internalServerError)
            return
        }
        streamRestarted = false
        for event in events {
            guard !closing, !streamRestarted else { return }
            switch event {
            case .streamOpened(let header): streamOpened(header)
            case .stanza(let element): received(element)
            case .streamClosed: clientClosedStream()
            }
        }
    }

    // MARK: Writing

    func write(_ bytes: [UInt8]) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
    }

    func write(_ element: XElement) {
        logger.trace("stanza out", metadata: ["xml": "\(Self.loggable(element))"])
        write(element.serializedBytes(inheritedNamespace: XMLNamespace.client))
    }

    /// Sends our stream header (with a fresh id) for the current phase.
    func sendHeader() {
        var header = Array("<?xml version='1.0'?>".utf8)
        let stream = XElement(
            "stream", namespace: XMLNamespace.stream,
            attributes: [
                XAttribute("from", core.domain), XAttribute("id", String(UInt64.random(in: 1...UInt64.max), radix: 36)),
                XAttribute("version", "1.0"), XAttribute("lang", "en", namespace: XMLNamespace.xml),
            ])
        XMLSerializer.writeStartTag(
            of: stream, prefix: "stream", declaring: [("stream", XMLNamespace.stream)],
            defaultNamespace: XMLNamespace.client, into: &header)
        write(header)
        headerSent = true
    }

    /// Ends the stream with a stream error and closes the connection (RFC 6120 §4.9).
    func terminate(_ condition: StreamErrorCondition, text: String? = nil) {
        guard !closing, let context else { return }
        closing = true
        if condition == .conflict { replaced = true }
        authTimer?.cancel()
        if !headerSent { sendHeader() }
        logger.info("stream error", metadata: ["condition": "\(condition)"])
        var bytes = condition.bytes(text: text)
        bytes.append(contentsOf: "</stream:stream>".utf8)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes))).whenComplete { _ in channel.close(promise: nil) }
    }

    private func clientClosedStream() {
        guard let context else { return }
        closing = true
        logger.info("client closed the stream")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "</stream:stream>"))).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Stream opening

    private func streamOpened(_ header: XElement) {
        guard header.name == "stream", header.namespace == XMLNamespace.stream else {
            terminate(.invalidNamespace, text: "expected <stream:stream> in \(XMLNamespace.stream)")
            return
        }
        if let to = header[attribute: "to"], to.lowercased() != core.domain {
            terminate(.hostUnknown, text: "this server serves \(core.domain), not \(to)")
            return
        }
        guard let version = header[attribute: "version"], version.hasPrefix("1.") else {
            terminate(.unsupportedVersion, text: "XMPP version 1.0 is required")
            return
        }
        // Without TLS, credentials and stanzas would cross the network in clear: loopback only.
        guard core.configuration.tls != nil || isLoopback else {
            terminate(.policyViolation, text: "this server offers no TLS; only loopback clients may connect")
            return
        }
        sendHeader()
        // Written with the conventional `stream:` prefix, as every server does, for clients that
        // look at prefixes rather than namespaces.
        var bytes = Array("<stream:features>".utf8)
        for child in features().elements { XMLSerializer.write(child, inheritedNamespace: XMLNamespace.client, into: &bytes) }
        bytes.append(contentsOf: "</stream:features>".utf8)
        write(bytes)
    }

    /// What a trace log may show of an element: SASL elements carry credentials (PLAIN's is the
    /// password itself, base64), so only their name and mechanism are logged.
    static func loggable(_ element: XElement) -> String {
        guard element.namespace == XMPPNamespace.sasl else { return "\(element)" }
        let mechanism = element[attribute: "mechanism"].map { " mechanism='\($0)'" } ?? ""
        return "<\(element.name)\(mechanism)> (SASL content not logged)"
    }

    private func received(_ element: XElement) {
        logger.trace("stanza in", metadata: ["xml": "\(Self.loggable(element))"])
        if case .bound = phase {} else {
            elementsBeforeBind += 1
            guard elementsBeforeBind <= core.configuration.limits.maxElementsBeforeBind else {
                logger.warning("too many elements before binding a resource; closing")
                terminate(.policyViolation, text: "too many elements before authentication and binding")
                return
            }
        }
        switch phase {
        case .negotiating: negotiate(element)
        case .authenticated(let user): bindResource(element, user: user)
        case .bound(let jid): routeFromClient(element, jid: jid)
        }
    }
}
