import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Natter
import VertebraXML

/// STARTTLS, SASL and resource binding (RFC 6120 §5, §6, §7).
extension C2SConnection {
    private var tlsOffered: Bool { core.tlsContext != nil && !encrypted }
    private var mustStartTLS: Bool { tlsOffered && core.configuration.requireTLS }
    private var plainAllowed: Bool { encrypted || isLoopback }

    /// The features for the current phase.
    func features() -> XElement {
        var children: [XNode] = []
        switch phase {
        case .negotiating:
            if tlsOffered {
                let required: [XNode] = mustStartTLS ? [.element(XElement("required", namespace: XMPPNamespace.tls))] : []
                children.append(.element(XElement("starttls", namespace: XMPPNamespace.tls, children: required)))
            }
            if !mustStartTLS {
                var mechanisms = [SCRAMHash.sha256.mechanism, SCRAMHash.sha1.mechanism]
                if plainAllowed { mechanisms.append("PLAIN") }
                children.append(
                    .element(
                        XElement(
                            "mechanisms", namespace: XMPPNamespace.sasl,
                            children: mechanisms.map { .element(XElement("mechanism", namespace: XMPPNamespace.sasl, text: $0)) })))
            }
        case .authenticated, .bound:
            children.append(.element(XElement("bind", namespace: XMPPNamespace.bind)))
            children.append(
                .element(XElement("session", namespace: XMPPNamespace.session, children: [.element(XElement("optional", namespace: XMPPNamespace.session))])))
        }
        return XElement("features", namespace: XMLNamespace.stream, children: children)
    }

    // MARK: Before authentication

    func negotiate(_ element: XElement) {
        switch (element.namespace, element.name) {
        case (XMPPNamespace.tls, "starttls"): startTLS()
        case (XMPPNamespace.sasl, "auth"): beginSASL(element)
        case (XMPPNamespace.sasl, "response"): continueSASL(element)
        case (XMPPNamespace.sasl, "abort"):
            sasl = nil
            write(saslFailure("aborted"))
        default:
            terminate(.notAuthorized, text: "authenticate first")
        }
    }

    private func startTLS() {
        guard tlsOffered, let tlsContext = core.tlsContext, let context else {
            write(XElement("failure", namespace: XMPPNamespace.tls))
            terminate(.policyViolation, text: "STARTTLS is not available here")
            return
        }
        write(XElement("proceed", namespace: XMPPNamespace.tls))
        // <proceed/> leaves in the clear, before TLS sits under the flush coalescer.
        context.triggerUserOutboundEvent(FlushCoalescer.FlushNow(), promise: nil)
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
        } catch {
            logger.warning("cannot start TLS", metadata: ["error": "\(error)"])
            terminate(.internalServerError)
            return
        }
        encrypted = true
        restartStream()
        logger.info("TLS started")
    }

    /// The client opens a new stream (after STARTTLS or SASL success) on the same connection.
    private func restartStream() {
        parser.reset()
        headerSent = false
        streamRestarted = true
    }

    private func beginSASL(_ element: XElement) {
        if case .failing? = sasl {
            // The answer to the last wrong attempt is still pending (the delay); no new attempt.
            write(saslFailure("temporary-auth-failure"))
            return
        }
        if mustStartTLS {
            write(saslFailure("encryption-required"))
            return
        }
        if core.loginsBlocked(from: address) {
            logger.warning("login refused: too many failed logins from this address", metadata: ["address": "\(address)"])
            write(saslFailure("temporary-auth-failure", text: "too many failed logins from this address; try again later"))
            terminate(.policyViolation, text: "too many failed logins from this address")
            return
        }
        guard let mechanism = element[attribute: "mechanism"] else {
            write(saslFailure("invalid-mechanism"))
            return
        }
        guard let initial = decodeSASL(element.text) else {
            write(saslFailure("incorrect-encoding"))
            return
        }
        if mechanism == "PLAIN" {
            guard plainAllowed else {
                write(saslFailure("invalid-mechanism", text: "PLAIN only over TLS or loopback"))
                return
            }
            authenticatePlain(initial)
            return
        }
        guard let hash = SCRAMHash(rawValue: mechanism) else {
            write(saslFailure("invalid-mechanism"))
            return
        }
        let accounts = core.accounts
        var server = SCRAMServer(hash: hash, fakeSaltKey: accounts.fakeSaltKey) { accounts.credentials($0, hash: hash) }
        do {
            let challenge = try server.respond(toClientFirst: initial)
            if let user = server.username, refuseBlockedAccount(user) { return }
            sasl = .scram(server, hash)
            write(XElement("challenge", namespace: XMPPNamespace.sasl, text: Data(challenge.utf8).base64EncodedString()))
        } catch {
            sasl = nil
            write(saslFailure("malformed-request"))
        }
    }

    private func continueSASL(_ element: XElement) {
        guard case .scram(var server, let hash)? = sasl else {
            write(saslFailure("malformed-request", text: "no SASL exchange in progress"))
            return
        }
        sasl = nil
        guard let message = decodeSASL(element.text) else {
            write(saslFailure("incorrect-encoding"))
            return
        }
        guard let final = try? server.verify(clientFinal: message), let user = server.username else {
            failAuthentication(mechanism: hash.mechanism, user: server.username)
            return
        }
        succeed(user: user, mechanism: hash.mechanism, additionalData: final)
    }

    private func authenticatePlain(_ message: String) {
        let parts = message.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3, refuseBlockedAccount(parts[1]) { return }
        guard parts.count == 3, parts[0].isEmpty || parts[0] == parts[1] || JID(parts[0])?.local == parts[1].lowercased(),
            let account = core.accounts.account(parts[1]), let context
        else {
            failAuthentication(mechanism: "PLAIN", user: parts.count == 3 ? parts[1] : nil)
            return
        }
        // PBKDF2 (thousands of HMACs) runs on the thread pool, never on the event loop that
        // serves every other client of this loop; no new attempt starts meanwhile.
        sasl = .failing
        let password = parts[2]
        NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { account.matches(password: password) }
            .assumeIsolated().whenComplete { result in
                guard !self.closing else { return }
                self.sasl = nil
                if case .success(true) = result {
                    self.succeed(user: account.username, mechanism: "PLAIN", additionalData: nil)
                } else {
                    self.failAuthentication(mechanism: "PLAIN", user: account.username)
                }
            }
    }

    private func succeed(user: String, mechanism: String, additionalData: String?) {
        logger.info("authenticated", metadata: ["user": "\(user)", "sasl": "\(mechanism)", "tls": "\(encrypted)"])
        write(
            XElement(
                "success", namespace: XMPPNamespace.sasl,
                text: additionalData.map { Data($0.utf8).base64EncodedString() } ?? ""))
        phase = .authenticated(user.lowercased())
        restartStream()
    }

    /// A wrong password: `<failure><not-authorized/>` after a delay, and the connection closed
    /// after too many attempts.
    private func failAuthentication(mechanism: String, user: String?) {
        authFailures += 1
        core.recordFailedLogin(from: address, account: user)
        sasl = .failing
        logger.info("authentication failed", metadata: ["sasl": "\(mechanism)", "attempt": "\(authFailures)"])
        guard let context else { return }
        let delay = core.configuration.authFailureDelay
        let attempts = authFailures
        let maxAttempts = core.configuration.maxAuthAttempts
        context.eventLoop.assumeIsolated().scheduleTask(in: delay.timeAmount) {
            guard !self.closing else { return }
            self.sasl = nil
            self.write(self.saslFailure("not-authorized"))
            if attempts >= maxAttempts {
                self.terminate(.policyViolation, text: "too many failed logins")
            }
        }
    }

    /// Refuses the login, and ends the stream, when `user` had too many failed logins from
    /// anywhere within the window; returns whether it did. Said the same way whether or not
    /// the account exists.
    private func refuseBlockedAccount(_ user: String) -> Bool {
        guard core.loginsBlocked(account: user) else { return false }
        sasl = nil
        logger.warning("login refused: too many failed logins to this account", metadata: ["user": "\(user)"])
        write(saslFailure("temporary-auth-failure", text: "too many failed logins to this account; try again later"))
        terminate(.policyViolation, text: "too many failed logins to this account")
        return true
    }

    func saslFailure(_ condition: String, text: String? = nil) -> XElement {
        var children: [XNode] = [.element(XElement(condition, namespace: XMPPNamespace.sasl))]
        if let text { children.append(.element(XElement("text", namespace: XMPPNamespace.sasl, text: text))) }
        return XElement("failure", namespace: XMPPNamespace.sasl, children: children)
    }

    private func decodeSASL(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty || trimmed == "=" { return "" }
        guard let data = Data(base64Encoded: trimmed), let decoded = String(data: data, encoding: .utf8) else { return nil }
        return decoded
    }

    // MARK: Resource binding

    func bindResource(_ element: XElement, user: String) {
        guard let iq = IQ(element), iq.isRequest else {
            terminate(.notAuthorized, text: "bind a resource first")
            return
        }
        guard let payload = iq.payload, payload.namespace == XMPPNamespace.bind, payload.name == "bind", iq.type == .set else {
            write(serverError(for: element, .init(type: .auth, condition: .notAuthorized, text: "bind a resource first")))
            return
        }
        let requested = payload.firstElement(named: "resource")?.text.trimmingCharacters(in: .whitespaces) ?? ""
        let resource = requested.isEmpty ? "r-" + String(UInt64.random(in: 1...UInt64.max), radix: 36) : requested
        guard let jid = JID(local: user, domain: core.domain, resource: resource), let handle else {
            write(serverError(for: element, .badRequest("the resource is not valid")))
            return
        }
        if let replaced = core.registry.bind(jid, to: handle) {
            logger.info("resource conflict: the older session is closed", metadata: ["jid": "\(jid)", "older": "\(replaced.id)"])
            replaced.terminate(.conflict, text: "a newer session bound \(jid)")
        }
        phase = .bound(jid)
        authTimer?.cancel()
        authTimer = nil
        logger[metadataKey: "jid"] = "\(jid)"
        logger.info("resource bound")
        let bind = XElement("bind", namespace: XMPPNamespace.bind, children: [.element(XElement("jid", namespace: XMPPNamespace.bind, text: jid.description))])
        write(IQ(type: .result, id: iq.id, payload: bind).element)
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(Int64(components.seconds) * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
