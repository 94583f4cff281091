@testable import ExecAgentOperations
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

    @Test func aFileSwappedForALinkOutsideTheRootIsNotRead() throws {
        let integrity = try FileIntegrity(root: root)
        let listed = try integrity.files(under: try integrity.resolve("docs"), limit: 100)
        let target = try #require(listed.first { $0.lastPathComponent == "abc.txt" })
        // Between listing and reading, the file becomes a link to a secret outside the root.
        let secret = root + "-secret"
        try "the secret".write(toFile: secret, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: secret) }
        try FileManager.default.removeItem(atPath: target.path)
        try FileManager.default.createSymbolicLink(atPath: target.path, withDestinationPath: secret)
        let error = #expect(throws: OperationFailure.self) { _ = try integrity.checksum(target) }
        #expect(error?.message.contains("refused") == true, "\(String(describing: error))")
    }

    @Test func aDirectoryAboveTheFileSwappedForALinkOutsideTheRootIsRefused() throws {
        let integrity = try FileIntegrity(root: root)
        let target = try integrity.resolve("docs/abc.txt")
        let outside = root + "-outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try "not yours".write(toFile: outside + "/abc.txt", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: root + "/docs")
        try FileManager.default.createSymbolicLink(atPath: root + "/docs", withDestinationPath: outside)
        let error = #expect(throws: OperationFailure.self) { _ = try integrity.checksum(target) }
        #expect(error?.message.contains("outside the allowed root") == true, "\(String(describing: error))")
    }

    @Test func aFIFOIsRefusedInsteadOfBlocking() throws {
        let integrity = try FileIntegrity(root: root)
        let fifo = root + "/docs/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        let error = #expect(throws: OperationFailure.self) { _ = try integrity.checksum(URL(fileURLWithPath: fifo)) }
        #expect(error?.message.contains("not a regular file") == true, "\(String(describing: error))")
        // Nor is it listed.
        let listed = try integrity.files(under: try integrity.resolve("docs"), limit: 100)
        #expect(!listed.contains { $0.lastPathComponent == "pipe" })
    }

    /// Both operations see the same files: regular ones. A link inside the root used to stop
    /// the checksum ("it became a symbolic link") and be counted by the summary at the link's
    /// own size; a FIFO named directly was counted as a file.
    @Test func linksAndFIFOsUnderADirectoryAreSkippedByBothOperations() throws {
        let integrity = try FileIntegrity(root: root)
        try FileManager.default.createSymbolicLink(atPath: root + "/docs/link_in", withDestinationPath: "abc.txt")
        try FileManager.default.createSymbolicLink(atPath: root + "/docs/link_out", withDestinationPath: "/etc/passwd")
        #expect(mkfifo(root + "/docs/pipe", 0o600) == 0)
        let listed = try integrity.files(under: try integrity.resolve("docs"), limit: 100)
        #expect(listed.map(\.lastPathComponent) == ["abc.txt", "empty"])
        #expect(try listed.map(integrity.checksum).map(\.path) == ["docs/abc.txt", "docs/deep/empty"])
        let summary = try integrity.summary("docs")
        #expect(summary.files == 2 && summary.bytes == 3)
        let fifo = #expect(throws: OperationFailure.self) { _ = try integrity.summary("docs/pipe") }
        #expect(fifo?.message.contains("not a regular file") == true, "\(String(describing: fifo))")
    }

    @Test func cancellationStopsHashingALargeFile() async throws {
        let integrity = try FileIntegrity(root: root)
        let big = root + "/docs/big"
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: big) }
        let handle = try #require(FileHandle(forWritingAtPath: big))
        try handle.truncate(atOffset: 4 << 30)  // 4 GiB, sparse: seconds of hashing
        try handle.close()
        let task = Task { try integrity.checksum(URL(fileURLWithPath: big)) }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
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

    /// A command gets stdin, stdout and stderr only: not the agent's connection to the server
    /// (a command could write stanzas on it as the worker) nor any other descriptor.
    @Test func aCommandInheritsNoDescriptorOfTheAgent() async throws {
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec, as NIO's sockets are not
        #expect(leaked > 2)
        defer { close(leaked) }
        let lines = Lines()
        let probe = "for fd in 0 1 2 \(leaked); do test -e /proc/$$/fd/$fd && echo \"$fd open\" || echo \"$fd closed\"; done"
        try await runner.run(CommandRun(command: "sh", arguments: ["-c", probe])) { lines.add($0) }
        #expect(lines.all.map(\.line) == ["0 open", "1 open", "2 open", "\(leaked) closed"])
    }

    /// Coloured output and stray control bytes still arrive, as visible signs (the job used to
    /// fail: XML cannot carry them).
    @Test func controlCharactersInOutputArriveAsTheirSigns() async throws {
        let lines = Lines()
        try await runner.run(CommandRun(command: "sh", arguments: ["-c", "printf '\\033[31mred\\033[0m\\n\\001x\\tz\\n\\377end\\n'"])) { lines.add($0) }
        #expect(lines.all.map(\.line) == ["\u{241B}[31mred\u{241B}[0m", "\u{2401}x\tz", "\u{FFFD}end"])
    }

    @Test func refusesACommandNotOnTheAllowList() async throws {
        let error = await #expect(throws: OperationFailure.self) {
            try await runner.run(CommandRun(command: "rm", arguments: ["-rf", "/tmp/x"])) { _ in }
        }
        #expect(error?.message.contains("not on this agent's allow-list") == true)
    }

    @Test func timeoutsBecomeDispatchIntervalsWithoutOverflow() {
        #expect(CommandRunner.dispatchInterval(.seconds(1)) == .nanoseconds(1_000_000_000))
        #expect(CommandRunner.dispatchInterval(.milliseconds(1500)) == .nanoseconds(1_500_000_000))
        #expect(CommandRunner.dispatchInterval(.zero) == .nanoseconds(0))
        #expect(CommandRunner.dispatchInterval(.seconds(Int64.max)) == .nanoseconds(Int.max), "clamped, not trapped")
        #expect(CommandRunner.dispatchInterval(.seconds(-5)) == .nanoseconds(0))
    }

    @Test func killsACommandPastItsTimeout() async throws {
        let started = ContinuousClock.now
        let error = await #expect(throws: OperationFailure.self) {
            try await runner.run(CommandRun(command: "sleep", arguments: ["30"], timeoutSeconds: 1)) { _ in }
        }
        #expect(error?.message.contains("timed out") == true)
        // Killed at 1 s, well before its 30 s (a loaded test run may take seconds to notice).
        #expect(ContinuousClock.now - started < .seconds(25), "it ran its whole 30 s")
    }

    @Test func aTimeoutEndsTheJobEvenWhenAGrandchildHoldsTheOutputOpen() async throws {
        let started = ContinuousClock.now
        let error = await #expect(throws: OperationFailure.self) {
            // The shell's background sleep keeps stdout open: only killing the group ends it.
            try await runner.run(CommandRun(command: "sh", arguments: ["-c", "sleep 30 & echo started; wait"], timeoutSeconds: 1)) { _ in }
        }
        #expect(error?.message.contains("timed out") == true, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(10), "the job outlived its timeout by \(ContinuousClock.now - started)")
    }

    @Test func outputPastTheLimitKillsTheCommandAndFailsTheJob() async throws {
        let bounded = try CommandRunner(
            allowing: ["sh=/bin/sh"], maximumTimeout: .seconds(20), limits: OutputLimits(maxBytes: 1 << 20, maxLineBytes: 4096))
        let lines = Lines()
        let error = await #expect(throws: OperationFailure.self) {
            try await bounded.run(CommandRun(command: "sh", arguments: ["-c", "while :; do echo yyyyyyyyyyyyyyyy; done"])) { lines.add($0) }
        }
        #expect(error?.message.contains("output limit") == true, "\(String(describing: error))")
        let sent = lines.all.reduce(0) { $0 + $1.line.utf8.count + 1 }
        #expect(sent <= 1 << 20)
    }

    @Test func aLongLineWithoutNewlineComesInPieces() async throws {
        let bounded = try CommandRunner(allowing: ["sh=/bin/sh"], limits: OutputLimits(maxLineBytes: 1024))
        let lines = Lines()
        try await bounded.run(CommandRun(command: "sh", arguments: ["-c", "printf '%10000s' '' | tr ' ' a"])) { lines.add($0) }
        let pieces = lines.all.map(\.line)
        #expect(pieces.allSatisfy { $0.utf8.count <= 1024 })
        #expect(pieces.joined() == String(repeating: "a", count: 10_000))
        #expect(pieces.count == 10)
    }

    @Test func aNonZeroExitFailsAndBadAllowListsAreRefused() async throws {
        let error = await #expect(throws: OperationFailure.self) { try await runner.run(CommandRun(command: "false")) { _ in } }
        #expect(error?.message.contains("status 1") == true)
        #expect(throws: OperationFailure.self) { _ = try CommandRunner(allowing: ["x=relative/path"]) }
        #expect(throws: OperationFailure.self) { _ = try CommandRunner(allowing: ["x=/etc/passwd"]) }
        #expect(throws: OperationFailure.self) { _ = try CommandRunner(allowing: ["x=/usr/bin"]) }  // a directory
        let twice = try #require(throws: OperationFailure.self) { _ = try CommandRunner(allowing: ["up=/bin/sh", "up=/bin/echo"]) }
        #expect(twice.message.contains("'up' is already allowed as /bin/sh"), "\(twice.message)")
    }
}
