import Foundation
import NIOSSL

/// Everything a client needs to reach and log in to an XMPP server.
///
/// ``validate()`` fails fast with a message that says what to fix; ``XMPPClient`` calls it
/// before connecting.
public struct ClientConfiguration: Sendable {
    /// Whether TLS (STARTTLS) is used.
    public enum TLSPolicy: String, Sendable, CaseIterable {
        /// STARTTLS must succeed; a server that does not offer it is refused. The default.
        case required
        /// STARTTLS when the server offers it, plaintext otherwise.
        case optional
        /// Never TLS. Allowed only for a loopback host (tests, the embedded router).
        case disabled
    }

    /// Where the password comes from. Never from a command line.
    public enum PasswordSource: Sendable {
        /// The first line of a file (which should be readable by its owner only).
        case file(String)
        /// An environment variable.
        case environment(String)
        /// A value held in memory (tests, programs that fetch it from a secret store).
        case value(String)
    }

    /// What `sendAndWait` does while the connection is down.
    public enum OutagePolicy: String, Sendable {
        /// Wait for the reconnection, within the request's timeout.
        case wait
        /// Fail at once with ``NatterError/Code-swift.struct/disconnected``.
        case fail
    }

    /// Server host name or address.
    public var host: String
    /// Server port. Default 5222.
    public var port: Int
    /// The account's JID; a resource in it is asked for at binding (else ``resource``).
    public var jid: JID
    /// The password's source.
    public var password: PasswordSource
    /// The resource to bind when `jid` has none; `nil` lets the server choose.
    public var resource: String?
    /// TLS policy. Default `.required`.
    public var tls: TLSPolicy
    /// PEM file of the CA (or self-signed certificate) to trust; `nil` uses the system's roots.
    public var trustedCAFile: String?
    /// Host name the server certificate must carry; default: the JID's domain.
    public var tlsServerName: String?
    /// Limit for the TCP connection to open.
    public var connectTimeout: Duration
    /// Limit for the whole login (TLS, SASL, bind).
    public var negotiationTimeout: Duration
    /// Default answer timeout of ``XMPPClient/sendAndWait(_:timeout:)``.
    public var requestTimeout: Duration
    /// How long ``XMPPClient/stop()`` waits for the answers to requests being handled.
    public var stopAnswerLimit: Duration = .seconds(2)
    /// Ping the server after this much inbound silence; `nil` disables the keepalive.
    public var pingInterval: Duration?
    /// How long a keepalive ping may take before the link is declared dead.
    public var pingTimeout: Duration
    /// Reconnection after a lost connection.
    public var reconnect: ReconnectPolicy
    /// Largest stanza accepted from the server.
    public var maxStanzaBytes: Int
    /// Use XEP-0198 stream management where the server offers it.
    public var streamManagement: Bool
    /// What `sendAndWait` does while disconnected.
    public var whileDisconnected: OutagePolicy
    /// Requests (IQ `get`/`set` to a registered responder) one peer may have in progress at
    /// once; more are answered `resource-constraint` (type `wait`: retry later) at once, so
    /// no peer can make the client start unbounded work.
    public var maxRequestsPerPeer: Int

    /// Makes a configuration with the defaults above.
    public init(
        host: String, port: Int = 5222, jid: JID, password: PasswordSource, resource: String? = nil,
        tls: TLSPolicy = .required, trustedCAFile: String? = nil
    ) {
        self.host = host
        self.port = port
        self.jid = jid
        self.password = password
        self.resource = resource
        self.tls = tls
        self.trustedCAFile = trustedCAFile
        tlsServerName = nil
        connectTimeout = .seconds(10)
        negotiationTimeout = .seconds(20)
        requestTimeout = .seconds(30)
        pingInterval = .seconds(60)
        pingTimeout = .seconds(10)
        reconnect = ReconnectPolicy()
        maxStanzaBytes = 1 << 20
        streamManagement = true
        whileDisconnected = .wait
        maxRequestsPerPeer = 1024
    }

    /// Whether `host` is a loopback address.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The resource asked for at binding.
    var requestedResource: String? { jid.resource ?? resource }

    /// Checks the configuration; the error says what to fix.
    public func validate() throws {
        guard (1...65535).contains(port) else {
            throw NatterError(.configuration, "port \(port) is not in 1...65535")
        }
        guard jid.local != nil else {
            throw NatterError(.configuration, "JID \(jid) has no local part; use user@domain")
        }
        if tls == .disabled && !isLoopback {
            throw NatterError(
                .configuration,
                "TLS may be disabled only for a loopback host, not \(host); use --tls optional or required")
        }
        if let trustedCAFile, !FileManager.default.isReadableFile(atPath: trustedCAFile) {
            throw NatterError(.configuration, "CA file \(trustedCAFile) does not exist or is not readable")
        }
        // Found now, not as a TLS failure at the first connection (which read as "unreachable").
        if let trustedCAFile, (try? NIOSSLCertificate.fromPEMFile(trustedCAFile))?.isEmpty ?? true {
            throw NatterError(.configuration, "CA file \(trustedCAFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        _ = try readPassword()
    }

    /// Reads the password from its source.
    public func readPassword() throws -> String {
        switch password {
        case .value(let value):
            guard !value.isEmpty else { throw NatterError(.configuration, "the password is empty") }
            return value
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw NatterError(.configuration, "environment variable \(name) holding the password is not set")
            }
            return value
        case .file(let path):
            try SecretFile.checkPrivate(path, what: "password file")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw NatterError(.configuration, "password file \(path) does not exist or is not readable")
            }
            let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            guard !line.isEmpty else { throw NatterError(.configuration, "password file \(path) is empty") }
            return line
        }
    }
}

/// Exponential backoff with jitter for reconnection.
public struct ReconnectPolicy: Sendable {
    /// Whether to reconnect at all.
    public var enabled: Bool
    /// Delay before the first attempt.
    public var initialDelay: Duration
    /// Longest delay between attempts.
    public var maximumDelay: Duration
    /// Growth factor per failed attempt.
    public var multiplier: Double
    /// Random spread: each delay is scaled by a factor in `1 - jitter ... 1 + jitter`.
    public var jitter: Double

    /// Makes a policy: 200 ms doubling up to 30 s, ±50 % jitter.
    public init(
        enabled: Bool = true, initialDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(30),
        multiplier: Double = 2, jitter: Double = 0.5
    ) {
        self.enabled = enabled
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = max(1, multiplier)
        self.jitter = min(max(0, jitter), 1)
    }

    /// The delay before attempt `attempt` (0-based).
    public func delay(forAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let base = initialDelay.secondsValue * pow(multiplier, Double(min(attempt, 30)))
        let capped = min(base, maximumDelay.secondsValue)
        let factor = jitter == 0 ? 1 : Double.random(in: (1 - jitter)...(1 + jitter), using: &random)
        return .milliseconds(Int64(capped * factor * 1000))
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
