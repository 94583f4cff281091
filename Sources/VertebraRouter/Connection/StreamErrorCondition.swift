import Natter
import VertebraXML

/// A stream error condition (RFC 6120 §4.9.3) the router sends before closing a stream.
struct StreamErrorCondition: Hashable, Sendable, CustomStringConvertible {
    let name: String

    static let badFormat = StreamErrorCondition(name: "bad-format")
    static let conflict = StreamErrorCondition(name: "conflict")
    static let connectionTimeout = StreamErrorCondition(name: "connection-timeout")
    static let hostUnknown = StreamErrorCondition(name: "host-unknown")
    static let internalServerError = StreamErrorCondition(name: "internal-server-error")
    static let invalidNamespace = StreamErrorCondition(name: "invalid-namespace")
    static let notAuthorized = StreamErrorCondition(name: "not-authorized")
    static let notWellFormed = StreamErrorCondition(name: "not-well-formed")
    static let policyViolation = StreamErrorCondition(name: "policy-violation")
    static let resourceConstraint = StreamErrorCondition(name: "resource-constraint")
    static let restrictedXML = StreamErrorCondition(name: "restricted-xml")
    static let systemShutdown = StreamErrorCondition(name: "system-shutdown")
    static let unsupportedStanzaType = StreamErrorCondition(name: "unsupported-stanza-type")
    static let unsupportedVersion = StreamErrorCondition(name: "unsupported-version")

    var description: String { name }

    /// The condition for XML the parser refused.
    init(_ error: XMLParseError) {
        switch error.code {
        case .restrictedXML: self = .restrictedXML
        case .stanzaTooLarge, .tooDeep, .tooManyAttributes: self = .policyViolation
        default: self = .notWellFormed
        }
    }

    private init(name: String) { self.name = name }

    /// `<stream:error>` with this condition and optional text, as bytes.
    func bytes(text: String?) -> [UInt8] {
        var output = Array("<stream:error>".utf8)
        XMLSerializer.write(XElement(name, namespace: XMPPNamespace.streams), into: &output)
        if let text {
            XMLSerializer.write(XElement("text", namespace: XMPPNamespace.streams, text: text), into: &output)
        }
        output.append(contentsOf: "</stream:error>".utf8)
        return output
    }
}
