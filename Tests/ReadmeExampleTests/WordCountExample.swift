import Natter
import Vertebra
import VertebraJournal
import VertebraXML

/// An operation is a Codable struct: its fields are the arguments, `Result` what it returns.
struct WordCount: VertebraOperation {
    static let path: Resource = "/text/wordcount"
    static let isRetryable = true  // counting twice is harmless, so a lost attempt may run again
    static let defaultDeadline: Duration? = .seconds(30)

    struct Result: Codable, Sendable, Equatable {
        var words: Int
        var lines: Int
    }

    var text: String
}

/// A worker hosting it: register the handler, then start (connects, resumes journalled work,
/// advertises to the coordinator).
func startWordCountWorker(_ configuration: ClientConfiguration, coordinator: JID, journalPath: String) async throws -> Worker {
    let journal = try ExchangeJournal(path: journalPath)
    let worker = Worker(
        client: XMPPClient(configuration: configuration), journal: journal,
        options: Worker.Options(coordinator: coordinator, maxConcurrentJobs: 8))
    try await worker.register(WordCount.self) { operation, context in
        context.logger.info("counting words")
        let text = operation.text
        return WordCount.Result(words: text.split(whereSeparator: \.isWhitespace).count, lines: text.split(separator: "\n").count)
    }
    try await worker.start()
    return worker
}

/// Dispatching from Swift: the coordinator picks a live worker, journals every step, retries a
/// lost attempt (the operation is retryable), and returns the typed result.
func countWords(_ text: String, with coordinator: Coordinator) async throws -> WordCount.Result {
    try await coordinator.dispatch(WordCount(text: text))
}
