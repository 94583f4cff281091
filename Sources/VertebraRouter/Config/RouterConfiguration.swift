import Foundation

/// Everything the embedded router needs to listen, negotiate and protect itself.
///
/// The defaults suit a first local setup: `127.0.0.1:5222`, domain `localhost`, STARTTLS
/// required when a certificate is configured.
public struct RouterConfiguration: Sendable {
    /// Address to listen on. Default `127.0.0.1`.
    public var host: String
    /// Port to listen on; `0` lets the system choose (tests). Default 5222.
    public var port: Int
    /// The XMPP domain this router serves (the part after `@`). Default `localhost`.
    public var domain: String
    /// Certificate and key for STARTTLS; `nil` offers no TLS (then only loopback clients can
    /// log in, with SCRAM or PLAIN).
    public var tls: TLSFiles?
    /// Whether clients must start TLS before authenticating (when ``tls`` is set). Default `true`.
    public var requireTLS: Bool
    /// Limits that keep one client from hurting the others.
    public var limits: RouterLimits
    /// How long a wrong password waits before `<failure><not-authorized/>`. Default 1 s.
    public var authFailureDelay: Duration
    /// Failed SASL attempts allowed on one connection before it is closed. Default 3.
    public var maxAuthAttempts: Int
    /// Failed logins one IP address may make within ``failedLoginWindow`` across all its
    /// connections; past it, every login from that address is refused
    /// (`temporary-auth-failure`) until the window ends. Reconnecting gives no more guesses.
    /// Default 20 per 60 s; 0 turns the limit off.
    public var maxFailedLoginsPerAddress: Int
    /// Failed logins one account may suffer within ``failedLoginWindow`` from any number of
    /// addresses; past it, every login to that account is refused (`temporary-auth-failure`)
    /// until the window ends, so guessing spread over many addresses is slowed too. Default 50
    /// per 60 s; 0 turns the limit off.
    public var maxFailedLoginsPerAccount: Int
    public var failedLoginWindow: Duration

    /// The PEM files of the TLS certificate (chain) and private key.
    public struct TLSFiles: Sendable, Hashable {
        /// Certificate chain, PEM.
        public var certificatePath: String
        /// Private key, PEM.
        public var privateKeyPath: String

        /// Makes the pair.
        public init(certificatePath: String, privateKeyPath: String) {
            self.certificatePath = certificatePath
            self.privateKeyPath = privateKeyPath
        }
    }

    /// Makes a configuration with the defaults above.
    public init(
        host: String = "127.0.0.1", port: Int = 5222, domain: String = "localhost", tls: TLSFiles? = nil,
        requireTLS: Bool = true, limits: RouterLimits = RouterLimits()
    ) {
        self.host = host
        self.port = port
        self.domain = domain.lowercased()
        self.tls = tls
        self.requireTLS = requireTLS
        self.limits = limits
        authFailureDelay = .seconds(1)
        maxAuthAttempts = 3
        maxFailedLoginsPerAddress = 20
        maxFailedLoginsPerAccount = 50
        failedLoginWindow = .seconds(60)
    }

    /// Checks the configuration; the error says what to fix.
    public func validate() throws(RouterError) {
        guard (0...65535).contains(port) else {
            throw RouterError(.configuration, "port \(port) is not in 0...65535")
        }
        guard !domain.isEmpty, !domain.contains("@"), !domain.contains("/") else {
            throw RouterError(.configuration, "domain '\(domain)' is not a valid XMPP domain (no @ or /)")
        }
        if let tls {
            for path in [tls.certificatePath, tls.privateKeyPath] where !FileManager.default.isReadableFile(atPath: path) {
                throw RouterError(.configuration, "TLS file \(path) does not exist or is not readable")
            }
        }
        try limits.validate()
    }
}

/// Per-connection and global limits. A client that breaks one gets a stream error and is
/// disconnected; other clients are not affected.
public struct RouterLimits: Sendable, Hashable {
    /// Largest stanza accepted, in bytes (a larger one: `policy-violation`). Default 1 MiB.
    public var maxStanzaBytes: Int
    /// Most simultaneous connections (the next one: `resource-constraint`). Default 10,000.
    public var maxConnections: Int
    /// Most simultaneous connections from one IP address (the next one: `policy-violation`),
    /// so one host cannot take every slot. Default 512.
    public var maxConnectionsPerAddress: Int
    /// Stanzas per second one connection may send on average (`policy-violation` beyond);
    /// `0` disables the limit. Default 10,000.
    public var stanzasPerSecond: Int
    /// Stanzas a connection may send in a burst above the average rate. Default 20,000.
    public var stanzaBurst: Int
    /// Time a connection has to authenticate (`connection-timeout` after). Default 30 s.
    public var authTimeout: Duration
    /// Elements a connection may send before its resource is bound (STARTTLS, SASL, bind take
    /// fewer than ten; `<abort/>`, stray `<response/>` and the like are counted too):
    /// `policy-violation` beyond. Default 64.
    public var maxElementsBeforeBind: Int
    /// Bytes the router may hold for one connection that is not reading what it is sent (a
    /// slow or stuck reader); past it the connection is closed, so one client cannot grow the
    /// router's memory. While a connection's output is backed up the router also stops
    /// reading from it. Default 16 MiB.
    public var maxOutputBufferBytes: Int

    /// Makes limits with the defaults above.
    public init(
        maxStanzaBytes: Int = 1 << 20, maxConnections: Int = 10_000, stanzasPerSecond: Int = 10_000,
        stanzaBurst: Int = 20_000, authTimeout: Duration = .seconds(30), maxConnectionsPerAddress: Int = 512
    ) {
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.maxStanzaBytes = maxStanzaBytes
        self.maxConnections = maxConnections
        self.stanzasPerSecond = stanzasPerSecond
        self.stanzaBurst = stanzaBurst
        self.authTimeout = authTimeout
        maxElementsBeforeBind = 64
        maxOutputBufferBytes = 16 << 20
    }

    func validate() throws(RouterError) {
        guard maxStanzaBytes >= 1024 else {
            throw RouterError(.configuration, "max stanza size \(maxStanzaBytes) is below 1024 bytes; stream negotiation needs more")
        }
        guard maxConnections > 0 else { throw RouterError(.configuration, "max connections must be positive") }
        guard maxConnectionsPerAddress > 0 else { throw RouterError(.configuration, "max connections per address must be positive") }
        guard stanzasPerSecond >= 0, stanzaBurst >= 0 else {
            throw RouterError(.configuration, "the stanza rate and burst must not be negative")
        }
        guard maxOutputBufferBytes >= 64 << 10 else {
            throw RouterError(.configuration, "the output buffer limit \(maxOutputBufferBytes) is below 64 KiB")
        }
        guard authTimeout > .zero else { throw RouterError(.configuration, "the authentication timeout must be positive") }
    }
}
