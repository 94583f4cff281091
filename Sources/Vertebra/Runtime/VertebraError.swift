import Natter

/// Why a job (or a service request) did not succeed, as the user sees it.
public struct VertebraError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// No worker offers the operation (or matches the resources).
        public static let noWorker = Code("no-worker")
        /// The performer does not know the operation.
        public static let unknownOperation = Code("unknown-operation")
        /// The arguments do not decode as the operation's type.
        public static let badRequest = Code("bad-request")
        /// The submitter may not dispatch this operation.
        public static let notAuthorized = Code("not-authorized")
        /// Every capable worker refused (`nack`), or kept refusing until the deadline.
        public static let refused = Code("refused")
        /// The handler failed.
        public static let failed = Code("failed")
        /// The worker was lost during a non-retryable attempt, or retries ran out.
        public static let workerLost = Code("worker-lost")
        public static let cancelled = Code("cancelled")
        public static let deadlineExceeded = Code("deadline-exceeded")
        /// The coordinator (or peer) could not be reached or answered something unexpected.
        public static let unreachable = Code("unreachable")
        /// The results did not decode as the operation's result type.
        public static let badResult = Code("bad-result")
        /// The agent was stopped.
        public static let shutDown = Code("shut-down")
        /// The worker stayed present but said nothing about its attempt for longer than the
        /// coordinator's silence limit, and a status probe did not show it running.
        public static let workerSilent = Code("worker-silent")
        /// A step could not be made durable in the journal (disk full, I/O error): the job
        /// ended rather than go on unrecorded.
        public static let journalFailed = Code("journal-failed")
    }

    public let code: Code
    public let message: String

    /// The codes an `error` element may carry (its `code` attribute): a closed set; anything
    /// else reads as ``Code/failed``.
    static let wireCodes: [Code] = [
        .noWorker, .unknownOperation, .badRequest, .notAuthorized, .refused, .failed, .workerLost, .cancelled,
        .deadlineExceeded, .badResult, .workerSilent, .journalFailed,
    ]

    /// The error of an `error` element: its `code` attribute names the code; its message,
    /// `code: text`, gives the text. A 0.4 peer sends no code: then the message is read for one.
    init(wireCode: String?, message: String, kind: ProtocolMessage.ErrorKind) {
        guard kind != .cancel, let wireCode else {
            self = Self.parse(message, kind: kind)
            return
        }
        let code = Self.wireCodes.first { $0.rawValue == wireCode } ?? .failed
        let prefix = wireCode + ": "
        self.init(code, message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message)
    }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The error a peer's stanza error stands for.
    static func from(_ error: StanzaError, peer: String) -> VertebraError {
        let text = error.text ?? error.condition.rawValue
        switch error.condition {
        case .featureNotImplemented: return VertebraError(.unknownOperation, "\(peer): \(text)")
        case .badRequest: return VertebraError(.badRequest, "\(peer): \(text)")
        case .notAuthorized, .forbidden: return VertebraError(.notAuthorized, "\(peer): \(text)")
        case .itemNotFound: return VertebraError(.noWorker, "\(peer): \(text)")
        case .notAllowed, .conflict: return VertebraError(.refused, "\(peer): \(text)")
        // The server would not deliver the request as sent (too large): it was not taken.
        case .policyViolation, .notAcceptable: return VertebraError(.refused, "\(peer) (or its server): \(text)")
        default: return VertebraError(.unreachable, "\(peer) answered \(error)")
        }
    }

    /// Reads the `code: message` form the message of an `error` without a `code` carries (a 0.4
    /// peer's, or one journalled before codes were data).
    static func parse(_ text: String, kind: ProtocolMessage.ErrorKind) -> VertebraError {
        if kind == .cancel {
            let prefix = Code.cancelled.rawValue + ": "
            return VertebraError(.cancelled, text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text)
        }
        if let colon = text.firstIndex(of: ":") {
            let code = String(text[..<colon])
            if let match = wireCodes.first(where: { $0.rawValue == code }) {
                return VertebraError(match, String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
        }
        return VertebraError(.failed, text)
    }
}

import Foundation
