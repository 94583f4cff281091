import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import VertebraXML

/// An XMPP client: logs in, keeps the connection alive (reconnecting with backoff), routes
/// incoming stanzas to handlers and exchanges, and matches IQ answers to requests by
/// `(peer, id)`.
///
/// ```swift
/// let client = XMPPClient(configuration: config, logger: logger)
/// await client.handleIQ(namespace: "urn:example", name: "job") { request in
///     XElement("done", namespace: "urn:example")            // the result's payload
/// }
/// try await client.start()
/// let answer = try await client.sendAndWait(IQ(type: .get, id: "", to: peer, payload: query))
/// ```
///
/// Incoming IQ `get`/`set` requests go to the handler registered for their payload, else to an
/// exchange for (iq, sender), else to the default exchange; with none of those the client answers
/// `service-unavailable`, so a request is never left unanswered.
public actor XMPPClient {
    /// Answers an IQ request: return the result's payload (or `nil` for an empty result), or
    /// throw a ``StanzaError`` to answer with that error. Other errors answer
    /// `internal-server-error`.
    public typealias IQHandler = @Sendable (IQ) async throws -> XElement?

    /// Like ``IQHandler``, but the answer may carry work to start once the answer was written
    /// (e.g. a protocol whose next request must not overtake the answer).
    public typealias IQResponder = @Sendable (IQ) async throws -> IQAnswer

    /// Connection state changes, for callers that want to watch.
    public enum ConnectionEvent: Sendable, Hashable {
        /// Logged in (or resumed) as this JID.
        case connected(JID, resumed: Bool)
        /// The connection was lost or could not be made; reconnection follows if enabled.
        case disconnected(reason: String)
        /// Stopped for good: by ``stop()``, or the client gave up (another session took its
        /// resource, or the link was lost with reconnection off).
        case stopped
    }

    /// The configuration the client was made with.
    public nonisolated let configuration: ClientConfiguration
    private let logger: Logger
    private let inspector: (any StanzaInspector)?
    private let linkFactory: any LinkFactory
    /// The event loop of the connection; the actor runs on it too, so inbound stanzas reach the
    /// actor without a thread switch.
    private nonisolated let eventLoop: any EventLoop

    /// Runs the actor on its connection's event loop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        eventLoop.executor.asUnownedSerialExecutor()
    }

    private var link: LinkInfo?
    private var connectionTask: Task<Void, Never>?
    private var keepaliveTask: Task<Void, Never>?
    private var stopped = false
    /// Why the client stopped reconnecting by itself (another session took its resource, or
    /// reconnection is off): requests fail with it at once.
    private var gaveUp: NatterError?
    private var firstConnection: CheckedContinuation<Void, any Error>?
    private var connectionWaiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    private var pending = PendingRequests()
    private var iqHandlers: [PayloadKey: IQResponder] = [:]
    /// Requests being answered, by sender (bounded by `maxRequestsPerPeer`).
    private var requestsInProgress: [String: Int] = [:]
    /// ``stop()`` waiting for the requests in progress to be answered.
    private let answerDrain = AnswerDrain()
    private var exchanges = Exchanges()
    private var eventContinuations: [Int: AsyncStream<ConnectionEvent>.Continuation] = [:]
    private var counter = 0
    private var lastInbound = ContinuousClock.now
    private var management = StreamManagementState()
    private var lastBoundJID: JID?

    /// Makes a client; nothing happens until ``start()``.
    public init(
        configuration: ClientConfiguration, logger: Logger = Logger(label: "natter"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        inspector: (any StanzaInspector)? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.inspector = inspector
        let eventLoop = eventLoopGroup.next()
        self.eventLoop = eventLoop
        self.linkFactory = Negotiator(configuration: configuration, group: eventLoop, logger: logger)
    }

    /// Makes a client whose links come from `linkFactory` (tests drive it without sockets).
    init(configuration: ClientConfiguration, logger: Logger, linkFactory: any LinkFactory, inspector: (any StanzaInspector)? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.inspector = inspector
        self.linkFactory = linkFactory
        self.eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    }

    /// `vertebra_stanzas_total{direction}`: stanzas this process's clients sent and received.
    private let stanzasIn = Counter(label: "vertebra_stanzas_total", dimensions: [("direction", "in")])
    private let stanzasOut = Counter(label: "vertebra_stanzas_total", dimensions: [("direction", "out")])

    // MARK: - Lifecycle

    /// Connects and logs in. Returns once the first login succeeded; after that the client
    /// keeps the connection up in the background. Throws if the configuration is invalid or the
    /// first login fails (wrong password, TLS failure, unreachable server).
    public func start() async throws {
        try configuration.validate()
        guard connectionTask == nil, !stopped else {
            throw NatterError(.configuration, "start() was already called on this client")
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            firstConnection = continuation
            connectionTask = Task { await self.maintainConnection() }
        }
    }

    /// Closes the stream and stops reconnecting. Requests from peers still being answered get
    /// their answers first (for up to ``ClientConfiguration/stopAnswerLimit``), so a peer's
    /// last message is not left unanswered when a short-lived client stops right after it;
    /// requests arriving meanwhile are refused (`service-unavailable`). Our pending requests
    /// fail with `shutDown`.
    public func stop() async {
        guard !stopped else { return }
        stopped = true
        await waitForAnswersInProgress(within: configuration.stopAnswerLimit)
        if let channel = link?.channel {
            try? await channel.writeAndFlush(ByteBuffer(string: "</stream:stream>")).get()
            try? await channel.close().get()
        }
        connectionTask?.cancel()
        keepaliveTask?.cancel()
        await connectionTask?.value
        failAll(NatterError(.shutDown, "the client was stopped"))
        emit(.stopped)
        for continuation in eventContinuations.values { continuation.finish() }
        exchanges.finishAll()
    }

    /// The full JID the server bound, while connected.
    public var boundJID: JID? { link?.boundJID }

    /// Whether the stream is up.
    public var isConnected: Bool { link != nil }

    /// What the current connection negotiated, while connected.
    public var connection: ConnectionInfo? {
        link.map {
            ConnectionInfo(
                jid: $0.boundJID, encrypted: $0.encrypted, saslMechanism: $0.mechanism,
                streamManagement: $0.streamManagementEnabled)
        }
    }

    /// Closes the TCP connection abruptly, without ending the stream, as a network failure
    /// would (tests of reconnection and stream resumption).
    func simulateConnectionLoss() {
        link?.channel.close(promise: nil)
    }

    /// A stream of connection state changes.
    public func connectionEvents() -> AsyncStream<ConnectionEvent> {
        let (stream, continuation) = AsyncStream<ConnectionEvent>.makeStream()
        let key = nextCounter()
        eventContinuations[key] = continuation
        continuation.onTermination = { _ in Task { await self.removeEventContinuation(key) } }
        if let jid = link?.boundJID { continuation.yield(.connected(jid, resumed: false)) }
        return stream
    }

    private func removeEventContinuation(_ key: Int) { eventContinuations[key] = nil }

    private func emit(_ event: ConnectionEvent) {
        for continuation in eventContinuations.values { continuation.yield(event) }
    }

    // MARK: - Handlers and exchanges

    /// Answers IQ requests whose payload is `<name xmlns='namespace'>` with `handler`.
    /// Registrations survive reconnections.
    public func handleIQ(namespace: String, name: String, _ handler: @escaping IQHandler) {
        iqHandlers[PayloadKey(namespace: namespace, name: name)] = { IQAnswer(payload: try await handler($0)) }
    }

    /// Answers IQ requests whose payload is `<name xmlns='namespace'>` with `responder`; the
    /// answer's `afterwards` work starts only after the answer was handed to the connection.
    public func respondToIQ(namespace: String, name: String, _ responder: @escaping IQResponder) {
        iqHandlers[PayloadKey(namespace: namespace, name: name)] = responder
    }

    /// Stanzas of `kind` from `sender` (a full JID, or a bare JID for all its resources; `nil`
    /// for anyone), not claimed by an IQ handler. One stream per key; asking again replaces it.
    public func exchange(_ kind: StanzaKind, from sender: JID? = nil) -> AsyncStream<XElement> {
        exchanges.open(kind, from: sender)
    }

    /// Every stanza no handler or exchange claimed.
    public func defaultExchange() -> AsyncStream<XElement> {
        exchanges.openDefault()
    }

    // MARK: - Sending

    /// Sends a stanza without waiting for anything (fire and forget). Throws `disconnected`
    /// when there is no connection.
    public func send(_ stanza: XElement) throws {
        guard link != nil else {
            throw NatterError(.disconnected, "not connected to \(configuration.host):\(configuration.port)")
        }
        transmit(stanza)
    }

    /// Sends an IQ request and returns its `result`, matched by `(peer, id)`. An empty `id` is
    /// replaced by a unique one. Throws `stanzaError` for an `error` answer, `timeout` when no
    /// answer comes in time, `disconnected` when the connection is lost (or is down and the
    /// outage policy is `.fail`), and `CancellationError` when the calling task is cancelled.
    public func sendAndWait(_ request: IQ, timeout: Duration? = nil) async throws -> IQ {
        var request = request
        if request.id.isEmpty { request.id = makeID() }
        let limit = timeout ?? configuration.requestTimeout
        let deadline = ContinuousClock.now.advanced(by: limit)
        try await waitForConnection(until: deadline)
        let key = PendingKey(peer: request.to?.description ?? "", id: request.id)
        guard !pending.isWaiting(key) else {
            throw NatterError(.configuration, "IQ id \(request.id) to \(key.peer) is already waiting for an answer")
        }
        let answer: IQ = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // A timer on the connection's event loop, where this actor runs: no task to start,
                // and cancelling it when the answer comes costs nothing.
                let timer = eventLoop.scheduleTask(in: max(.zero, deadline - .now).timeAmount) { [weak self] in
                    self?.assumeIsolated { $0.expire(key, after: limit) }
                }
                pending.add(key, PendingRequest(continuation: continuation, cancelTimer: { timer.cancel() }))
                transmit(request.element)
            }
        } onCancel: {
            Task { await self.cancelPending(key) }
        }
        if answer.type == .error {
            let error = answer.error ?? StanzaError(type: .cancel, condition: .undefinedCondition)
            throw NatterError(.stanzaError, "\(key.peer.isEmpty ? "the server" : key.peer) answered \(error)", stanzaError: error)
        }
        return answer
    }

    /// Sends presence: broadcast available (no `to`), or directed at `to`.
    public func sendPresence(to: JID? = nil) throws {
        try send(Presence.available(to: to))
    }

    private func makeID() -> String {
        "n\(nextCounter())"
    }

    private func nextCounter() -> Int {
        counter += 1
        return counter
    }

    private func expire(_ key: PendingKey, after limit: Duration) {
        pending.expire(key, after: limit)
    }

    private func cancelPending(_ key: PendingKey) {
        pending.cancel(key)
    }

    private func failAll(_ error: NatterError) {
        pending.failAll(error)
        let waiters = connectionWaiters
        connectionWaiters.removeAll()
        for waiter in waiters.values { waiter.resume(throwing: error) }
    }

    /// Returns when connected; waits (within `deadline`) or fails by the outage policy.
    private func waitForConnection(until deadline: ContinuousClock.Instant) async throws {
        if link != nil { return }
        if stopped { throw NatterError(.shutDown, "the client was stopped") }
        if let gaveUp { throw gaveUp }
        guard configuration.whileDisconnected == .wait, connectionTask != nil else {
            throw NatterError(.disconnected, "not connected to \(configuration.host):\(configuration.port)")
        }
        let key = nextCounter()
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            await self?.expireWaiter(key)
        }
        defer { timer.cancel() }
        // A cancelled request stops waiting at once (a stopping worker's last advertisement must
        // not hold its shutdown until the request's deadline).
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { connectionWaiters[key] = $0 }
        } onCancel: {
            Task { await self.cancelWaiter(key) }
        }
    }

    private func expireWaiter(_ key: Int) {
        connectionWaiters.removeValue(forKey: key)?.resume(
            throwing: NatterError(.disconnected, "still not connected to \(configuration.host):\(configuration.port) when the request timed out"))
    }

    private func cancelWaiter(_ key: Int) {
        connectionWaiters.removeValue(forKey: key)?.resume(throwing: CancellationError())
    }

    // MARK: - Writing

    /// Passes an outbound stanza through the inspector and writes it.
    private func transmit(_ stanza: XElement) {
        let verdict = inspector?.inspect(stanza, direction: .outbound, peer: stanza.toJID) ?? .route
        switch verdict {
        case .route: write(stanza)
        case .drop: logger.debug("inspector dropped outbound stanza", metadata: ["id": "\(stanza[attribute: "id"] ?? "")"])
        case .replace(let other): write(other)
        case .repeat(let times): for _ in 0...max(0, times) { write(stanza) }
        case .delay(let pause):
            Task { [weak self] in
                try? await Task.sleep(for: pause)
                await self?.write(stanza)
            }
        }
    }

    private func write(_ stanza: XElement) {
        guard let channel = link?.channel else { return }
        stanzasOut.increment()
        if management.enabled, StanzaKind(stanza) != nil {
            management.recordOutbound(stanza)
            if management.unacknowledged.count % 32 == 0 { writeRaw(StreamManagementState.request, on: channel) }
        }
        writeRaw(stanza, on: channel)
    }

    private func writeRaw(_ element: XElement, on channel: any Channel) {
        let bytes = element.serializedBytes(inheritedNamespace: XMLNamespace.client)
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    // MARK: - Connection loop

    private func maintainConnection() async {
        var finalReason: NatterError?
        var attempt = 0
        var random = SystemRandomNumberGenerator()
        while !stopped && !Task.isCancelled {
            do {
                let ticket = management.ticket(for: lastBoundJID)
                let (info, reader) = try await linkFactory.connect(resuming: ticket)
                attempt = 0
                didConnect(info)
                try await receive(from: reader)
                didDisconnect(reason: "the server closed the connection")
            } catch {
                let reason = Negotiator.describe(error)
                if let first = firstConnection {
                    firstConnection = nil
                    stopped = true
                    first.resume(throwing: reason)
                    failAll(reason)
                    return
                }
                didDisconnect(reason: reason.description)
                if reason.code == .sessionReplaced {
                    logger.error("another session took this JID and resource; not reconnecting", metadata: ["jid": "\(lastBoundJID?.description ?? "")"])
                    finalReason = reason
                    break
                }
            }
            guard configuration.reconnect.enabled, !stopped else { break }
            let delay = configuration.reconnect.delay(forAttempt: attempt, using: &random)
            attempt += 1
            logger.info("reconnecting", metadata: ["in": "\(delay)", "attempt": "\(attempt)"])
            try? await Task.sleep(for: delay)
        }
        guard !stopped else { return }
        let reason = finalReason ?? NatterError(.disconnected, "the connection was lost and reconnection is disabled")
        gaveUp = reason
        failAll(reason)
        emit(.stopped)
    }

    private func didConnect(_ info: LinkInfo) {
        let resumed = info.resumedServerCount != nil
        let jid = resumed ? (lastBoundJID ?? info.boundJID) : info.boundJID
        link = LinkInfo(
            channel: info.channel, boundJID: jid, encrypted: info.encrypted, mechanism: info.mechanism,
            streamManagementID: info.streamManagementID, streamManagementEnabled: info.streamManagementEnabled,
            resumedServerCount: info.resumedServerCount)
        lastBoundJID = jid
        lastInbound = .now
        logger.info(
            "connected",
            metadata: ["jid": "\(jid)", "tls": "\(info.encrypted)", "sasl": "\(info.mechanism)", "sm": "\(info.streamManagementEnabled)", "resumed": "\(resumed)"])
        if let count = info.resumedServerCount {
            for stanza in management.resumed(serverCount: count) { writeRaw(stanza, on: info.channel) }
        } else {
            management = StreamManagementState(enabled: info.streamManagementEnabled, id: info.streamManagementID)
            failAll(NatterError(.disconnected, "the connection was lost before the answer arrived"))
        }
        startKeepalive()
        emit(.connected(jid, resumed: resumed))
        if let first = firstConnection {
            firstConnection = nil
            first.resume()
        }
        let waiters = connectionWaiters
        connectionWaiters.removeAll()
        for waiter in waiters.values { waiter.resume() }
    }

    private func didDisconnect(reason: String) {
        keepaliveTask?.cancel()
        guard link != nil || !stopped else { return }
        link = nil
        if stopped {
            logger.debug("disconnected after stop", metadata: ["reason": "\(reason)"])
        } else {
            logger.warning("disconnected", metadata: ["reason": "\(reason)"])
        }
        emit(.disconnected(reason: reason))
        if management.id == nil {
            pending.failAll(NatterError(.disconnected, "the connection was lost before the answer arrived (\(reason))"))
        }
    }

    private func receive(from reader: StreamReader) async throws {
        while let event = try await reader.next() {
            switch event {
            case .stanza(let element): try handleInbound(element)
            case .streamClosed: return
            case .streamOpened: throw NatterError(.protocolViolation, "the server opened a second stream")
            }
        }
    }

    // MARK: - Inbound

    private func handleInbound(_ element: XElement) throws {
        lastInbound = .now
        if element.namespace == XMPPNamespace.streamManagement {
            handleStreamManagement(element)
            return
        }
        if element.name == "error", element.namespace == XMLNamespace.stream {
            throw StreamErrorReport(element).error
        }
        if management.enabled, StanzaKind(element) != nil { management.handledInbound += 1 }
        stanzasIn.increment()
        let verdict = inspector?.inspect(element, direction: .inbound, peer: element.fromJID) ?? .route
        switch verdict {
        case .route: route(element)
        case .drop: logger.debug("inspector dropped inbound stanza", metadata: ["id": "\(element[attribute: "id"] ?? "")"])
        case .replace(let other): route(other)
        case .repeat(let times): for _ in 0...max(0, times) { route(element) }
        case .delay(let pause):
            Task { [weak self] in
                try? await Task.sleep(for: pause)
                await self?.route(element)
            }
        }
    }

    private func handleStreamManagement(_ element: XElement) {
        guard let channel = link?.channel else { return }
        switch element.name {
        case "r": writeRaw(management.answer, on: channel)
        case "a": management.acknowledge(element[attribute: "h"].flatMap(Int.init))
        default: logger.debug("unexpected stream management element", metadata: ["name": "\(element.name)"])
        }
    }

    private func route(_ element: XElement) {
        switch StanzaKind(element) {
        case .iq?: routeIQ(element)
        case let kind?: deliver(element, kind: kind)
        case nil: logger.debug("ignoring unknown top-level element", metadata: ["name": "\(element.name)"])
        }
    }

    private func routeIQ(_ element: XElement) {
        guard let iq = IQ(element) else {
            answerMalformed(element)
            return
        }
        guard iq.isRequest else {
            resolve(iq)
            return
        }
        if let payload = iq.payload, payload.name == "ping", payload.namespace == XMPPNamespace.ping, iq.type == .get {
            transmit(iq.result().element)
        } else if stopped {
            transmit(iq.error(StanzaError(type: .cancel, condition: .serviceUnavailable, text: "this client is stopping")).element)
        } else if let payload = iq.payload, let handler = iqHandlers[PayloadKey(namespace: payload.namespace, name: payload.name)] {
            let peer = iq.from?.description ?? ""
            guard requestsInProgress[peer, default: 0] < configuration.maxRequestsPerPeer else {
                transmit(iq.error(StanzaError(
                    type: .wait, condition: .resourceConstraint,
                    text: "\(configuration.maxRequestsPerPeer) requests from \(peer) are already in progress")).element)
                return
            }
            requestsInProgress[peer, default: 0] += 1
            Task {
                await self.answer(iq, with: handler)
                self.requestEnded(peer)
            }
        } else if !deliverToExchange(element, kind: .iq) {
            transmit(iq.error(.serviceUnavailable()).element)
        }
    }

    private func requestEnded(_ peer: String) {
        let left = requestsInProgress[peer, default: 1] - 1
        requestsInProgress[peer] = left > 0 ? left : nil
        if requestsInProgress.isEmpty { answerDrain.release() }
    }

    /// Waits until no request is being answered, or `limit` passed (a handler may never end).
    private func waitForAnswersInProgress(within limit: Duration) async {
        guard link != nil, !requestsInProgress.isEmpty else { return }
        await answerDrain.wait(within: limit)
    }

    /// True once ``stop()`` began.
    var isStopping: Bool { stopped }

    private func answer(_ request: IQ, with handler: IQResponder) async {
        let (reply, afterwards) = await IQAnswering.answer(request, with: handler)
        if link != nil { transmit(reply.element) }
        if let afterwards { Task { await afterwards() } }
    }

    /// An IQ without id or with a bad type: answered `bad-request` when it can be answered.
    private func answerMalformed(_ element: XElement) {
        guard let id = element[attribute: "id"], let type = element[attribute: "type"], type == "get" || type == "set" else {
            logger.debug("dropping malformed IQ")
            return
        }
        var attributes = [XAttribute("type", "error"), XAttribute("id", id)]
        if let from = element[attribute: "from"] { attributes.append(XAttribute("to", from)) }
        transmit(XElement("iq", namespace: XMLNamespace.client, attributes: attributes, children: [.element(StanzaError.badRequest("malformed IQ").element)]))
    }

    private func resolve(_ answer: IQ) {
        guard pending.resolve(answer, domain: configuration.jid.domain, me: link?.boundJID.bare) else {
            logger.debug("answer matches no request (late or unknown)", metadata: ["id": "\(answer.id)", "from": "\(answer.from?.description ?? "")"])
            return
        }
    }

    private func deliver(_ element: XElement, kind: StanzaKind) {
        if !deliverToExchange(element, kind: kind) {
            logger.trace("unclaimed stanza", metadata: ["kind": "\(kind.rawValue)"])
        }
    }

    /// Offers `element` to the exchanges, most specific first; `true` when one took it.
    private func deliverToExchange(_ element: XElement, kind: StanzaKind) -> Bool {
        exchanges.offer(element, kind: kind)
    }

    // MARK: - Keepalive

    private func startKeepalive() {
        keepaliveTask?.cancel()
        guard let interval = configuration.pingInterval else { return }
        keepaliveTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval / 2)
                guard !Task.isCancelled, let self else { return }
                await self.pingIfIdle(interval)
            }
        }
    }

    private func pingIfIdle(_ interval: Duration) async {
        guard let channel = link?.channel, ContinuousClock.now - lastInbound >= interval else { return }
        if management.enabled { writeRaw(StreamManagementState.request, on: channel) }
        let ping = IQ(type: .get, id: makeID(), to: JID(configuration.jid.domain), payload: XElement("ping", namespace: XMPPNamespace.ping))
        do {
            _ = try await sendAndWait(ping, timeout: configuration.pingTimeout)
        } catch let error as NatterError where error.code == .timeout {
            logger.warning("keepalive ping unanswered; closing the link to reconnect")
            channel.close(promise: nil)
        } catch {
            logger.debug("keepalive ping failed", metadata: ["error": "\(error)"])
        }
    }
}

/// What an ``XMPPClient/IQResponder`` answers: the result's payload and work to start after it.
public struct IQAnswer: Sendable {
    /// The payload of the `result` (nil for an empty one).
    public var payload: XElement?
    /// Started once the answer was written.
    public var afterwards: (@Sendable () async -> Void)?

    public init(payload: XElement? = nil, afterwards: (@Sendable () async -> Void)? = nil) {
        self.payload = payload
        self.afterwards = afterwards
    }
}

/// What a connection negotiated.
public struct ConnectionInfo: Sendable, Hashable {
    /// The bound full JID.
    public let jid: JID
    /// Whether STARTTLS is in force.
    public let encrypted: Bool
    /// The SASL mechanism used (`SCRAM-SHA-256`, `SCRAM-SHA-1`, `PLAIN`).
    public let saslMechanism: String
    /// Whether XEP-0198 stream management is enabled.
    public let streamManagement: Bool
}

// MARK: - Bookkeeping types

struct PendingKey: Hashable, Sendable {
    let peer: String
    let id: String
}

struct PendingRequest {
    let continuation: CheckedContinuation<IQ, any Error>
    /// Stops the request's timeout.
    let cancelTimer: () -> Void
}

struct PayloadKey: Hashable, Sendable {
    let namespace: String
    let name: String
}

struct ExchangeKey: Hashable, Sendable {
    let kind: StanzaKind
    let sender: JID?
}
