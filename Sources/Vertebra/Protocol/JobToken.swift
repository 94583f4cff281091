import Foundation
import Natter

/// A conversation token: `A` names a job (32 hex digits, made by the requester), `A:B` one
/// attempt of it (`B` made by the performer). A retry of the same job to another worker keeps `A`
/// and gets a new `B`.
public struct JobToken: Sendable, Hashable, CustomStringConvertible {
    /// The job part, `A`.
    public let job: String
    /// The attempt part, `B`, once a performer accepted.
    public let attempt: String?

    /// Parses `A` or `A:B`; each part 1–64 characters of `[0-9A-Za-z_-]` (what the XSD allows).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy(JobToken.isValidPart) else { return nil }
        job = parts[0]
        attempt = parts.count == 2 ? parts[1] : nil
    }

    private init(job: String, attempt: String?) {
        self.job = job
        self.attempt = attempt
    }

    /// A fresh job token `A`: 32 hex digits, the first 4 the second it was made (modulo 2^16,
    /// so every journal index keyed by job token takes new jobs in one place instead of on a
    /// random page each), the other 28 random (112 bits; the 12 digits `vertebra jobs` shows
    /// keep 32 random bits).
    public static func newJob(now: Date = Date()) -> JobToken? {
        let second = UInt16(truncatingIfNeeded: Int64(now.timeIntervalSince1970.rounded(.down)))
        let prefix = String(second, radix: 16)
        return SecureRandom.hex(bytes: 14).map {
            JobToken(job: String(repeating: "0", count: 4 - prefix.count) + prefix + $0, attempt: nil)
        }
    }

    /// This job with a fresh attempt part `B` (what a performer answers an `op` with).
    public func newAttempt() -> JobToken? {
        JobToken.randomHex().map { JobToken(job: job, attempt: $0) }
    }

    /// The job token `A` alone.
    public var jobOnly: JobToken { JobToken(job: job, attempt: nil) }

    public var description: String { attempt.map { "\(job):\($0)" } ?? job }

    private static func isValidPart(_ part: String) -> Bool {
        (1...64).contains(part.utf8.count)
            && part.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
    }

    private static func randomHex() -> String? {
        SecureRandom.hex(bytes: 16)
    }
}

/// Which workers an operation goes to.
public enum Scope: String, Sendable, Hashable, Codable, CaseIterable {
    /// The JIDs given by the submitter.
    case direct
    /// One capable worker; fail over to the next on refusal or loss.
    case single
    /// Every capable worker; results gathered per worker.
    case all
}
