import VertebraXML

/// Which way a stanza is going.
public enum StanzaDirection: String, Sendable, Hashable {
    case inbound, outbound
}

/// What to do with one stanza.
public enum InspectorVerdict: Sendable, Hashable {
    /// Let it through unchanged.
    case route
    /// Lose it.
    case drop
    /// Let this other stanza through instead.
    case replace(XElement)
    /// Let it through after a pause (later stanzas may overtake it).
    case delay(Duration)
    /// Let it through, then `times` more copies.
    case `repeat`(times: Int)
}

/// The fuzzing engine's hook: sees every inbound and outbound stanza of a client and decides
/// its fate. Used for chaos tests; production clients have none.
///
/// Called on the client's actor for every stanza, so it must be quick and must not block.
public protocol StanzaInspector: Sendable {
    /// Decides what happens to `stanza`, going `direction`, to or from `peer`.
    func inspect(_ stanza: XElement, direction: StanzaDirection, peer: JID?) -> InspectorVerdict
}
