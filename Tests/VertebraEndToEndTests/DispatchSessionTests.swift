import Foundation
import Testing
import XMPPTestSupport

/// `vertebra dispatch` when its connection ends for good while it follows a job.
@Suite(.serialized) struct DispatchSessionTests {
    /// Two commands run with the same full JID: the server gives the resource to the second,
    /// and the first can no longer hear its job. It used to wait out its whole `--timeout`
    /// (300 s by default); it now says why and exits 3 at once, and the job goes on.
    @Test func aDispatchWhoseSessionIsTakenExitsThreeAtOnce() async throws {
        try await RecoveryTests().withCoordinatorAndOneWorker { setup in
            let jid = "coordinator@\(setup.server.domain)/same-resource"
            let log = setup.directory + "/first.log"
            let first = try Self.dispatch(["/vertebra/sleep", "milliseconds=i4:20000"], jid: jid, setup: setup, log: log)
            defer { if first.isRunning { first.terminate() } }
            _ = try await eventually(timeout: .seconds(20)) { Self.text(log).contains("accepted by") }
            let second = try Self.dispatch(["/vertebra/echo", "text=x", "--detach"], jid: jid, setup: setup, log: setup.directory + "/second.log")
            // Not waitUntilExit: it would hold one of the cooperative pool's two threads.
            #expect(try await eventually(timeout: .seconds(30)) { !second.isRunning })
            let ended = ContinuousClock.now
            #expect(try await eventually(timeout: .seconds(20)) { !first.isRunning }, "the first dispatch still waits: \(Self.text(log))")
            #expect(ContinuousClock.now - ended < .seconds(20))
            #expect(first.terminationStatus == 3)
            #expect(Self.text(log).contains("another session"), "\(Self.text(log))")
            #expect(Self.text(log).contains("the job goes on"), "\(Self.text(log))")
        }
    }

    static func dispatch(_ arguments: [String], jid: String, setup: CrashTests.Setup, log: String) throws -> Process {
        let line = try AgentProcess.commandLine(["dispatch"] + arguments, server: setup.server, directory: setup.directory)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: line.arguments[0])
        process.arguments = Array(line.arguments.dropFirst())
        var environment = line.environment
        environment["VERTEBRA_JID"] = jid
        process.environment = environment
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return process
    }

    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}
