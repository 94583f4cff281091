import ExecAgentOperations
import FilesAgentOperations
import Foundation
import Synchronization
import Testing
import Vertebra

/// The example agents' operations, including every refusal.
@Suite struct FileIntegrityTests {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("files-agent-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root + "/docs/deep", withIntermediateDirectories: true)
        try "abc".write(toFile: root + "/docs/abc.txt", atomically: true, encoding: .utf8)
        try "".write(toFile: root + "/docs/deep/empty", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: "/etc")
    }

    @Test func checksumsEveryFileUnderADirectoryInPathOrder() throws {
        let integrity = try FileIntegrity(root: root)
        let files = try integrity.files(under: try integrity.resolve("docs"), limit: 100)
        let results = try files.map(integrity.checksum)
        #expect(results.map(\.path) == ["docs/abc.txt", "docs/deep/empty"])
        #expect(results[0].sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(results[0].bytes == 3)
        #expect(results[1].sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test(arguments: ["../", "docs/../../etc/passwd", "/etc/passwd", "escape/passwd", ""])
    func refusesPathsOutsideTheRoot(path: String) throws {
        let integrity = try FileIntegrity(root: root)
        let error = #expect(throws: OperationFailure.self) { _ = try integrity.resolve(path) }
        #expect(error?.message.contains("refused") == true)
        #expect(error?.fatal == true)
    }

    @Test func aMissingPathAndTooManyFilesAreClearErrors() throws {
        let integrity = try FileIntegrity(root: root)
        let missing = #expect(throws: OperationFailure.self) { _ = try integrity.resolve("nope") }
        #expect(missing?.message.contains("no such file") == true)
        let tooMany = #expect(throws: OperationFailure.self) { _ = try integrity.files(under: try integrity.resolve("docs"), limit: 1) }
        #expect(tooMany?.message.contains("more than 1") == true)
        #expect(throws: OperationFailure.self) { _ = try FileIntegrity(root: root + "/docs/abc.txt") }
    }
}

@Suite struct CommandRunnerTests {
    final class Lines: Sendable {
        let value = Mutex<[CommandRun.Result]>([])
        var all: [CommandRun.Result] { value.withLock { $0 } }
        func add(_ line: CommandRun.Result) { value.withLock { $0.append(line) } }
    }

    let runner: CommandRunner

    init() throws {
        runner = try CommandRunner(
            allowing: ["echo=/bin/echo", "sh=/bin/sh", "sleep=/bin/sleep", "/bin/false"], maximumTimeout: .seconds(10))
    }

    @Test func runsAnAllowedCommandAndStreamsItsLines() async throws {
        let lines = Lines()
        try await runner.run(CommandRun(command: "sh", arguments: ["-c", "echo one; echo two; echo oops >&2"])) { lines.add($0) }
        #expect(lines.all.filter { $0.stream == "stdout" }.map(\.line) == ["one", "two"])
        #expect(lines.all.filter { $0.stream == "stderr" }.map(\.line) == ["oops"])
    }

    @Test func refusesACommandNotOnTheAllowList() async throws {
        let error = await #expect(throws: OperationFailure.self) {
            try await runner.run(CommandRun(command: "rm", arguments: ["-rf", "/tmp/x"])) { _ in }
        }
        #expect(error?.message.contains("not on this agent's allow-list") == true)
    }

    @Test func killsACommandPastItsTimeout() async throws {
        let started = ContinuousClock.now
        let error = await #expect(throws: OperationFailure.self) {
            try await runner.run(CommandRun(command: "sleep", arguments: ["30"], timeoutSeconds: 1)) { _ in }
        }
        #expect(error?.message.contains("timed out") == true)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aNonZeroExitFailsAndBadAllowListsAreRefused() async throws {
        let error = await #expect(throws: OperationFailure.self) { try await runner.run(CommandRun(command: "false")) { _ in } }
        #expect(error?.message.contains("status 1") == true)
        #expect(throws: OperationFailure.self) { _ = try CommandRunner(allowing: ["x=relative/path"]) }
        #expect(throws: OperationFailure.self) { _ = try CommandRunner(allowing: ["x=/etc/passwd"]) }
    }
}
