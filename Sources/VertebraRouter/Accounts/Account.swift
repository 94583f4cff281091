import Foundation
import Natter

/// One account: its salted SCRAM credentials for both hashes, never the password.
public struct Account: Sendable, Hashable, Codable {
    /// The user name (the JID's local part), lowercased.
    public let username: String
    /// Credentials for SCRAM-SHA-1.
    public let sha1: SCRAMCredentials
    /// Credentials for SCRAM-SHA-256.
    public let sha256: SCRAMCredentials

    /// Derives an account from a password, with fresh random salts.
    public init(username: String, password: String, iterations: Int = 4096) throws(RouterError) {
        let local = try Self.normalized(username)
        guard !password.isEmpty else { throw RouterError(.accounts, "the password is empty") }
        do {
            self.username = local
            sha1 = try SCRAMCredentials.derive(password: password, hash: .sha1, iterations: iterations)
            sha256 = try SCRAMCredentials.derive(password: password, hash: .sha256, iterations: iterations)
        } catch {
            throw RouterError(.accounts, "cannot derive credentials: \(error)")
        }
    }

    /// `username` as accounts store it (a JID's local part, lowercased); throws when no JID can
    /// have it.
    public static func normalized(_ username: String) throws(RouterError) -> String {
        guard let jid = JID(local: username, domain: "example.invalid"), let local = jid.local else {
            throw RouterError(.accounts, "'\(visible(username))' is not a valid user name (no @ / : ' \" & < >, spaces, control or invisible characters; at most 1023 bytes)")
        }
        return local
    }

    /// The credentials for `hash`.
    public func credentials(for hash: SCRAMHash) -> SCRAMCredentials {
        hash == .sha1 ? sha1 : sha256
    }

    /// Whether `password` is this account's password (for SASL PLAIN): derives the SCRAM keys
    /// with the stored salt and compares them, so no plaintext is ever stored.
    public func matches(password: String) -> Bool {
        guard let salt = Data(base64Encoded: sha256.salt),
            let derived = try? SCRAMCredentials.derive(
                password: password, hash: .sha256, iterations: sha256.iterations, salt: Array(salt))
        else { return false }
        let expected = Array(sha256.storedKey.utf8)
        let actual = Array(derived.storedKey.utf8)
        guard expected.count == actual.count else { return false }
        // Constant time: no early exit on the first differing byte.
        return zip(expected, actual).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// `text` with control and invisible characters written as `\u{…}`, to print it safely.
func visible(_ text: String) -> String {
    text.unicodeScalars.map { scalar in
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        default: String(scalar)
        }
    }.joined()
}
