import VertebraXML

/// An operation a worker performs (named so it does not clash with Foundation's `Operation`): a `Codable` value carrying the arguments, with a `Codable`
/// result.
///
/// ```swift
/// struct Resize: VertebraOperation {
///     static let path: Resource = "/image/resize"
///     static let isRetryable = true
///     struct Result: Codable, Sendable { var output: Resource }
///     var source: Resource
///     var width: Int
/// }
/// ```
public protocol VertebraOperation: Codable, Sendable {
    /// The result type; `final` (or the `data` chunks of a streaming operation) carries it.
    associatedtype Result: Codable & Sendable
    /// The operation's path, e.g. `/image/resize`.
    static var path: Resource { get }
    /// Whether a lost attempt may be run again on another worker. Default `false`: only mark
    /// operations retryable when running them twice is harmless.
    static var isRetryable: Bool { get }
    /// The deadline used when the dispatcher gives none; `nil` for none.
    static var defaultDeadline: Duration? { get }
}

extension VertebraOperation {
    public static var isRetryable: Bool { false }
    public static var defaultDeadline: Duration? { nil }

    /// Checks the declaration; the error says what to fix. Workers call this at registration.
    public static func validateDeclaration() throws(ProtocolError) {
        guard !path.components.isEmpty else {
            throw ProtocolError("\(Self.self): path is empty; give it a path such as /image/resize")
        }
        guard path.components.first != "security" else {
            throw ProtocolError("\(Self.self): \(path) is reserved for the coordinator's service operations")
        }
        if let deadline = defaultDeadline, deadline <= .zero {
            throw ProtocolError("\(Self.self): defaultDeadline must be positive, not \(deadline)")
        }
    }
}
