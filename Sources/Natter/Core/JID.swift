/// An XMPP address: `local@domain/resource`, with the local part and resource optional.
///
/// Parsing is strict enough to reject what would confuse routing (empty parts, a second `@`
/// before the `/`, over-long parts) and lenient about case: the local part and domain compare
/// case-insensitively (lowercased), the resource exactly (RFC 7622, without full PRECIS).
public struct JID: Sendable, Hashable, CustomStringConvertible, Comparable {
    /// The local part (`worker` in `worker@host/r`), or `nil` for a server address.
    public let local: String?
    /// The domain, lowercased.
    public let domain: String
    /// The resource, or `nil` for a bare JID.
    public let resource: String?

    /// The canonical text form, `local@domain/resource` (computed once).
    public let description: String

    /// Parses `text`; `nil` when it is not a valid JID. Works on UTF-8 bytes: JIDs are parsed
    /// for every stanza, so this must be cheap.
    public init?(_ text: String) {
        let utf8 = text.utf8
        let slash = utf8.firstIndex(of: UInt8(ascii: "/"))
        let bareEnd = slash ?? text.endIndex
        let at = utf8[..<bareEnd].firstIndex(of: UInt8(ascii: "@"))
        let local = at.map { String(text[..<$0]) }
        let domainStart = at.map { utf8.index(after: $0) } ?? text.startIndex
        let domain = String(text[domainStart..<bareEnd])
        let resource = slash.map { String(text[utf8.index(after: $0)...]) }
        self.init(local: local, domain: domain, resource: resource)
    }

    /// Makes a JID from its parts; `nil` when a part is empty, too long or malformed.
    public init?(local: String?, domain: String, resource: String? = nil) {
        guard JID.isValidDomain(domain) else { return nil }
        if let local, local.isEmpty || local.utf8.count > 1023 || local.utf8.contains(where: JID.isForbiddenInLocal)
            || JID.hasInvisibleScalar(local, allowingSpaces: false)
        {
            return nil
        }
        if let resource, resource.isEmpty || resource.utf8.count > 1023 || resource.utf8.contains(where: JID.isControl)
            || JID.hasInvisibleScalar(resource, allowingSpaces: true)
        {
            return nil
        }
        self.init(unchecked: local.map(JID.caseFolded), domain: JID.caseFolded(domain), resource: resource)
    }

    private static func isForbiddenInLocal(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "@"), UInt8(ascii: "/"), UInt8(ascii: "\""), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: ":"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: " "):
            return true
        default:
            return isControl(byte)
        }
    }

    /// ASCII control characters: no part of a JID may hold them (RFC 7622's PRECIS classes).
    private static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

    /// Whether `text` holds a character beyond ASCII that is a control, invisible (format, such
    /// as a zero-width space) or, unless allowed, a space: such a name looks like another one.
    private static func hasInvisibleScalar(_ text: String, allowingSpaces: Bool) -> Bool {
        guard text.utf8.contains(where: { $0 >= 0x80 }) else { return false }
        return text.unicodeScalars.contains { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator: true
            case .spaceSeparator: !allowingSpaces
            default: false
            }
        }
    }

    /// One pass over the bytes (JIDs are parsed for every stanza): no `@`, `/`, space, control
    /// or empty label.
    private static func isValidDomain(_ domain: String) -> Bool {
        let bytes = domain.utf8
        let dot = UInt8(ascii: ".")
        guard !bytes.isEmpty, bytes.count <= 1023, bytes.first != dot, bytes.last != dot else { return false }
        var previous: UInt8 = 0
        var ascii = true
        for byte in bytes {
            if byte == UInt8(ascii: "@") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: " ") || isControl(byte) || (byte == dot && previous == dot) {
                return false
            }
            ascii = ascii && byte < 0x80
            previous = byte
        }
        return ascii || !hasInvisibleScalar(domain, allowingSpaces: false)
    }

    /// Lowercases, skipping the work for the usual all-lowercase ASCII text.
    private static func caseFolded(_ text: String) -> String {
        text.utf8.allSatisfy({ $0 < 0x80 && !($0 >= 0x41 && $0 <= 0x5A) }) ? text : text.lowercased()
    }

    /// The JID without its resource.
    public var bare: JID {
        JID(unchecked: local, domain: domain, resource: nil)
    }

    /// Whether the JID has a resource.
    public var isFull: Bool { resource != nil }

    /// The same JID with `resource`.
    public func with(resource: String) -> JID? {
        JID(local: local, domain: domain, resource: resource)
    }

    public static func < (lhs: JID, rhs: JID) -> Bool { lhs.description < rhs.description }

    private init(unchecked local: String?, domain: String, resource: String?) {
        self.local = local
        self.domain = domain
        self.resource = resource
        var text = local.map { $0 + "@" } ?? ""
        text += domain
        if let resource { text += "/" + resource }
        description = text
    }
}
