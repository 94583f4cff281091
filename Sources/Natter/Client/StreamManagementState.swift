import VertebraXML

/// XEP-0198 bookkeeping: stanzas handled in each direction, and our stanzas the server has not
/// acknowledged yet (re-sent after a resumption).
///
/// An acknowledgement only says the server received a stanza, not that the peer answered it:
/// IQ timeouts stay in force regardless.
struct StreamManagementState {
    var enabled = false
    /// The id to resume with, when the server allows resumption.
    var id: String?
    /// Stanzas received on this stream (the `h` we report).
    var handledInbound = 0
    /// Stanzas sent on this stream.
    private(set) var sentOutbound = 0
    /// Sent and not yet acknowledged, oldest first, with their sequence numbers.
    private(set) var unacknowledged: [(sequence: Int, stanza: XElement)] = []

    /// Most stanzas kept for re-sending; beyond this the oldest are forgotten (a resumption would
    /// then lose them, so the keepalive asks for acknowledgements well before).
    static let capacity = 10_000

    static let request = XElement("r", namespace: XMPPNamespace.streamManagement)

    init(enabled: Bool = false, id: String? = nil) {
        self.enabled = enabled
        self.id = id
    }

    var answer: XElement {
        XElement("a", namespace: XMPPNamespace.streamManagement, attributes: [XAttribute("h", String(handledInbound))])
    }

    func ticket(for jid: JID?) -> ResumptionTicket? {
        guard enabled, let id, jid != nil else { return nil }
        return ResumptionTicket(id: id, handledInbound: handledInbound)
    }

    mutating func recordOutbound(_ stanza: XElement) {
        sentOutbound += 1
        unacknowledged.append((sentOutbound, stanza))
        if unacknowledged.count > StreamManagementState.capacity { unacknowledged.removeFirst() }
    }

    /// The server says it has handled `count` of our stanzas (counted modulo 2^32).
    mutating func acknowledge(_ count: Int?) {
        guard let count else { return }
        unacknowledged.removeAll { UInt32(truncatingIfNeeded: $0.sequence) <= UInt32(truncatingIfNeeded: count) }
    }

    /// After a resumption: what to send again.
    mutating func resumed(serverCount: Int) -> [XElement] {
        acknowledge(serverCount)
        return unacknowledged.map(\.stanza)
    }
}
