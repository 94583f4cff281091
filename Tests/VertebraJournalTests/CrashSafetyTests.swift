import Foundation
import Testing
import VertebraJournal

/// A real writer process killed with SIGKILL at random points loses nothing it acknowledged.
@Suite struct CrashSafetyTests {
    /// Starts `vertebra jobs _crash-writer`, kills it at a random point, and returns the tokens it
    /// acknowledged (printed after each write returned) before dying.
    private func killedWriter(journal: String, durability: Durability, killAfterAcks: Int?, killAfterMilliseconds: Int,
                              directory: TemporaryDirectory, iteration: Int) async throws -> [String] {
        let out = directory.path("writer-\(iteration).out")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = try Vertebra.binary()
        process.arguments = ["jobs", "_crash-writer", "--journal", journal, "--durability", durability.rawValue,
                             "--submitters", "16"]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = FileHandle.nullDevice
        let exited = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exited.continuation.yield(); exited.continuation.finish() }
        try process.run()
        let started = ContinuousClock.now
        // Kill after a number of acknowledgements, or after some time (possibly while opening).
        while true {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if let killAfterAcks {
                if text.split(separator: "\n").count > killAfterAcks { break }
            } else if ContinuousClock.now - started >= .milliseconds(killAfterMilliseconds) {
                break
            }
            guard ContinuousClock.now - started < .seconds(60), process.isRunning else {
                Issue.record("writer did not produce enough acknowledgements (output: \(text.prefix(200)))")
                break
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        kill(process.processIdentifier, SIGKILL)
        for await _ in exited.stream {}
        #expect(process.terminationReason == .uncaughtSignal || !process.isRunning)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        // Only complete lines count: a line cut by the kill was never fully acknowledged.
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .filter { $0.hasPrefix("ack ") }.map { String($0.dropFirst(4)) }
    }

    @Test func everyAcknowledgedRecordSurvivesSIGKILLAtRandomPoints() async throws {
        let directory = try TemporaryDirectory()
        let journal = directory.path("journal.sqlite")
        var generator = SystemRandomNumberGenerator()
        var acknowledged: [String] = []
        // Same journal across iterations: each run also recovers what the previous kill left.
        let plan: [(Durability, Int?)] = [
            (.full, nil), (.full, Int.random(in: 1...50, using: &generator)),
            (.normal, Int.random(in: 50...2000, using: &generator)), (.full, Int.random(in: 50...600, using: &generator)),
            (.normal, nil), (.normal, Int.random(in: 1...3000, using: &generator)),
        ]
        for (iteration, (durability, acks)) in plan.enumerated() {
            let tokens = try await killedWriter(
                journal: journal, durability: durability, killAfterAcks: acks,
                killAfterMilliseconds: Int.random(in: 0...150, using: &generator), directory: directory, iteration: iteration)
            acknowledged += tokens
            // A kill before the writer created the file: nothing was acknowledged.
            guard FileManager.default.fileExists(atPath: journal) else {
                #expect(acknowledged.isEmpty, "iteration \(iteration): acknowledged without a journal file")
                continue
            }
            let reader = try JournalReader(path: journal)
            #expect(try await reader.quickCheck(), "iteration \(iteration)")
            var lost: [String] = []
            for token in acknowledged where try await !reader.contains(job: token) { lost.append(token) }
            #expect(lost.isEmpty, "iteration \(iteration) (\(durability), kill after \(acks.map(String.init) ?? "time")): lost \(lost.count) of \(acknowledged.count)")
        }
        #expect(acknowledged.count >= 100, "the kills should come after real work")
        // The journal still opens for writing after all that.
        let writer = try ExchangeJournal(path: journal)
        try await writer.write(.createJob(NewJob(token: newToken(), operation: "/after/crash")))
        await writer.close()
    }
}
