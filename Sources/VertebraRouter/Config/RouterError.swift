/// Why the router (or one of its commands) failed: a code to switch on and a message that says
/// what happened and what to do.
public struct RouterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The configuration is unusable (the message says what to fix).
        public static let configuration = Code("configuration")
        /// The accounts file cannot be read, parsed or written.
        public static let accounts = Code("accounts")
        /// The TLS certificate or key cannot be loaded or generated.
        public static let tls = Code("tls")
        /// The listener could not bind its address.
        public static let bindFailed = Code("bind-failed")

        public var description: String { rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened, for people.
    public let message: String

    /// Makes an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
