import VertebraXML

/// XMPP namespaces Natter speaks.
public enum XMPPNamespace {
    public static let tls = "urn:ietf:params:xml:ns:xmpp-tls"
    public static let sasl = "urn:ietf:params:xml:ns:xmpp-sasl"
    public static let bind = "urn:ietf:params:xml:ns:xmpp-bind"
    public static let session = "urn:ietf:params:xml:ns:xmpp-session"
    public static let stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
    public static let streams = "urn:ietf:params:xml:ns:xmpp-streams"
    public static let ping = "urn:xmpp:ping"
    public static let streamManagement = "urn:xmpp:sm:3"
    public static let discoInfo = "http://jabber.org/protocol/disco#info"
}

/// The three kinds of stanza.
public enum StanzaKind: String, Sendable, Hashable, CaseIterable {
    case iq, message, presence

    /// The kind of `element`, if it is a stanza of the client namespace.
    public init?(_ element: XElement) {
        guard element.namespace == XMLNamespace.client || element.namespace == XMLNamespace.server,
            let kind = StanzaKind(rawValue: element.name)
        else { return nil }
        self = kind
    }
}

/// An error condition carried in a stanza (RFC 6120 §8.3), e.g. `service-unavailable`.
public struct StanzaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// How the sender should react.
    public enum ErrorType: String, Sendable { case auth, cancel, `continue`, modify, wait }

    /// The defined conditions of RFC 6120 §8.3.3: a closed set. A condition this list does not
    /// name (RFC 3920's `payment-required`, a typo) reads as `undefined-condition`.
    public enum Condition: String, Sendable, CaseIterable, CustomStringConvertible {
        case badRequest = "bad-request"
        case conflict
        case featureNotImplemented = "feature-not-implemented"
        case forbidden
        case gone
        case internalServerError = "internal-server-error"
        case itemNotFound = "item-not-found"
        case jidMalformed = "jid-malformed"
        case notAcceptable = "not-acceptable"
        case notAllowed = "not-allowed"
        case notAuthorized = "not-authorized"
        case policyViolation = "policy-violation"
        case recipientUnavailable = "recipient-unavailable"
        case redirect
        case registrationRequired = "registration-required"
        case remoteServerNotFound = "remote-server-not-found"
        case remoteServerTimeout = "remote-server-timeout"
        case resourceConstraint = "resource-constraint"
        case serviceUnavailable = "service-unavailable"
        case subscriptionRequired = "subscription-required"
        case undefinedCondition = "undefined-condition"
        case unexpectedRequest = "unexpected-request"

        /// The element's name, as on the wire.
        public var description: String { rawValue }
    }

    /// The error type.
    public let type: ErrorType
    /// The defined condition, e.g. `.serviceUnavailable`.
    public let condition: Condition
    /// Optional human-readable text.
    public let text: String?
    /// An application-specific condition element, if any.
    public let application: XElement?

    /// Makes an error.
    public init(type: ErrorType, condition: Condition, text: String? = nil, application: XElement? = nil) {
        self.type = type
        self.condition = condition
        self.text = text
        self.application = application
    }

    /// `service-unavailable` (cancel): nobody here handles that, or the recipient is gone.
    public static func serviceUnavailable(_ text: String? = nil) -> StanzaError {
        StanzaError(type: .cancel, condition: .serviceUnavailable, text: text)
    }

    /// `feature-not-implemented` (cancel).
    public static func featureNotImplemented(_ text: String? = nil) -> StanzaError {
        StanzaError(type: .cancel, condition: .featureNotImplemented, text: text)
    }

    /// `bad-request` (modify): the payload is wrong.
    public static func badRequest(_ text: String? = nil) -> StanzaError {
        StanzaError(type: .modify, condition: .badRequest, text: text)
    }

    /// `not-authorized` (auth).
    public static func notAuthorized(_ text: String? = nil) -> StanzaError {
        StanzaError(type: .auth, condition: .notAuthorized, text: text)
    }

    /// Whether the error means the addressed entity is gone (its session ended).
    public var meansRecipientGone: Bool {
        condition == .serviceUnavailable || condition == .recipientUnavailable
            || condition == .itemNotFound
    }

    /// Reads the `<error>` child of a stanza.
    public init?(_ error: XElement) {
        guard error.name == "error", let type = error[attribute: "type"].flatMap(ErrorType.init) else { return nil }
        let defined = error.elements.filter { $0.namespace == XMPPNamespace.stanzas }
        self.type = type
        self.condition = defined.first { $0.name != "text" }.flatMap { Condition(rawValue: $0.name) } ?? .undefinedCondition
        self.text = defined.first { $0.name == "text" }?.text
        self.application = error.elements.first { $0.namespace != XMPPNamespace.stanzas }
    }

    /// The `<error>` element.
    public var element: XElement {
        var children: [XNode] = [.element(XElement(condition.rawValue, namespace: XMPPNamespace.stanzas))]
        if let text { children.append(.element(XElement("text", namespace: XMPPNamespace.stanzas, text: text))) }
        if let application { children.append(.element(application)) }
        return XElement("error", namespace: XMLNamespace.client, attributes: [XAttribute("type", type.rawValue)], children: children)
    }

    public var description: String {
        "\(condition) (\(type.rawValue))" + (text.map { ": \($0)" } ?? "")
    }
}

/// An IQ stanza: a request (`get`/`set`) or its answer (`result`/`error`), matched by `id`.
public struct IQ: Sendable, Hashable {
    /// The IQ type.
    public enum Kind: String, Sendable { case get, set, result, error }

    public var type: Kind
    public var id: String
    public var to: JID?
    public var from: JID?
    /// The payload element (the child that is not `<error>`), if any.
    public var payload: XElement?
    /// The error, for `type == .error`.
    public var error: StanzaError?

    /// Makes an IQ.
    public init(type: Kind, id: String, to: JID? = nil, from: JID? = nil, payload: XElement? = nil, error: StanzaError? = nil) {
        self.type = type
        self.id = id
        self.to = to
        self.from = from
        self.payload = payload
        self.error = error
    }

    /// Reads an IQ; `nil` when `element` is not a well-formed IQ (no id, unknown type, bad JIDs).
    public init?(_ element: XElement) {
        guard StanzaKind(element) == .iq, let id = element[attribute: "id"],
            let type = element[attribute: "type"].flatMap(Kind.init)
        else { return nil }
        let to = element[attribute: "to"]
        let from = element[attribute: "from"]
        guard to.map({ JID($0) != nil }) ?? true, from.map({ JID($0) != nil }) ?? true else { return nil }
        self.type = type
        self.id = id
        self.to = to.flatMap(JID.init)
        self.from = from.flatMap(JID.init)
        // The stanza error is <error/> in the stanza's own namespace; an <error/> of another
        // namespace (Vertebra's) is a payload.
        let isStanzaError = { (child: XElement) in child.name == "error" && child.namespace == element.namespace }
        self.payload = element.elements.first { !isStanzaError($0) }
        self.error = type == .error ? element.elements.first(where: isStanzaError).flatMap(StanzaError.init) : nil
    }

    /// Whether this is a request that must be answered.
    public var isRequest: Bool { type == .get || type == .set }

    /// The stanza as an element of the client namespace.
    public var element: XElement {
        var attributes = [XAttribute("type", type.rawValue), XAttribute("id", id)]
        if let to { attributes.append(XAttribute("to", to.description)) }
        if let from { attributes.append(XAttribute("from", from.description)) }
        var children: [XNode] = []
        if let payload { children.append(.element(payload)) }
        if let error { children.append(.element(error.element)) }
        return XElement("iq", namespace: XMLNamespace.client, attributes: attributes, children: children)
    }

    /// The `result` answering this request.
    public func result(payload: XElement? = nil) -> IQ {
        IQ(type: .result, id: id, to: from, payload: payload)
    }

    /// The `error` answering this request (the request's payload is echoed, as RFC 6120 allows).
    public func error(_ error: StanzaError) -> IQ {
        IQ(type: .error, id: id, to: from, payload: payload, error: error)
    }
}

/// Presence stanzas Vertebra sends.
public enum Presence {
    /// Available presence, broadcast (no `to`) or directed at `to`.
    public static func available(to: JID? = nil) -> XElement {
        XElement("presence", namespace: XMLNamespace.client, attributes: to.map { [XAttribute("to", $0.description)] } ?? [])
    }

    /// Unavailable presence, broadcast or directed.
    public static func unavailable(to: JID? = nil) -> XElement {
        var attributes = [XAttribute("type", "unavailable")]
        if let to { attributes.append(XAttribute("to", to.description)) }
        return XElement("presence", namespace: XMLNamespace.client, attributes: attributes)
    }
}

extension XElement {
    /// The `from` attribute as a JID.
    public var fromJID: JID? { self[attribute: "from"].flatMap(JID.init) }
    /// The `to` attribute as a JID.
    public var toJID: JID? { self[attribute: "to"].flatMap(JID.init) }
}
