/// What a ``XMLStreamParser`` reports as an XMPP stream arrives.
public enum XMLStreamEvent: Sendable, Hashable {
    /// The stream's root element opened: its name, namespace and attributes (no children).
    case streamOpened(XElement)
    /// A complete top-level child of the stream (a stanza, or `stream:features` and the like).
    case stanza(XElement)
    /// The stream's root element closed (`</stream:stream>`).
    case streamClosed
}
