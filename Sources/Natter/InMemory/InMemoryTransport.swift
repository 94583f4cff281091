import NIOConcurrencyHelpers
import VertebraXML

/// One endpoint of an ``InMemoryNetwork``: a ``StanzaTransport`` without sockets or XML
/// bytes, answering and dispatching exactly as ``XMPPClient`` does (IQ handlers by payload,
/// at most `maxRequestsPerPeer` requests in progress per sender, exchanges by sender, answers
/// matched by peer and id, `service-unavailable` for what nobody handles). Request timeouts
/// run on the injected clock.
///
/// After a ``InMemoryNetwork/cut(_:)`` the transport stays disconnected until ``reconnect()``.
public actor InMemoryTransport: StanzaTransport {
    public nonisolated let jid: JID
    private let network: InMemoryNetwork
    private let clock: any RuntimeClock
    private let requestTimeout: Duration
    private let maxRequestsPerPeer: Int
    /// Inbound stanzas, in the order the network routed them.
    private nonisolated let mailbox: AsyncStream<XElement>.Continuation
    private let inbound: AsyncStream<XElement>

    private var connected = false
    private var stopped = false
    private var receiver: Task<Void, Never>?
    private var pending = PendingRequests()
    private var iqHandlers: [PayloadKey: XMPPClient.IQResponder] = [:]
    private var requestsInProgress: [String: Int] = [:]
    private let answerDrain = AnswerDrain()
    private let stopAnswerLimit: Duration
    private var exchanges = Exchanges()
    private var eventContinuations: [Int: AsyncStream<XMPPClient.ConnectionEvent>.Continuation] = [:]
    private var counter = 0

    init(jid: JID, network: InMemoryNetwork, clock: any RuntimeClock, requestTimeout: Duration, maxRequestsPerPeer: Int, stopAnswerLimit: Duration) {
        self.stopAnswerLimit = stopAnswerLimit
        self.jid = jid
        self.network = network
        self.clock = clock
        self.requestTimeout = requestTimeout
        self.maxRequestsPerPeer = maxRequestsPerPeer
        (inbound, mailbox) = AsyncStream<XElement>.makeStream()
    }

    // MARK: - Lifecycle

    public func start() async throws {
        guard !stopped else { throw NatterError(.shutDown, "the transport was stopped") }
        guard receiver == nil else { throw NatterError(.configuration, "start() was already called on this transport") }
        let inbound = self.inbound
        receiver = Task { for await stanza in inbound { self.route(stanza) } }
        goOnline()
    }

    /// Logs in again after a cut.
    public func reconnect() {
        guard !stopped, !connected else { return }
        goOnline()
    }

    /// As ``XMPPClient/stop()``: requests being answered get their answers first (for up to
    /// `stopAnswerLimit` of real time: a test's manual clock may never move).
    public func stop() async {
        guard !stopped else { return }
        stopped = true
        await waitForAnswersInProgress(within: stopAnswerLimit)
        network.disconnect(jid)
        connected = false
        pending.failAll(NatterError(.shutDown, "the transport was stopped"))
        emit(.stopped)
        for continuation in eventContinuations.values { continuation.finish() }
        exchanges.finishAll()
        mailbox.finish()
        receiver?.cancel()
    }

    public var isConnected: Bool { connected }

    /// True once ``stop()`` began.
    var isStopping: Bool { stopped }

    public func connectionEvents() -> AsyncStream<XMPPClient.ConnectionEvent> {
        let (stream, continuation) = AsyncStream<XMPPClient.ConnectionEvent>.makeStream()
        counter += 1
        eventContinuations[counter] = continuation
        if connected { continuation.yield(.connected(jid, resumed: false)) }
        return stream
    }

    private func goOnline() {
        network.connect(self)
        connected = true
        emit(.connected(jid, resumed: false))
    }

    private func emit(_ event: XMPPClient.ConnectionEvent) {
        for continuation in eventContinuations.values { continuation.yield(event) }
    }

    /// Called by the network when the link breaks (a cut, or a newer session took the JID).
    nonisolated func linkLost(_ reason: String) {
        Task { await self.didDisconnect(reason) }
    }

    private func didDisconnect(_ reason: String) {
        guard connected else { return }
        connected = false
        emit(.disconnected(reason: reason))
        pending.failAll(NatterError(.disconnected, "the connection was lost before the answer arrived (\(reason))"))
    }

    // MARK: - Handlers and exchanges

    public func respondToIQ(namespace: String, name: String, _ responder: @escaping XMPPClient.IQResponder) {
        iqHandlers[PayloadKey(namespace: namespace, name: name)] = responder
    }

    public func exchange(_ kind: StanzaKind, from sender: JID?) -> AsyncStream<XElement> {
        exchanges.open(kind, from: sender)
    }

    // MARK: - Sending

    public func send(_ stanza: XElement) throws {
        guard connected else { throw NatterError(.disconnected, "\(jid) is not connected") }
        try network.route(stanza, from: jid)
    }

    public func sendAndWait(_ request: IQ, timeout: Duration?) async throws -> IQ {
        guard connected else { throw NatterError(.disconnected, "\(jid) is not connected") }
        var request = request
        if request.id.isEmpty {
            counter += 1
            request.id = "m\(counter)"
        }
        let limit = timeout ?? requestTimeout
        let key = PendingKey(peer: request.to?.description ?? "", id: request.id)
        guard !pending.isWaiting(key) else {
            throw NatterError(.configuration, "IQ id \(request.id) to \(key.peer) is already waiting for an answer")
        }
        let element = request.element
        let answer: IQ = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let clock = self.clock
                let deadline = clock.now.advanced(by: limit)
                let timer = Task {
                    guard (try? await clock.sleep(until: deadline)) != nil else { return }
                    self.expire(key, after: limit)
                }
                pending.add(key, PendingRequest(continuation: continuation, cancelTimer: { timer.cancel() }))
                do {
                    try network.route(element, from: jid)
                } catch {
                    pending.end(key, with: .failure(error))
                }
            }
        } onCancel: {
            Task { await self.cancel(key) }
        }
        if answer.type == .error {
            let error = answer.error ?? StanzaError(type: .cancel, condition: .undefinedCondition)
            throw NatterError(.stanzaError, "\(key.peer.isEmpty ? "the server" : key.peer) answered \(error)", stanzaError: error)
        }
        return answer
    }

    private func expire(_ key: PendingKey, after limit: Duration) { pending.expire(key, after: limit) }

    private func cancel(_ key: PendingKey) { pending.cancel(key) }

    // MARK: - Inbound

    /// Called by the network, in routing order.
    nonisolated func enqueue(_ stanza: XElement) {
        mailbox.yield(stanza)
    }

    private func route(_ element: XElement) {
        guard connected else { return }
        switch StanzaKind(element) {
        case .iq?: routeIQ(element)
        case let kind?: _ = deliverToExchange(element, kind: kind)
        case nil: break
        }
    }

    private func routeIQ(_ element: XElement) {
        guard let iq = IQ(element) else { return }
        guard iq.isRequest else { return resolve(iq) }
        if let payload = iq.payload, payload.name == "ping", payload.namespace == XMPPNamespace.ping, iq.type == .get {
            reply(iq.result())
        } else if stopped {
            reply(iq.error(StanzaError(type: .cancel, condition: .serviceUnavailable, text: "this client is stopping")))
        } else if let payload = iq.payload, let handler = iqHandlers[PayloadKey(namespace: payload.namespace, name: payload.name)] {
            let peer = iq.from?.description ?? ""
            guard requestsInProgress[peer, default: 0] < maxRequestsPerPeer else {
                return reply(iq.error(StanzaError(
                    type: .wait, condition: .resourceConstraint, text: "\(maxRequestsPerPeer) requests from \(peer) are already in progress")))
            }
            requestsInProgress[peer, default: 0] += 1
            Task {
                await self.answer(iq, with: handler)
                self.requestEnded(peer)
            }
        } else if !deliverToExchange(element, kind: .iq) {
            reply(iq.error(.serviceUnavailable()))
        }
    }

    private func reply(_ answer: IQ) {
        try? network.route(answer.element, from: jid)
    }

    private func requestEnded(_ peer: String) {
        let left = requestsInProgress[peer, default: 1] - 1
        requestsInProgress[peer] = left > 0 ? left : nil
        if requestsInProgress.isEmpty { answerDrain.release() }
    }

    /// Waits until no request is being answered, or `limit` passed.
    private func waitForAnswersInProgress(within limit: Duration) async {
        guard connected, !requestsInProgress.isEmpty else { return }
        await answerDrain.wait(within: limit)
    }

    private func answer(_ request: IQ, with handler: XMPPClient.IQResponder) async {
        let (answer, afterwards) = await IQAnswering.answer(request, with: handler)
        if connected { reply(answer) }
        if let afterwards { Task { await afterwards() } }
    }

    private func resolve(_ answer: IQ) {
        _ = pending.resolve(answer, domain: jid.domain, me: jid.bare)
    }

    private func deliverToExchange(_ element: XElement, kind: StanzaKind) -> Bool {
        exchanges.offer(element, kind: kind)
    }
}
