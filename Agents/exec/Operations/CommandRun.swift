import Foundation
import Synchronization
import Vertebra
import VertebraXML

/// `/exec/run`: runs one command from the agent's allow-list, with arguments, and streams its
/// output lines (stdout and stderr) as they come. A timeout (the op's, capped by the agent's)
/// kills it. A non-zero exit status fails the job. Not retryable: commands have effects.
public struct CommandRun: VertebraOperation {
    public static let path: Resource = "/exec/run"

    public struct Result: Codable, Sendable, Equatable {
        /// `stdout` or `stderr`.
        public var stream: String
        public var line: String
    }

    /// A name from the allow-list (not a path).
    public var command: String
    public var arguments: [String]?
    /// Seconds before the command is killed (at most the agent's limit).
    public var timeoutSeconds: Int?

    public init(command: String, arguments: [String]? = nil, timeoutSeconds: Int? = nil) {
        self.command = command
        self.arguments = arguments
        self.timeoutSeconds = timeoutSeconds
    }
}

/// The command agent's logic: the allow-list and running a command with a timeout.
public struct CommandRunner: Sendable {
    /// Allowed command names and the executables they run.
    public let allowed: [String: String]
    /// The longest a command may run.
    public let maximumTimeout: Duration

    /// `entries` are `name=/absolute/executable` (or a bare absolute path, named by its file name).
    public init(allowing entries: [String], maximumTimeout: Duration = .seconds(60)) throws {
        var allowed: [String: String] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let (name, path) = parts.count == 2 ? (parts[0], parts[1]) : ((entry as NSString).lastPathComponent, entry)
            guard path.hasPrefix("/"), FileManager.default.isExecutableFile(atPath: path) else {
                throw OperationFailure("allow-list entry '\(entry)': \(path) is not an executable file (give an absolute path)", fatal: true)
            }
            allowed[name] = path
        }
        self.allowed = allowed
        self.maximumTimeout = maximumTimeout
    }

    /// Runs `op`, calling `line` for each output line; throws for a refused command, a
    /// timeout or a non-zero exit status.
    public func run(_ op: CommandRun, line: @escaping @Sendable (CommandRun.Result) async throws -> Void) async throws {
        guard let executable = allowed[op.command] else {
            let names = allowed.keys.sorted().joined(separator: ", ")
            throw OperationFailure("refused: '\(op.command)' is not on this agent's allow-list (\(names.isEmpty ? "empty" : names))", fatal: true)
        }
        var timeout = maximumTimeout
        if let seconds = op.timeoutSeconds {
            guard seconds > 0 else { throw OperationFailure("timeoutSeconds must be positive", fatal: true) }
            timeout = min(timeout, .seconds(seconds))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = op.arguments ?? []
        process.environment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"]
        process.standardInput = FileHandle.nullDevice
        let lines = OutputLines()
        process.standardOutput = lines.pipe(named: "stdout")
        process.standardError = lines.pipe(named: "stderr")
        let exited = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { process in
            lines.processExited()
            exited.continuation.yield(process.terminationStatus)
            exited.continuation.finish()
        }
        do { try process.run() } catch { throw OperationFailure("could not start \(op.command): \(error)", fatal: true) }
        let timedOut = Mutex(false)
        let killer = Task {
            try await Task.sleep(for: timeout)
            timedOut.withLock { $0 = true }
            process.terminate()
        }
        defer { killer.cancel() }
        do {
            for await output in lines.stream { try await line(output) }
        } catch {
            process.terminate()
            throw error
        }
        if Task.isCancelled { process.terminate() }
        var status: Int32 = -1
        for await code in exited.stream { status = code }
        if timedOut.withLock({ $0 }) {
            throw OperationFailure("timed out: \(op.command) ran longer than \(timeout) and was killed", fatal: true)
        }
        try Task.checkCancellation()
        guard status == 0 else {
            throw OperationFailure("\(op.command) exited with status \(status)", fatal: true)
        }
    }

    /// Registers `/exec/run` on a worker.
    public func register(on worker: Worker) async throws {
        let runner = self
        try await worker.registerStreaming(CommandRun.self) { op, context, results in
            context.logger.info("running", metadata: ["command": "\(op.command)", "arguments": "\(op.arguments ?? [])"])
            try await runner.run(op) { try await results.yield($0) }
        }
    }
}

/// Lines from a process's stdout and stderr, as one stream. The stream ends when the process
/// exited (what is left in the pipes is drained then): waiting for end-of-file instead could
/// hang, since a child started at the same moment elsewhere in this process may inherit a pipe.
final class OutputLines: @unchecked Sendable {
    private let (lines, continuation) = AsyncStream<CommandRun.Result>.makeStream()
    private let lock = NSLock()
    private var partial: [String: Data] = [:]
    private var pipes: [(name: String, pipe: Pipe)] = []
    private var finished = false

    func pipe(named name: String) -> Pipe {
        let pipe = Pipe()
        lock.withLock { pipes.append((name, pipe)) }
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.take(data, from: name)
        }
        return pipe
    }

    /// Every line, in the order read; ends after ``processExited()``.
    var stream: AsyncStream<CommandRun.Result> { lines }

    /// Drains what the pipes still hold and ends the stream.
    func processExited() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        for (name, pipe) in pipes {
            let handle = pipe.fileHandleForReading
            handle.readabilityHandler = nil
            let descriptor = handle.fileDescriptor
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(descriptor, &buffer, buffer.count)
                guard count > 0 else { break }
                append(Data(buffer[0..<count]), from: name)
            }
            if let rest = partial.removeValue(forKey: name), !rest.isEmpty { emit(rest, name) }
            try? handle.close()
        }
        continuation.finish()
    }

    private func take(_ data: Data, from name: String) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished, !data.isEmpty else { return }
        append(data, from: name)
    }

    private func append(_ data: Data, from name: String) {
        var buffer = partial[name, default: Data()] + data
        while let newline = buffer.firstIndex(of: 0x0A) {
            emit(buffer[buffer.startIndex..<newline], name)
            buffer = Data(buffer[buffer.index(after: newline)...])
        }
        partial[name] = buffer
    }

    private func emit(_ bytes: Data, _ name: String) {
        continuation.yield(CommandRun.Result(stream: name, line: String(decoding: bytes, as: UTF8.self)))
    }
}
