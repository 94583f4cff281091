import NIOConcurrencyHelpers
import VertebraXML

/// An XMPP server in memory: routes stanzas between ``InMemoryTransport``s by full JID, in
/// order per sender and recipient, as the embedded router does (stamped `from`; an IQ request
/// to an absent JID answered `service-unavailable`; server ping answered; directed presence
/// remembered and answered with `unavailable` when its sender goes away).
///
/// Tests use it to run coordinators and workers without sockets, and to break things on
/// purpose: ``cut(_:)`` a link, ``intercept(_:)`` stanzas, watch what was routed.
public final class InMemoryNetwork: Sendable {
    /// What an interceptor decides for one stanza.
    public enum Verdict: Sendable, Equatable {
        case route
        case drop
        /// The server refuses the stanza as the router refuses one too large to deliver: an IQ
        /// request is answered with `error` from the server.
        case refuse(StanzaError)
    }

    public typealias Interceptor = @Sendable (_ stanza: XElement, _ from: JID) -> Verdict

    private struct State {
        var endpoints: [JID: InMemoryTransport] = [:]
        var directedPresence: [JID: Set<JID>] = [:]
        var interceptors: [Int: Interceptor] = [:]
        var nextInterceptor = 0
        var routed = 0
    }

    /// The domain served (the part after `@`).
    public let domain: String
    private let state = NIOLockedValueBox(State())

    public init(domain: String = "localhost") {
        self.domain = domain
    }

    /// A transport logging in as `jid` (a full JID) on this network, with `clock` for its
    /// request timeouts; its stop waits up to `stopAnswerLimit` of real time for the answers
    /// to requests being handled.
    public func transport(
        _ jid: JID, clock: any RuntimeClock = SystemClock(), requestTimeout: Duration = .seconds(10), maxRequestsPerPeer: Int = 1024,
        stopAnswerLimit: Duration = .seconds(2)
    ) -> InMemoryTransport {
        InMemoryTransport(
            jid: jid, network: self, clock: clock, requestTimeout: requestTimeout, maxRequestsPerPeer: maxRequestsPerPeer,
            stopAnswerLimit: stopAnswerLimit)
    }

    /// Whether `jid` is connected.
    public func isConnected(_ jid: JID) -> Bool { state.withLockedValue { $0.endpoints[jid] != nil } }

    /// Stanzas routed so far (dropped ones not counted).
    public var routedCount: Int { state.withLockedValue { $0.routed } }

    /// Calls `interceptor` for every stanza before it is routed, until the returned id is
    /// passed to ``removeInterceptor(_:)``.
    @discardableResult
    public func intercept(_ interceptor: @escaping Interceptor) -> Int {
        state.withLockedValue { state in
            state.nextInterceptor += 1
            state.interceptors[state.nextInterceptor] = interceptor
            return state.nextInterceptor
        }
    }

    public func removeInterceptor(_ id: Int) { state.withLockedValue { _ = $0.interceptors.removeValue(forKey: id) } }

    /// Breaks `jid`'s link as a network failure would: it hears `disconnected`, its pending
    /// requests fail, and those it sent presence to hear `unavailable`.
    public func cut(_ jid: JID, reason: String = "the link was cut") {
        guard let endpoint = disconnect(jid) else { return }
        endpoint.linkLost(reason)
    }

    // MARK: - For transports

    /// Registers `endpoint`; a session already bound to its JID is replaced (and cut).
    func connect(_ endpoint: InMemoryTransport) {
        let replaced = state.withLockedValue { state -> InMemoryTransport? in
            let old = state.endpoints[endpoint.jid]
            state.endpoints[endpoint.jid] = endpoint
            return old === endpoint ? nil : old
        }
        replaced?.linkLost("another session took \(endpoint.jid)")
    }

    /// Unregisters `jid`; its directed-presence recipients hear `unavailable`. Returns the
    /// endpoint that was connected.
    @discardableResult
    func disconnect(_ jid: JID) -> InMemoryTransport? {
        let (endpoint, recipients) = state.withLockedValue { state -> (InMemoryTransport?, Set<JID>) in
            guard let endpoint = state.endpoints.removeValue(forKey: jid) else { return (nil, []) }
            return (endpoint, state.directedPresence.removeValue(forKey: jid) ?? [])
        }
        for recipient in recipients.sorted() {
            deliver(Presence.unavailable(to: recipient).setting(attribute: "from", to: jid.description), to: recipient)
        }
        return endpoint
    }

    /// Routes `stanza` from `sender`; throws `disconnected` when `sender` is not connected.
    func route(_ stanza: XElement, from sender: JID) throws {
        let stamped = stanza.setting(attribute: "from", to: sender.description)
        let (connected, interceptors) = state.withLockedValue { ($0.endpoints[sender] != nil, Array($0.interceptors.values)) }
        guard connected else { throw NatterError(.disconnected, "\(sender) is not connected") }
        for interceptor in interceptors {
            switch interceptor(stamped, sender) {
            case .route: continue
            case .drop: return
            case .refuse(let error): return refuse(stamped, error, from: sender)
            }
        }
        state.withLockedValue { $0.routed += 1 }
        guard let target = stanza.toJID, target.description != domain else { return answerAsServer(stamped, from: sender) }
        trackPresence(stanza, from: sender, to: target)
        if !deliver(stamped, to: target) { bounce(stamped, from: sender, to: target) }
    }

    @discardableResult
    private func deliver(_ stanza: XElement, to target: JID) -> Bool {
        guard let endpoint = state.withLockedValue({ $0.endpoints[target] }) else { return false }
        endpoint.enqueue(stanza)
        return true
    }

    private func trackPresence(_ stanza: XElement, from sender: JID, to target: JID) {
        guard StanzaKind(stanza) == .presence else { return }
        state.withLockedValue { state in
            if stanza[attribute: "type"] == nil {
                state.directedPresence[sender, default: []].insert(target)
            } else if stanza[attribute: "type"] == "unavailable" {
                state.directedPresence[sender]?.remove(target)
            }
        }
    }

    /// An IQ request to nobody is answered `service-unavailable` from the absent JID.
    private func bounce(_ stanza: XElement, from sender: JID, to target: JID) {
        guard let iq = IQ(stanza), iq.isRequest else { return }
        var answer = iq.error(.serviceUnavailable()).element
        answer = answer.setting(attribute: "from", to: target.description)
        deliver(answer.setting(attribute: "to", to: sender.description), to: sender)
    }

    /// Answered from the address it was sent to, as the router bounces what it will not deliver.
    private func refuse(_ stanza: XElement, _ error: StanzaError, from sender: JID) {
        guard let iq = IQ(stanza), iq.isRequest else { return }
        let answer = iq.error(error).element.setting(attribute: "from", to: stanza[attribute: "to"] ?? domain)
        deliver(answer.setting(attribute: "to", to: sender.description), to: sender)
    }

    /// The server answers ping; other requests to it get `service-unavailable`; broadcast
    /// presence goes nowhere (no rosters).
    private func answerAsServer(_ stanza: XElement, from sender: JID) {
        guard let iq = IQ(stanza), iq.isRequest else { return }
        let isPing = iq.payload?.name == "ping" && iq.payload?.namespace == XMPPNamespace.ping
        let answer = isPing ? iq.result() : iq.error(.serviceUnavailable())
        deliver(answer.element.setting(attribute: "from", to: domain).setting(attribute: "to", to: sender.description), to: sender)
    }
}
