import Foundation
@testable import VertebraWeb

extension WebView {
    /// Serves on the options' port (0: a free one) until the task is cancelled; returns the task
    /// and the port once it listens.
    func startForTest() async throws -> (Task<Void, any Error>, Int) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = Task { try await run(stopOnSignals: false) { continuation.yield($0) } }
        for await port in ports { return (server, port) }
        throw CancellationError()
    }
}
