import Foundation
import Natter
import Vertebra

/// What a signed-in user can do from the web view, done as that user over XMPP, so that the
/// coordinator's ACL decides (`/security/jobs/cancel|retry`).
public protocol JobOperator: Sendable {
    func cancelJob(_ id: String) async throws -> JobActionResult
    func retryJob(_ id: String) async throws -> JobActionResult
    func stop() async
}

extension Submitter: JobOperator {}

/// Sign-in for the web view's cancel and retry buttons: an XMPP account and its password,
/// checked by logging in to the server as that account.
public struct WebActions: Sendable {
    /// Logs in as `account` (a bare JID) with `password`; throws when the server refuses.
    public var signIn: @Sendable (_ account: String, _ password: String) async throws -> any JobOperator
    /// The domain of accounts given without one (`alice` -> `alice@DOMAIN`).
    public var domain: String

    public init(domain: String, signIn: @escaping @Sendable (_ account: String, _ password: String) async throws -> any JobOperator) {
        self.domain = domain
        self.signIn = signIn
    }
}

/// Signed-in users by session cookie: each with its CSRF token and its XMPP login. Bounded
/// (``maxSessions``; the least recently used goes first) and ended after ``idleTimeout``.
actor WebSessions {
    struct Session: Sendable {
        let account: String
        let csrf: String
        let jobOperator: any JobOperator
        var lastUsed: ContinuousClock.Instant
    }

    static let maxSessions = 64
    static let idleTimeout: Duration = .seconds(30 * 60)
    static let cookie = "vertebra_session"
    private var sessions: [String: Session] = [:]

    func create(account: String, jobOperator: any JobOperator) async -> (id: String, csrf: String)? {
        await expire()
        if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
            await end(oldest.key)
        }
        guard let id = SecureRandom.hex(bytes: 32), let csrf = SecureRandom.hex(bytes: 32) else { return nil }
        sessions[id] = Session(account: account, csrf: csrf, jobOperator: jobOperator, lastUsed: .now)
        return (id, csrf)
    }

    func session(_ id: String?) async -> Session? {
        await expire()
        guard let id, var session = sessions[id] else { return nil }
        session.lastUsed = .now
        sessions[id] = session
        return session
    }

    func end(_ id: String?) async {
        guard let id, let session = sessions.removeValue(forKey: id) else { return }
        await session.jobOperator.stop()
    }

    private func expire() async {
        let now = ContinuousClock.now
        for (id, session) in sessions where now - session.lastUsed > Self.idleTimeout { await end(id) }
    }
}

enum CSRF {
    /// Compares in time independent of where the strings differ.
    static func matches(_ given: String?, _ expected: String) -> Bool {
        guard let given else { return false }
        let a = Array(given.utf8), b = Array(expected.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
