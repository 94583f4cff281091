import Foundation
import Testing

/// `vertebra bench` stopped by a signal leaves nothing behind.
@Suite struct BenchCommandTests {
    @Test func aBenchStoppedBySIGTERMRemovesItsScratchFoldersAndSaysSo() async throws {
        let parent = try TemporaryDirectory()
        let directory = try TemporaryDirectory()
        let process = Process()
        process.executableURL = try Vertebra.binary()
        process.arguments = ["bench", "journal", "--seconds", "30", "--submitters", "1", "--durability", "normal", "--directory", parent.url.path]
        process.standardOutput = FileHandle.nullDevice
        let err = directory.path("stderr")
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { exited.continuation.yield($0.terminationStatus) }
        try process.run()
        // Wait until it writes a journal in its scratch folder.
        var journals: [String] = []
        for _ in 0..<200 where journals.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: parent.url.path)) ?? []
            journals = folders.flatMap { (try? FileManager.default.contentsOfDirectory(atPath: parent.path($0))) ?? [] }
        }
        #expect(!journals.isEmpty, "no journal appeared under \(parent.url.path)")
        process.terminate()
        var status: Int32 = -1
        for await code in exited.stream { status = code; break }
        #expect(status == 128 + SIGTERM)
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.url.path).isEmpty)
        #expect(try String(contentsOfFile: err, encoding: .utf8).contains("interrupted: stopped the workers and removed the scratch folders"))
    }
}
