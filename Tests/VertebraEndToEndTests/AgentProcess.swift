import Foundation
import Natter
import Testing
import VertebraJournal

/// A `vertebra coordinator` or `vertebra worker` run as its own process, stopped (or killed)
/// by PID.
final class AgentProcess: @unchecked Sendable {
    let process: Process
    let name: String
    let log: String

    /// The `vertebra` binary built with these tests.
    static func binary() throws -> String {
        var candidates: [URL] = []
        if let directory = Bundle.main.executableURL?.deletingLastPathComponent() {
            candidates += [directory, directory.deletingLastPathComponent()].map { $0.appendingPathComponent("vertebra") }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/vertebra"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XMPPServerProcess.ServerError(message: "no vertebra binary in \(candidates.map(\.path))")
        }
        return found.path
    }

    /// Where an agent logs in: one server, or one node of a cluster.
    struct Endpoint {
        let port: Int
        let domain: String
        let caFile: String
    }

    /// Starts `vertebra <arguments>` (or `executable`, built beside it) logged in as `user` on `server`.
    convenience init(
        _ arguments: [String], user: String, resource: String, server: XMPPServerProcess, directory: String, executable: String = "vertebra"
    ) throws {
        try self.init(
            arguments, user: user, resource: resource,
            endpoint: Endpoint(port: server.port, domain: server.domain, caFile: server.caFile), directory: directory, executable: executable)
    }

    /// Starts `vertebra <arguments>` (or `executable`, built beside it) logged in as `user` at `endpoint`.
    init(_ arguments: [String], user: String, resource: String, endpoint server: Endpoint, directory: String, executable: String = "vertebra") throws {
        name = "\(user)-\(resource)"
        log = "\(directory)/\(name).log"
        let passwordFile = "\(directory)/password"
        if !FileManager.default.fileExists(atPath: passwordFile) {
            try XMPPServerProcess.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
            chmod(passwordFile, 0o600)
        }
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        output.seekToEndOfFile()
        process = Process()
        let vertebra = URL(fileURLWithPath: try Self.binary())
        process.executableURL = executable == "vertebra" ? vertebra : vertebra.deletingLastPathComponent().appendingPathComponent(executable)
        process.arguments = arguments + ["--tls", "required", "--ca-file", server.caFile, "--log-level", "info"]
        var environment = ProcessInfo.processInfo.environment
        environment["VERTEBRA_SERVER"] = "127.0.0.1:\(server.port)"
        environment["VERTEBRA_JID"] = "\(user)@\(server.domain)/\(resource)"
        environment["VERTEBRA_PASSWORD_FILE"] = passwordFile
        environment["VERTEBRA_COORDINATOR"] = "coordinator@\(server.domain)/coordinator"
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    static func coordinator(
        _ server: XMPPServerProcess, directory: String, lease: Int = 2, workerWait: Int = 20, extra: [String] = []
    ) throws -> AgentProcess {
        // Workers w1, w2 and w3 may serve everything; nobody else.
        let acl = "\(directory)/acl.txt"
        try "serve w1@\(server.domain) /\nserve w2@\(server.domain) /\nserve w3@\(server.domain) /\n"
            .write(toFile: acl, atomically: true, encoding: .utf8)
        return try AgentProcess(
            ["coordinator", "--journal", "\(directory)/coordinator.sqlite", "--lease", String(lease), "--worker-wait", String(workerWait),
             "--acl", acl] + extra,
            user: "coordinator", resource: "coordinator", server: server, directory: directory)
    }

    /// A `vertebra worker` as w`index`. Its drain is 1 s unless `extra` says otherwise: ``stop()``
    /// waits on a thread of Swift's cooperative pool (two here), and a worker draining a long
    /// job for its default 30 s held one for the 10 s before its SIGKILL, starving other tests.
    static func worker(_ index: Int, _ server: XMPPServerProcess, directory: String, ttl: Int = 10, extra: [String] = []) throws -> AgentProcess {
        let drain = extra.contains("--drain-timeout") ? [] : ["--drain-timeout", "1"]
        return try AgentProcess(
            ["worker", "--journal", "\(directory)/w\(index).sqlite", "--ttl", String(ttl)] + drain + extra,
            user: "w\(index)", resource: "w\(index)", server: server, directory: directory)
    }

    /// The executable, arguments and environment of `vertebra ARGUMENTS` run as the
    /// coordinator's account (another resource) against `server`; for ``command(_:server:directory:errors:)``
    /// and for a test that hands them to another program.
    static func commandLine(_ arguments: [String], server: XMPPServerProcess, directory: String) throws -> (arguments: [String], environment: [String: String]) {
        let passwordFile = "\(directory)/password"
        if !FileManager.default.fileExists(atPath: passwordFile) {
            try XMPPServerProcess.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
            chmod(passwordFile, 0o600)
        }
        var environment = ProcessInfo.processInfo.environment
        environment["VERTEBRA_SERVER"] = "127.0.0.1:\(server.port)"
        environment["VERTEBRA_JID"] = "coordinator@\(server.domain)/cli-\(UUID().uuidString.prefix(6))"
        environment["VERTEBRA_PASSWORD_FILE"] = passwordFile
        environment["VERTEBRA_COORDINATOR"] = "coordinator@\(server.domain)/coordinator"
        return ([try binary()] + arguments + ["--tls", "required", "--ca-file", server.caFile], environment)
    }

    /// Runs `vertebra ARGUMENTS` as a client of `server` to its end; returns its status and its
    /// standard output (with `errors`, standard error after it).
    static func command(
        _ arguments: [String], server: XMPPServerProcess, directory: String, errors: Bool = false, input: String? = nil
    ) async throws -> (Int32, String) {
        let line = try commandLine(arguments, server: server, directory: directory)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: line.arguments[0])
        process.arguments = Array(line.arguments.dropFirst())
        process.environment = line.environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors ? output : FileHandle.nullDevice
        // `input` comes through a pipe, as from a shell's `|`.
        let inputPipe = input.map { _ in Pipe() }
        if let inputPipe { process.standardInput = inputPipe }
        try process.run()
        if let inputPipe, let input {
            let writer = inputPipe.fileHandleForWriting
            Thread.detachNewThread {
                writer.write(Data(input.utf8))
                try? writer.close()
            }
        }
        let data = await ChildOutput.readToEnd(process, output)
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs `vertebra ARGUMENTS` without a server to its end: its status and its output and
    /// errors together.
    static func run(_ arguments: [String]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = await ChildOutput.readToEnd(process, output)
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Whether the process has exited (waits for it when it has).
    var hasExited: Bool { !process.isRunning }

    /// SIGKILL: no chance to clean up, as a crash.
    func kill() {
        // Not guarded by isRunning: Foundation's Process on Linux can report a live child as
        // exited, and then the "crash" would silently not happen.
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, without waiting.
    func signalTerminate() {
        Foundation.kill(process.processIdentifier, SIGTERM)
    }

    /// SIGTERM, then wait for the exit (SIGKILL after 10 s).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let end = Date().addingTimeInterval(10)
        while process.isRunning && Date() < end { usleep(20_000) }
        kill()
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// Polls `condition` until true or `timeout`.
func eventually(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(200))
    }
    return try await condition()
}

/// Opens an agent's journal for reading (it may be written meanwhile).
func readJournal(_ path: String) throws -> JournalReader { try JournalReader(path: path) }

/// Waits for a child process without holding a thread of Swift's cooperative pool (two on a
/// 2-core machine): a test blocked in `readDataToEndOfFile` there starves every other test's
/// timers and tasks for as long as its child runs.
enum ChildOutput {
    private struct Handles: @unchecked Sendable {
        let process: Process
        let pipe: Pipe
    }

    /// Reads `pipe` to its end, then waits for `process` to exit, on a thread of its own.
    static func readToEnd(_ process: Process, _ pipe: Pipe) async -> Data {
        let handles = Handles(process: process, pipe: pipe)
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let data = handles.pipe.fileHandleForReading.readDataToEndOfFile()
                handles.process.waitUntilExit()
                continuation.resume(returning: data)
            }
        }
    }
}
