import Foundation
import Testing

/// `vertebra demo` as a newcomer runs it (non-interactive): it exits 0 with every job in its
/// expected state, and stops every process it started.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DemoTests {
    @Test func theDemoRunsEveryJobToItsExpectedStateAndCleansUp() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-demo-test-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output) = try await Self.demo(sets: 6, in: directory)
        #expect(status == 0, "\(output)")
        #expect(output.contains("all 13 jobs ended as expected"), "\(output)")
        #expect(output.contains("refused: /etc is outside the allowed root"))
        #expect(output.contains("cancelled"))
        #expect(output.contains("vertebra jobs --journal"))
        #expect(output.contains("web view     http://127.0.0.1:"), "the demo prints the web view address")
        // Nothing the demo started is left running: no process has its state folder in its
        // command line.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init).filter { pid in
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return command.contains(directory)
        }
        #expect(leftovers.isEmpty, "still running: \(leftovers)")
        // The same folder again (it failed: the router's accounts existed).
        let (again, secondOutput) = try await Self.demo(sets: 1, in: directory)
        #expect(again == 0, "\(secondOutput)")
        #expect(secondOutput.contains("jobs ended as expected"), "\(secondOutput)")
    }

    /// Runs `vertebra demo --non-interactive` to its end: its status and output.
    static func demo(sets: Int, in directory: String) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try AgentProcess.binary())
        process.arguments = ["demo", "--non-interactive", "--sets", "\(sets)", "--state-dir", directory]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: await ChildOutput.readToEnd(process, pipe), as: UTF8.self)
        return (process.terminationStatus, output)
    }
}
