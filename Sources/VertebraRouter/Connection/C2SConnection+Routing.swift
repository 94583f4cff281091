import NIOCore
import Natter
import VertebraXML

/// Routing between full JIDs of the domain (RFC 6120 §10, RFC 6121 §8): the server stamps
/// `from`, answers for absent recipients, and answers IQs addressed to itself.
extension C2SConnection {
    func routeFromClient(_ element: XElement, jid: JID) {
        guard rate.admit() else {
            terminate(.policyViolation, text: "more than \(core.configuration.limits.stanzasPerSecond) stanzas per second")
            return
        }
        guard element.namespace == XMLNamespace.client, let kind = StanzaKind(element) else {
            terminate(.unsupportedStanzaType, text: "<\(element.name)> in \(element.namespace) is not a stanza this server handles")
            return
        }
        // The sender is whoever is bound on this stream, whatever the client wrote.
        let stamped = element.setting(attribute: "from", to: jid.description)
        guard let toText = element[attribute: "to"] else {
            if kind == .iq { answerAsServer(stamped, for: jid.bare, sender: jid) }
            return
        }
        guard let to = JID(toText) else {
            bounce(stamped, .init(type: .modify, condition: .jidMalformed), from: nil)
            return
        }
        guard to.domain == core.domain else {
            bounce(stamped, .init(type: .cancel, condition: .remoteServerNotFound, text: "this server does not federate"), from: to)
            return
        }
        if kind == .presence { trackDirectedPresence(stamped, to: to) }
        route(stamped, from: jid, to: to)
    }

    /// Delivers a stamped stanza to `to` (a JID of this domain), or answers for the recipient.
    func route(_ stanza: XElement, from sender: JID, to: JID) {
        core.routed.increment()
        let kind = StanzaKind(stanza)
        if to.local == nil {
            if kind == .iq { answerAsServer(stanza, for: to, sender: sender) }
            return
        }
        if to.isFull {
            if let session = core.registry.session(to) {
                guard let bytes = forwardable(stanza, to: to) else { return }
                session.deliver(bytes)
            } else if kind != .presence {
                bounce(stanza, .serviceUnavailable(), from: to)
            }
            return
        }
        // A bare JID: IQs are answered by the server on the account's behalf; messages and
        // presence go to every session of the account.
        if kind == .iq {
            if to == sender.bare {
                answerAsServer(stanza, for: to, sender: sender)
            } else {
                bounce(stanza, .serviceUnavailable(), from: to)
            }
            return
        }
        let sessions = core.registry.sessions(ofBare: to)
        if sessions.isEmpty {
            if kind == .message { bounce(stanza, .serviceUnavailable(), from: to) }
            return
        }
        guard let bytes = forwardable(stanza, to: to) else { return }
        for session in sessions { session.deliver(bytes) }
    }

    /// The stanza as it goes out, unless it is larger than the stanza limit: re-serialised (the
    /// server stamps `from`; escaping may grow it, an apostrophe in a value becomes `&apos;`) it
    /// could exceed what the recipient accepts and break the recipient's stream. Then the
    /// sender gets a small `policy-violation` error instead and nothing is delivered.
    private func forwardable(_ stanza: XElement, to: JID) -> ByteBuffer? {
        let bytes = stanza.serializedBytes(inheritedNamespace: XMLNamespace.client)
        let limit = core.configuration.limits.maxStanzaBytes
        guard bytes.count > limit else { return ByteBuffer(bytes: bytes) }
        logger.notice("refused to forward an oversized stanza", metadata: [
            "from": "\(stanza[attribute: "from"] ?? "?")", "to": "\(to)", "bytes": "\(bytes.count)", "limit": "\(limit)"])
        let type = stanza[attribute: "type"]
        guard type != "error", type != "result", StanzaKind(stanza) != .presence else { return nil }
        let error = StanzaError(type: .modify, condition: .policyViolation, text: "the stanza would be \(bytes.count) bytes as delivered; the limit is \(limit)")
        var attributes = [XAttribute("type", "error"), XAttribute("from", to.description)]
        if let sender = stanza[attribute: "from"] { attributes.append(XAttribute("to", sender)) }
        // The id only when it is small: an error answer must not be the oversized thing itself.
        if let id = stanza[attribute: "id"], id.utf8.count <= 256 { attributes.append(XAttribute("id", id)) }
        write(XElement(stanza.name, namespace: XMLNamespace.client, attributes: attributes, children: [.element(error.element)]))
        return nil
    }

    private func trackDirectedPresence(_ presence: XElement, to: JID) {
        guard to.local != nil else { return }
        switch presence[attribute: "type"] {
        case nil: directedPresence.insert(to)
        case "unavailable": directedPresence.remove(to)
        default: break
        }
    }

    // MARK: The server's own answers

    /// IQs to the server (or to the client's own account): XEP-0199 ping, XEP-0030 disco#info,
    /// the legacy session step; everything else `service-unavailable`.
    private func answerAsServer(_ stanza: XElement, for entity: JID, sender: JID) {
        guard let iq = IQ(stanza) else {
            bounce(stanza, .badRequest("malformed IQ"), from: entity)
            return
        }
        guard iq.isRequest else { return }
        let payload = iq.payload
        switch (iq.type, payload?.namespace, payload?.name) {
        case (.get, XMPPNamespace.ping, "ping"), (.set, XMPPNamespace.session, "session"):
            reply(IQ(type: .result, id: iq.id, to: sender, from: entity))
        case (.get, XMPPNamespace.discoInfo, "query") where payload?[attribute: "node"] == nil:
            reply(IQ(type: .result, id: iq.id, to: sender, from: entity, payload: discoInfo(for: entity)))
        default:
            bounce(stanza, .serviceUnavailable(), from: entity)
        }
    }

    private func discoInfo(for entity: JID) -> XElement {
        let identity =
            entity.local == nil
            ? XElement("identity", namespace: XMPPNamespace.discoInfo, attributes: ["category": "server", "type": "im", "name": "Vertebra router"])
            : XElement("identity", namespace: XMPPNamespace.discoInfo, attributes: ["category": "account", "type": "registered"])
        let features = [XMPPNamespace.discoInfo, XMPPNamespace.ping].map {
            XNode.element(XElement("feature", namespace: XMPPNamespace.discoInfo, attributes: [XAttribute("var", $0)]))
        }
        return XElement("query", namespace: XMPPNamespace.discoInfo, children: [.element(identity)] + features)
    }

    private func reply(_ iq: IQ) {
        write(iq.element)
    }

    /// Answers the sender of `stanza` with an error of the same kind, from `from` (the server
    /// when `nil`). Errors and results are never answered, so two servers cannot loop.
    func bounce(_ stanza: XElement, _ error: StanzaError, from: JID?) {
        let type = stanza[attribute: "type"]
        guard type != "error", type != "result", StanzaKind(stanza) != .presence else { return }
        write(errorReply(to: stanza, error, from: from?.description ?? core.domain))
    }

    /// An error answer to a stanza that arrived before binding (the sender has no JID yet).
    func serverError(for stanza: XElement, _ error: StanzaError) -> XElement {
        errorReply(to: stanza, error, from: nil)
    }

    private func errorReply(to stanza: XElement, _ error: StanzaError, from: String?) -> XElement {
        var attributes = [XAttribute("type", "error")]
        if let id = stanza[attribute: "id"] { attributes.append(XAttribute("id", id)) }
        if let sender = stanza[attribute: "from"] { attributes.append(XAttribute("to", sender)) }
        if let from { attributes.append(XAttribute("from", from)) }
        return XElement(
            stanza.name, namespace: XMLNamespace.client, attributes: attributes,
            children: stanza.children + [.element(error.element)])
    }
}
