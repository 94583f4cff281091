import Natter
import VertebraXML

/// One element of Vertebra's wire protocol (DESIGN §4, `Schemas/vertebra-api.xsd`), carried as the
/// only child of an IQ in the `http://xmlschema.engineyard.com/agent/api` namespace.
public enum ProtocolMessage: Sendable, Hashable {
    /// How an `error` ends a conversation.
    public enum ErrorKind: String, Sendable, Hashable, CaseIterable {
        /// Failed; the job may be retried elsewhere.
        case error
        /// Failed for good; do not retry.
        case fatal
        /// Ended by a `cancel`.
        case cancel
    }

    /// Start an operation (requester → performer); `arguments` are named typed values.
    case op(type: Resource, token: JobToken, scope: Scope?, arguments: [XElement])
    /// The performer's answer to an `op`, inside the IQ result: the rotated token `A:B`.
    case accepted(JobToken)
    /// Accepted and starting.
    case ack(JobToken)
    /// Refused, with the reason.
    case nack(JobToken, reason: String)
    /// One chunk of results.
    case data(JobToken, values: [XElement])
    /// Done, after every `data` was acknowledged; may carry last values.
    case final(JobToken, values: [XElement])
    /// Failed; ends the conversation. On the wire the error's code is data (the `code`
    /// attribute) and its message reads `code: text` for people and 0.4 peers.
    case error(JobToken, kind: ErrorKind, error: VertebraError)
    /// Stop the operation (extension).
    case cancel(JobToken)

    /// The namespace of the protocol elements.
    public static let namespace = XMLNamespace.vertebraAPI

    /// The conversation token.
    public var token: JobToken {
        switch self {
        case .op(_, let token, _, _), .accepted(let token), .ack(let token), .nack(let token, _),
            .data(let token, _), .final(let token, _), .error(let token, _, _), .cancel(let token):
            return token
        }
    }

    /// Reads a protocol element; the error says what is wrong, for a `bad-request` answer.
    public init(_ element: XElement) throws(ProtocolError) {
        guard element.namespace == Self.namespace else {
            throw ProtocolError("<\(element.name)> is not in the Vertebra namespace \(Self.namespace)")
        }
        guard let tokenText = element[attribute: "token"] else {
            throw ProtocolError("<\(element.name)> has no token")
        }
        guard let token = JobToken(tokenText) else {
            throw ProtocolError("token '\(tokenText)' is not A or A:B (1-64 of [0-9A-Za-z_-] each)")
        }
        let values = element.elements.filter { $0.namespace == Self.namespace || $0.namespace.isEmpty }
        switch element.name {
        case "op": self = try Self.op(element, token: token, values: values)
        case "ack": self = .ack(token)
        case "nack": self = .nack(token, reason: Self.text(named: "reason", in: values) ?? "refused")
        case "data": self = .data(token, values: values)
        case "final": self = .final(token, values: values)
        case "cancel": self = .cancel(token)
        case "error":
            let kindText = element[attribute: "type"] ?? "error"
            guard let kind = ErrorKind(rawValue: kindText) else {
                throw ProtocolError("error type '\(kindText)' is not error, fatal or cancel")
            }
            let message = Self.text(named: "message", in: values) ?? element.text
            self = .error(token, kind: kind, error: VertebraError(wireCode: element[attribute: "code"], message: message, kind: kind))
        default:
            throw ProtocolError("<\(element.name)> is not a Vertebra protocol element")
        }
    }

    private static func op(_ element: XElement, token: JobToken, values: [XElement]) throws(ProtocolError) -> ProtocolMessage {
        guard let type = element[attribute: "type"] else {
            return .accepted(token)
        }
        let path = Resource(type)
        guard !path.components.isEmpty else { throw ProtocolError("op type '\(type)' is not an operation path") }
        var scope: Scope?
        if let scopeText = element[attribute: "scope"] {
            guard let parsed = Scope(rawValue: scopeText) else {
                throw ProtocolError("scope '\(scopeText)' is not direct, single or all")
            }
            scope = parsed
        }
        return .op(type: path, token: token, scope: scope, arguments: values)
    }

    private static func text(named name: String, in values: [XElement]) -> String? {
        values.first { $0[attribute: "name"] == name }?.text
    }

    /// The element, ready to be an IQ's payload.
    public var element: XElement {
        let namespace = Self.namespace
        func make(_ name: String, _ extra: [XAttribute] = [], _ children: [XElement] = []) -> XElement {
            XElement(
                name, namespace: namespace, attributes: extra + [XAttribute("token", token.description)],
                children: children.map { .element($0) })
        }
        func string(_ name: String, _ value: String) -> XElement {
            XElement("string", namespace: namespace, attributes: [XAttribute("name", name)], text: value)
        }
        switch self {
        case .op(let type, _, let scope, let arguments):
            var attributes = [XAttribute("type", type.path)]
            if let scope { attributes.append(XAttribute("scope", scope.rawValue)) }
            return XElement(
                "op", namespace: namespace,
                attributes: [attributes[0], XAttribute("token", token.description)] + attributes.dropFirst(),
                children: arguments.map { .element($0) })
        case .accepted: return make("op")
        case .ack: return make("ack")
        case .nack(_, let reason): return make("nack", [], [string("reason", reason)])
        case .data(_, let values): return make("data", [], values)
        case .final(_, let values): return make("final", [], values)
        case .error(_, let kind, let error):
            return make("error", [XAttribute("type", kind.rawValue), XAttribute("code", error.code.rawValue)], [string("message", error.description)])
        case .cancel: return make("cancel")
        }
    }
}

/// A protocol element that cannot be understood; answered with `bad-request`.
public struct ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public let message: String
    /// Makes an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    /// The stanza error to answer with.
    public var stanzaError: StanzaError { .badRequest(message) }
}

extension ProtocolMessage {
    /// The parts of an `op` request: an operation path and a job token `A`. Anything else sent
    /// as one is a bad request that says what is missing.
    func opRequest() throws(StanzaError) -> (path: Resource, token: JobToken, scope: Scope?, arguments: [XElement]) {
        switch self {
        case .op(let path, let token, let scope, let arguments) where token.attempt == nil:
            return (path, token, scope, arguments)
        case .accepted:
            throw StanzaError.badRequest("an op must name its operation in its type attribute")
        default:
            throw StanzaError.badRequest("an op must carry a job token A (without :B)")
        }
    }
}
