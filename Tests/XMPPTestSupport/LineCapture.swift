import Logging
import Synchronization

/// A log handler that keeps each line (`[level] message metadata`), for tests that look for or
/// count what was logged.
public struct LineCapture: LogHandler {
    public final class Lines: Sendable {
        private let lines = Mutex<[String]>([])

        public init() {}

        public var all: [String] { lines.withLock { $0 } }

        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    public let lines: Lines
    public var logLevel: Logger.Level = .trace
    public var metadata: Logger.Metadata = [:]

    public init(_ lines: Lines) {
        self.lines = lines
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        lines.append("[\(event.level)] \(event.message) \(all)")
    }
}
