/// Bounds the parser enforces so that hostile input costs bounded memory.
///
/// The defaults suit XMPP stanzas carrying job payloads; raise `maxStanzaBytes` for agents that
/// move large payloads. A violation is an ``XMLParseError`` with the matching code.
public struct XMLParserLimits: Sendable, Hashable {
    /// Largest stanza (or standalone document), in bytes of input. Default 1 MiB.
    public var maxStanzaBytes: Int
    /// Deepest element nesting, counting the stream element. Default 64.
    public var maxDepth: Int
    /// Most attributes on one element. Default 64.
    public var maxAttributes: Int
    /// Whether comments are skipped (`true`) or refused as restricted XML (`false`).
    /// XMPP streams refuse them (RFC 6120 §11.1); files may contain them.
    public var allowsComments: Bool

    /// Makes limits; every value must be positive.
    public init(
        maxStanzaBytes: Int = 1 << 20, maxDepth: Int = 64, maxAttributes: Int = 64,
        allowsComments: Bool = false
    ) {
        self.maxStanzaBytes = max(1, maxStanzaBytes)
        self.maxDepth = max(1, maxDepth)
        self.maxAttributes = max(0, maxAttributes)
        self.allowsComments = allowsComments
    }

    /// Limits for XMPP streams.
    public static let stream = XMLParserLimits()
    /// Limits for standalone documents such as payload files: 16 MiB, comments allowed.
    public static let document = XMLParserLimits(maxStanzaBytes: 16 << 20, allowsComments: true)
}
