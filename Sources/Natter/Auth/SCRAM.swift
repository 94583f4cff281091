import Foundation

/// The client side of SCRAM (RFC 5802, RFC 7677), without channel binding.
///
/// It verifies the server's signature, so a server that does not know the password (or a
/// man in the middle) is detected, not just a wrong password.
public struct SCRAMClient: Sendable {
    /// Fewest PBKDF2 iterations accepted from a server (RFC 7677 recommends at least 4096).
    public static let minimumIterations = 4096
    /// Most iterations accepted, so a hostile server cannot make the client spin.
    public static let maximumIterations = 10_000_000

    private let hash: SCRAMHash
    private let password: [UInt8]
    private let clientFirstBare: String
    private let clientNonce: String
    private var expectedServerSignature: [UInt8]?

    /// Starts an exchange for `username`; `nonce` is for tests (RFC vectors), random otherwise.
    public init(hash: SCRAMHash, username: String, password: String, nonce: String? = nil) throws {
        guard let nonce = nonce ?? SCRAMClient.makeNonce() else {
            throw NatterError(.authenticationFailed, "the system random number generator failed")
        }
        self.hash = hash
        self.password = Array(SCRAMClient.prepare(password).utf8)
        clientNonce = nonce
        clientFirstBare = "n=\(SCRAMClient.escape(SCRAMClient.prepare(username))),r=\(nonce)"
    }

    /// The first message (`n,,n=user,r=nonce`).
    public var clientFirstMessage: String { "n,," + clientFirstBare }

    /// Answers the server's first message with the client's final message (with the proof).
    public mutating func respond(toServerFirst message: String) throws -> String {
        let fields = try SCRAMClient.fields(message)
        guard let nonce = fields["r"], let saltText = fields["s"], let iterationText = fields["i"] else {
            throw NatterError(.protocolViolation, "SCRAM server-first message lacks r, s or i: \(message)")
        }
        guard nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw NatterError(.serverNotVerified, "the server's SCRAM nonce does not extend ours")
        }
        guard let salt = Data(base64Encoded: saltText), let iterations = Int(iterationText) else {
            throw NatterError(.protocolViolation, "SCRAM salt or iteration count is malformed")
        }
        guard (SCRAMClient.minimumIterations...SCRAMClient.maximumIterations).contains(iterations) else {
            throw NatterError(
                .serverNotVerified,
                "the server asks for \(iterations) SCRAM iterations; accepted: \(SCRAMClient.minimumIterations)...\(SCRAMClient.maximumIterations)")
        }
        guard let salted = hash.pbkdf2(password: password, salt: Array(salt), iterations: iterations) else {
            throw NatterError(.authenticationFailed, "PBKDF2 failed in libcrypto")
        }
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(message),\(withoutProof)".utf8)
        let clientKey = hash.hmac(key: salted, Array("Client Key".utf8))
        let signature = hash.hmac(key: hash.hash(clientKey), authMessage)
        let proof = zip(clientKey, signature).map { $0 ^ $1 }
        let serverKey = hash.hmac(key: salted, Array("Server Key".utf8))
        expectedServerSignature = hash.hmac(key: serverKey, authMessage)
        return withoutProof + ",p=" + Data(proof).base64EncodedString()
    }

    /// Checks the server's final message; throws unless it proves the server knows the password.
    public func verify(serverFinal message: String) throws {
        let fields = try SCRAMClient.fields(message)
        if let error = fields["e"] {
            throw NatterError(.authenticationFailed, "the server refused the SCRAM proof: \(error)")
        }
        guard let expected = expectedServerSignature, let text = fields["v"],
            let signature = Data(base64Encoded: text), Array(signature) == expected
        else {
            throw NatterError(.serverNotVerified, "the server's SCRAM signature is wrong: it does not know the password")
        }
    }

    // MARK: Helpers

    static func makeNonce() -> String? {
        SecureRandom.bytes(24).map { Data($0).base64EncodedString() }
    }

    /// `=` and `,` in a user name are escaped (RFC 5802 §5.1).
    static func escape(_ name: String) -> String {
        name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }

    /// An approximation of SASLprep (RFC 4013): compatibility normalization (NFKC), which is
    /// exact for the ASCII and common Unicode passwords people use.
    static func prepare(_ text: String) -> String {
        text.precomposedStringWithCompatibilityMapping
    }

    static func fields(_ message: String) throws -> [String: String] {
        var fields: [String: String] = [:]
        for part in message.split(separator: ",", omittingEmptySubsequences: false) {
            guard part.count >= 2, part.dropFirst().first == "=" else {
                throw NatterError(.protocolViolation, "malformed SCRAM message: \(message)")
            }
            fields[String(part.prefix(1))] = String(part.dropFirst(2))
        }
        return fields
    }
}

/// What a server stores for a SCRAM account: never the password itself (RFC 5802 §3).
public struct SCRAMCredentials: Sendable, Hashable, Codable {
    /// The hash these credentials are for.
    public let mechanism: String
    /// The random salt, base64.
    public let salt: String
    /// PBKDF2 iterations.
    public let iterations: Int
    /// `H(ClientKey)`, base64.
    public let storedKey: String
    /// `HMAC(SaltedPassword, "Server Key")`, base64.
    public let serverKey: String

    /// Derives credentials from a password with a fresh random salt.
    public static func derive(
        password: String, hash: SCRAMHash, iterations: Int = 4096, salt: [UInt8]? = nil
    ) throws -> SCRAMCredentials {
        guard let salt = salt ?? SecureRandom.bytes(16) else {
            throw NatterError(.configuration, "the system random number generator failed")
        }
        let prepared = Array(SCRAMClient.prepare(password).utf8)
        guard let salted = hash.pbkdf2(password: prepared, salt: salt, iterations: iterations) else {
            throw NatterError(.configuration, "PBKDF2 failed in libcrypto")
        }
        let clientKey = hash.hmac(key: salted, Array("Client Key".utf8))
        return SCRAMCredentials(
            mechanism: hash.mechanism, salt: Data(salt).base64EncodedString(), iterations: iterations,
            storedKey: Data(hash.hash(clientKey)).base64EncodedString(),
            serverKey: Data(hash.hmac(key: salted, Array("Server Key".utf8))).base64EncodedString())
    }
}

/// The server side of SCRAM, checking a client's proof against stored ``SCRAMCredentials``
/// (for the embedded router and for tests).
public struct SCRAMServer: Sendable {
    private let hash: SCRAMHash
    private let lookup: @Sendable (String) -> SCRAMCredentials?
    private let fakeSaltKey: [UInt8]
    private var clientFirstBare = ""
    private var serverFirst = ""
    private var nonce = ""
    private var credentials: SCRAMCredentials?
    /// The authenticated user name, after ``verify(clientFinal:)`` succeeded.
    public private(set) var username: String?

    /// Starts an exchange; `lookup` finds the stored credentials of a user name.
    /// `fakeSaltKey` keys the salt an unknown user is shown: a secret the server keeps, so that
    /// nobody can tell a made-up salt from a real one by computing it (user enumeration). Empty:
    /// a random key for this process.
    public init(hash: SCRAMHash, fakeSaltKey: [UInt8] = [], lookup: @escaping @Sendable (String) -> SCRAMCredentials?) {
        self.hash = hash
        self.lookup = lookup
        self.fakeSaltKey = fakeSaltKey.isEmpty ? Self.processKey : fakeSaltKey
    }

    private static let processKey: [UInt8] = {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }()

    /// Answers the client's first message; `serverNonce` is for tests.
    public mutating func respond(toClientFirst message: String, serverNonce: String? = nil) throws -> String {
        // "n,,": no channel binding; "y,,": the client could bind but the server offers no
        // -PLUS mechanism (RFC 5802 §6), as slixmpp sends over TLS. Both are accepted.
        guard message.hasPrefix("n,,") || message.hasPrefix("y,,") else {
            throw NatterError(.authenticationFailed, "channel binding and authorization identities are not supported")
        }
        gs2Header = String(message.prefix(3))
        clientFirstBare = String(message.dropFirst(3))
        let fields = try SCRAMClient.fields(clientFirstBare)
        guard let name = fields["n"], let clientNonce = fields["r"], !clientNonce.isEmpty else {
            throw NatterError(.protocolViolation, "malformed SCRAM client-first message")
        }
        let user = name.replacingOccurrences(of: "=2C", with: ",").replacingOccurrences(of: "=3D", with: "=")
        username = nil
        credentials = lookup(user)
        guard let suffix = serverNonce ?? SCRAMClient.makeNonce() else {
            throw NatterError(.authenticationFailed, "the system random number generator failed")
        }
        nonce = clientNonce + suffix
        // An unknown user gets a plausible challenge, so user names cannot be probed.
        let salt = credentials?.salt ?? Data(hash.hmac(key: fakeSaltKey, Array(user.utf8)).prefix(16)).base64EncodedString()
        let iterations = credentials?.iterations ?? 4096
        serverFirst = "r=\(nonce),s=\(salt),i=\(iterations)"
        pendingUser = user
        return serverFirst
    }

    private var pendingUser = ""
    private var gs2Header = "n,,"

    /// Checks the client's proof; returns the server-final message (`v=...`) on success and
    /// throws ``NatterError/Code-swift.struct/authenticationFailed`` otherwise.
    public mutating func verify(clientFinal message: String) throws -> String {
        let fields = try SCRAMClient.fields(message)
        guard let proofText = fields["p"], let proof = Data(base64Encoded: proofText), fields["r"] == nonce,
            fields["c"] == Data(gs2Header.utf8).base64EncodedString(), let credentials, credentials.mechanism == hash.mechanism,
            let storedKey = Data(base64Encoded: credentials.storedKey), let serverKey = Data(base64Encoded: credentials.serverKey)
        else {
            throw NatterError(.authenticationFailed, "not-authorized")
        }
        let withoutProof = message.components(separatedBy: ",p=").first ?? ""
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
        let signature = hash.hmac(key: Array(storedKey), authMessage)
        guard proof.count == signature.count else { throw NatterError(.authenticationFailed, "not-authorized") }
        let clientKey = zip(proof, signature).map { $0 ^ $1 }
        guard hash.hash(clientKey) == Array(storedKey) else {
            throw NatterError(.authenticationFailed, "not-authorized")
        }
        username = pendingUser
        return "v=" + Data(hash.hmac(key: Array(serverKey), authMessage)).base64EncodedString()
    }
}
