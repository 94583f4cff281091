import VertebraXML

/// What the Vertebra runtime needs of an XMPP connection: send stanzas, wait for IQ answers,
/// answer IQ requests, receive messages and presence, and hear when the link comes and goes.
///
/// ``XMPPClient`` is the real one (a TCP stream to a server); ``InMemoryTransport`` joins
/// endpoints of an ``InMemoryNetwork`` without sockets, for fast deterministic tests.
public protocol StanzaTransport: Actor {
    /// The account (and resource) this transport logs in as.
    nonisolated var jid: JID { get }
    /// Connects; returns once logged in, or throws why not.
    func start() async throws
    /// Disconnects for good; pending requests fail with `shutDown`.
    func stop() async
    /// Whether the link is up.
    var isConnected: Bool { get }
    /// Link state changes (connected, disconnected, stopped), starting with `.connected` when
    /// the link is up already.
    func connectionEvents() -> AsyncStream<XMPPClient.ConnectionEvent>
    /// Answers IQ requests whose payload is `<name xmlns='namespace'>` with `responder`.
    func respondToIQ(namespace: String, name: String, _ responder: @escaping XMPPClient.IQResponder)
    /// Stanzas of `kind` from `sender` (full or bare JID; `nil`: anyone) no handler claimed.
    func exchange(_ kind: StanzaKind, from sender: JID?) -> AsyncStream<XElement>
    /// Sends a stanza without waiting; throws `disconnected` without a link.
    func send(_ stanza: XElement) throws
    /// Sends an IQ request and returns its `result` (see ``XMPPClient/sendAndWait(_:timeout:)``
    /// for the errors).
    func sendAndWait(_ request: IQ, timeout: Duration?) async throws -> IQ
}

extension StanzaTransport {
    /// Stanzas of `kind` from anyone that no handler claimed.
    public func exchange(_ kind: StanzaKind) -> AsyncStream<XElement> { exchange(kind, from: nil) }

    /// Sends an IQ request and waits for its answer within the transport's default timeout.
    public func sendAndWait(_ request: IQ) async throws -> IQ { try await sendAndWait(request, timeout: nil) }

    /// Sends presence: broadcast available (no `to`), or directed at `to`.
    public func sendPresence(to: JID? = nil) throws { try send(Presence.available(to: to)) }
}

extension XMPPClient: StanzaTransport {
    public nonisolated var jid: JID { configuration.jid }
}

/// Where the runtime reads the time and sleeps: the system's clock in production, a
/// ``ManualClock`` in tests (leases, retries and deadlines run without waiting).
public protocol RuntimeClock: Sendable {
    /// The current instant.
    var now: ContinuousClock.Instant { get }
    /// Returns at `deadline`; throws `CancellationError` when the task is cancelled first.
    func sleep(until deadline: ContinuousClock.Instant) async throws
    /// Calls `body` at `deadline` unless the returned timer is cancelled first (see
    /// ``RuntimeTimer``). The default sleeps in a task; ``SystemClock`` uses a dispatch timer.
    func schedule(at deadline: ContinuousClock.Instant, _ body: @escaping @Sendable () -> Void) -> RuntimeTimer
}

extension RuntimeClock {
    /// Returns after `duration`; throws `CancellationError` when the task is cancelled first.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now.advanced(by: duration))
    }
}

