import Logging
import Tracing
import Natter
import VertebraXML

/// What a handler knows about the job it runs, and how it reports progress.
public struct JobContext: Sendable {
    /// The job's id (token `A`), the same on every agent and in `vertebra jobs`.
    public let jobID: String
    /// This attempt (`A:B`).
    public let attempt: String
    /// Who sent the `op` (the coordinator).
    public let requester: JID
    /// When the job must be finished; the handler's task is cancelled then.
    public let deadline: ContinuousClock.Instant?
    /// A logger with the job id attached.
    public let logger: Logger
    /// The handler's span (`vertebra.handler`), a child of the coordinator's attempt span (and
    /// through it of the submitter's) when the `op` carried a trace context; the handler runs
    /// with it as the current context, so its own spans nest under it.
    public let span: (any Span)?
    let progressSink: @Sendable (JobProgress) async throws -> Void

    /// Whether the job was cancelled (by the requester or its deadline). Handlers that loop
    /// should check it, or call `try Task.checkCancellation()`.
    public var isCancelled: Bool { Task.isCancelled }

    /// Reports progress to the requester (a `data` chunk named `vertebra-progress`, which
    /// coordinators show as progress rather than a result).
    public func reportProgress(_ message: String, done: Int? = nil, total: Int? = nil) async throws {
        try await progressSink(JobProgress(message: message, done: done, total: total))
    }
}

/// A progress report, as carried in a `data` chunk.
public struct JobProgress: Codable, Sendable, Equatable {
    public var message: String
    public var done: Int?
    public var total: Int?

    /// The name of the value a progress chunk carries.
    public static let valueName = "vertebra-progress"

    /// Reads a progress report from a `data` chunk, if that is what it is.
    public init?(chunk values: [XElement]) {
        guard values.count == 1, values[0][attribute: "name"] == Self.valueName,
            let progress = try? TypedValueDecoder().decode(JobProgress.self, from: values[0])
        else { return nil }
        self = progress
    }

    public init(message: String, done: Int? = nil, total: Int? = nil) {
        self.message = message
        self.done = done
        self.total = total
    }

    var chunk: [XElement] {
        (try? TypedValueEncoder().encode(self, named: Self.valueName)).map { [$0] } ?? []
    }
}

/// Results of a streaming operation: each `yield` sends one `data` chunk and returns once the
/// requester acknowledged it.
public struct ResultStream<Element: Encodable & Sendable>: Sendable {
    let sink: @Sendable ([XElement]) async throws -> Void

    /// Sends one result.
    public func yield(_ element: Element) async throws {
        let values: [XElement]
        do {
            values = try TypedValueEncoder().encodeFields(element)
        } catch {
            throw OperationFailure("could not encode a result of type \(Element.self): \(error)", fatal: true)
        }
        try await sink(values)
    }
}

/// Thrown by a handler to fail its job with a message. `fatal` failures are never retried;
/// others are retried elsewhere when the operation is retryable.
public struct OperationFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var fatal: Bool

    public init(_ message: String, fatal: Bool = false) {
        self.message = message
        self.fatal = fatal
    }

    public var description: String { message }
}
