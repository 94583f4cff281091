import Natter

/// The stanza errors Vertebra answers protocol IQs with, and what each means to the sender.
enum VertebraErrors {
    /// The conversation is unknown or already ended: stop sending on it.
    static func unknownConversation(_ token: String) -> StanzaError {
        StanzaError(type: .cancel, condition: .unexpectedRequest, text: "no open conversation \(token)")
    }

    /// The attempt was superseded by a newer one (fencing): stop sending on it.
    static func superseded(_ token: String) -> StanzaError {
        StanzaError(type: .cancel, condition: .conflict, text: "attempt \(token) was superseded by a newer attempt")
    }

    /// Not ready yet (recovering after a restart): try again shortly.
    static func notReady(_ what: String) -> StanzaError {
        StanzaError(type: .wait, condition: .resourceConstraint, text: what)
    }

    static func notAuthorized(_ text: String) -> StanzaError {
        StanzaError(type: .auth, condition: .notAuthorized, text: text)
    }

    static func unknownOperation(_ path: String) -> StanzaError {
        StanzaError(type: .cancel, condition: .featureNotImplemented, text: "no operation \(path) here")
    }

    static func internalError(_ text: String) -> StanzaError {
        StanzaError(type: .wait, condition: .internalServerError, text: text)
    }
}
