/// Why an XMPP operation failed: a code callers can switch on, and a message that says what
/// happened and, where it helps, what to do.
public struct NatterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The client configuration is unusable (message says what to fix).
        public static let configuration = Code("configuration")
        /// The TCP connection could not be made or was refused.
        public static let connectionFailed = Code("connection-failed")
        /// TLS could not be negotiated or the server certificate was not trusted.
        public static let tlsFailed = Code("tls-failed")
        /// The server requires something our TLS policy forbids, or offers no TLS when it is required.
        public static let tlsPolicy = Code("tls-policy")
        /// The server refused our credentials.
        public static let authenticationFailed = Code("authentication-failed")
        /// The server and the client share no SASL mechanism allowed on this connection.
        public static let noCommonMechanism = Code("no-common-mechanism")
        /// The server could not prove it knows the password (SCRAM server signature mismatch).
        public static let serverNotVerified = Code("server-not-verified")
        /// The server closed the stream with a stream error.
        public static let streamError = Code("stream-error")
        /// Another session bound this full JID (stream error `conflict`): the client does not
        /// reconnect, or the two sessions would take the JID from each other forever.
        public static let sessionReplaced = Code("session-replaced")
        /// Resource binding failed.
        public static let bindFailed = Code("bind-failed")
        /// The server broke the protocol (unexpected or malformed element).
        public static let protocolViolation = Code("protocol-violation")
        /// No answer within the allowed time.
        public static let timeout = Code("timeout")
        /// The connection is down (and the request could not wait for it, or was lost with it).
        public static let disconnected = Code("disconnected")
        /// The peer answered an IQ with an error stanza (see ``NatterError/stanzaError``).
        public static let stanzaError = Code("stanza-error")
        /// The client was shut down.
        public static let shutDown = Code("shut-down")

        public var description: String { rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened, for people.
    public let message: String
    /// The error stanza, for ``Code/stanzaError``.
    public let stanzaError: StanzaError?

    /// Makes an error.
    public init(_ code: Code, _ message: String, stanzaError: StanzaError? = nil) {
        self.code = code
        self.message = message
        self.stanzaError = stanzaError
    }

    public var description: String { "\(code): \(message)" }
}
