internal import CPosixShims
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
    /// How much output a command may produce.
    public let limits: OutputLimits

    /// `entries` are `name=/absolute/executable` (or a bare absolute path, named by its file name).
    public init(allowing entries: [String], maximumTimeout: Duration = .seconds(60), limits: OutputLimits = OutputLimits()) throws {
        var allowed: [String: String] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let (name, path) = parts.count == 2 ? (parts[0], parts[1]) : ((entry as NSString).lastPathComponent, entry)
            var isDirectory: ObjCBool = false
            guard path.hasPrefix("/"), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: path)
            else {
                throw OperationFailure(
                    "allow-list entry '\(entry)': \(path) is not an executable file (give name=/absolute/path or /absolute/path)", fatal: true)
            }
            // The last of two entries with one name used to win silently: which one runs must be plain.
            guard allowed[name] == nil else {
                throw OperationFailure("allow-list entry '\(entry)': the name '\(name)' is already allowed as \(allowed[name] ?? "")", fatal: true)
            }
            allowed[name] = path
        }
        self.allowed = allowed
        self.maximumTimeout = maximumTimeout
        self.limits = limits
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
        let child = try ChildProcess(executable: executable, arguments: op.arguments ?? [], limits: limits)
        let timedOut = Mutex(false)
        // A dispatch timer, not a sleeping task: the command dies on time even while Swift's
        // cooperative threads are all busy (a handler blocking them must not let it outlive
        // its timeout).
        let killer = DispatchWorkItem {
            timedOut.withLock { $0 = true }
            child.terminate()
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.dispatchInterval(timeout), execute: killer)
        defer { killer.cancel() }
        do {
            for await output in child.lines {
                try Task.checkCancellation()
                // After the timeout, nothing more is sent: the job is over.
                if timedOut.withLock({ $0 }) { break }
                try await line(output)
            }
        } catch {
            child.terminate()
            throw error
        }
        if Task.isCancelled { child.terminate() }
        let status = await child.exitStatus()
        if let overflow = child.overflow {
            throw OperationFailure("output limit: \(op.command) wrote more than \(overflow); it was killed", fatal: true)
        }
        if timedOut.withLock({ $0 }) {
            throw OperationFailure("timed out: \(op.command) ran longer than \(timeout) and was killed", fatal: true)
        }
        try Task.checkCancellation()
        guard status == 0 else {
            throw OperationFailure("\(op.command) exited with status \(status)", fatal: true)
        }
    }

    /// `duration` for a dispatch timer, in whole nanoseconds (at most `Int.max`).
    static func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carry) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow || carry ? .nanoseconds(Int.max) : .nanoseconds(Int(clamping: max(0, total)))
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

/// A child process started with `posix_spawn`, its stdout and stderr read line by line on two
/// threads, and its exit collected with `waitpid` on a third. (Foundation's `Process` on Linux
/// missed exits and inherited pipes when several commands started at once.) The pipes are
/// close-on-exec, so no other child keeps them open, and the command gets only stdin (/dev/null),
/// stdout and stderr: no other descriptor of the agent.
final class ChildProcess: Sendable {
    let pid: pid_t
    let lines: AsyncStream<CommandRun.Result>
    private let exit: AsyncStream<Int32>
    private let output: OutputBudget.Shared

    /// What the command wrote beyond its limits (nil while within them).
    var overflow: String? { output.budget.withLock { $0.overflow } }

    init(executable: String, arguments: [String], limits: OutputLimits) throws {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        // Close-on-exec from the start (pipe2): a command spawned concurrently cannot inherit them.
        guard vertebra_pipe_cloexec(&out) == 0 else {
            throw OperationFailure("could not make pipes: \(String(cString: strerror(errno)))", fatal: true)
        }
        guard vertebra_pipe_cloexec(&err) == 0 else {
            out.forEach { close($0) }
            throw OperationFailure("could not make pipes: \(String(cString: strerror(errno)))", fatal: true)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, err[1], 2)
        // Nothing else of the agent's: its connection to the server (NIO's sockets are not
        // close-on-exec), its journal, its event loops' descriptors.
        guard vertebra_spawn_close_from(&actions, 3) == 0 else {
            (out + err).forEach { close($0) }
            throw OperationFailure("could not prepare the command's descriptors", fatal: true)
        }
        let words: [String] = [executable] + arguments
        let environment: [String] = ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // The agent's own signal handling (ignored or blocked SIGTERM/SIGINT) must not reach the
        // command: give it an empty mask and default dispositions.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // Its own process group, so a timeout or cancel kills what it started too (a grandchild
        // holding the pipes open would otherwise keep the job alive).
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var spawnedPID: pid_t = 0
        let spawned = posix_spawn(&spawnedPID, executable, &actions, &attributes, argv, envp)
        let pid = spawnedPID
        close(out[1])
        close(err[1])
        guard spawned == 0 else {
            close(out[0])
            close(err[0])
            throw OperationFailure("could not start \(executable): \(String(cString: strerror(spawned)))", fatal: true)
        }
        self.pid = pid
        let (lines, linesContinuation) = AsyncStream<CommandRun.Result>.makeStream()
        let (exit, exitContinuation) = AsyncStream<Int32>.makeStream()
        self.lines = lines
        self.exit = exit
        let output = OutputBudget.Shared(limits: limits)
        self.output = output
        let open = Mutex(2)
        for (descriptor, name) in [(out[0], "stdout"), (err[0], "stderr")] {
            Thread.detachNewThread {
                Self.readLines(descriptor, maxLineBytes: limits.maxLineBytes) { text in
                    // Within the job's budget, or the command is killed and reading stops.
                    guard output.budget.withLock({ $0.admit(text.utf8.count) }) else {
                        kill(-pid, SIGKILL)
                        return false
                    }
                    linesContinuation.yield(CommandRun.Result(stream: name, line: text))
                    return true
                }
                close(descriptor)
                if open.withLock({ count in
                    count -= 1
                    return count == 0
                }) { linesContinuation.finish() }
            }
        }
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            exitContinuation.yield(code)
            exitContinuation.finish()
        }
    }

    /// Stops the command (SIGKILL: a timed-out or cancelled command gets no say).
    func terminate() {
        kill(-pid, SIGKILL)  // the process group: what it started too
        kill(pid, SIGKILL)
    }

    /// The exit status (128 + signal when killed by one).
    func exitStatus() async -> Int32 {
        for await code in exit { return code }
        return -1
    }

    /// Splits the output into lines, a line longer than `maxLineBytes` into pieces of that size;
    /// each byte is looked at once. Stops when `emit` returns false.
    private static func readLines(_ descriptor: Int32, maxLineBytes: Int, _ emit: (String) -> Bool) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        reading: while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            for byte in buffer[0..<count] {
                if byte == 0x0A || pending.count == maxLineBytes {
                    guard emit(xmlText(pending)) else { break reading }
                    pending.removeAll(keepingCapacity: true)
                    if byte == 0x0A { continue }
                }
                pending.append(byte)
            }
        }
        if !pending.isEmpty { _ = emit(xmlText(pending)) }
    }

    /// `bytes` as text a result can carry (XML 1.0 holds no control character but tab, line
    /// feed and carriage return): invalid UTF-8 becomes U+FFFD, a control character its sign
    /// from Unicode's Control Pictures (ESC → ␛, so coloured output still reads) and a
    /// noncharacter U+FFFE/U+FFFF becomes U+FFFD. A line with one used to fail the whole job.
    static func xmlText(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        func unfit(_ scalar: Unicode.Scalar) -> Bool {
            (scalar.value < 0x20 && scalar.value != 0x09 && scalar.value != 0x0D) || scalar.value == 0xFFFE || scalar.value == 0xFFFF
        }
        guard text.unicodeScalars.contains(where: unfit) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard unfit(scalar) else {
                scalars.append(scalar)
                continue
            }
            scalars.append(scalar.value < 0x20 ? Unicode.Scalar(0x2400 + scalar.value) ?? "\u{FFFD}" : "\u{FFFD}")
        }
        return String(scalars)
    }
}

/// How much output one command may produce: a command past it is killed and its job fails
/// (its output would otherwise be buffered without bound).
public struct OutputLimits: Sendable, Equatable {
    /// Bytes of output in all (both streams).
    public var maxBytes: Int
    /// Lines in all.
    public var maxLines: Int
    /// A longer line is sent in pieces of this size.
    public var maxLineBytes: Int

    public init(maxBytes: Int = 16 << 20, maxLines: Int = 100_000, maxLineBytes: Int = 64 << 10) {
        self.maxBytes = max(1, maxBytes)
        self.maxLines = max(1, maxLines)
        self.maxLineBytes = max(1, maxLineBytes)
    }
}

/// Output counted against the limits, shared by the stdout and stderr readers.
struct OutputBudget: Sendable {
    let limits: OutputLimits
    private var bytes = 0
    private var lines = 0
    private(set) var overflow: String?

    init(limits: OutputLimits) { self.limits = limits }

    /// One budget for both readers of a command.
    final class Shared: Sendable {
        let budget: Mutex<OutputBudget>
        init(limits: OutputLimits) { budget = Mutex(OutputBudget(limits: limits)) }
    }

    mutating func admit(_ count: Int) -> Bool {
        guard overflow == nil else { return false }
        bytes += count + 1
        lines += 1
        if bytes > limits.maxBytes { overflow = "\(limits.maxBytes) bytes" }
        if lines > limits.maxLines { overflow = "\(limits.maxLines) lines" }
        return overflow == nil
    }
}
