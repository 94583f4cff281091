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

    /// Parses `text`; `nil` when it is not a valid JID.
    public init?(_ text: String) {
        let slash = text.firstIndex(of: "/")
        let bare = slash.map { text[..<$0] } ?? text[...]
        let resource = slash.map { String(text[text.index(after: $0)...]) }
        let at = bare.firstIndex(of: "@")
        let local = at.map { String(bare[..<$0]) }
        let domain = String(at.map { bare[bare.index(after: $0)...] } ?? bare)
        self.init(local: local, domain: domain, resource: resource)
    }

    /// Makes a JID from its parts; `nil` when a part is empty, too long or malformed.
    public init?(local: String?, domain: String, resource: String? = nil) {
        guard JID.isValidDomain(domain) else { return nil }
        if let local, local.isEmpty || local.utf8.count > 1023 || local.contains(where: JID.forbiddenInLocal.contains) {
            return nil
        }
        if let resource, resource.isEmpty || resource.utf8.count > 1023 { return nil }
        self.local = local?.lowercased()
        self.domain = domain.lowercased()
        self.resource = resource
    }

    private static let forbiddenInLocal: Set<Character> = ["@", "/", "\"", "&", "'", ":", "<", ">", " "]

    private static func isValidDomain(_ domain: String) -> Bool {
        !domain.isEmpty && domain.utf8.count <= 1023 && !domain.contains(where: { $0 == "@" || $0 == "/" || $0 == " " })
            && !domain.hasPrefix(".") && !domain.hasSuffix(".")
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

    public var description: String {
        var text = local.map { $0 + "@" } ?? ""
        text += domain
        if let resource { text += "/" + resource }
        return text
    }

    public static func < (lhs: JID, rhs: JID) -> Bool { lhs.description < rhs.description }

    private init(unchecked local: String?, domain: String, resource: String?) {
        self.local = local
        self.domain = domain
        self.resource = resource
    }
}
