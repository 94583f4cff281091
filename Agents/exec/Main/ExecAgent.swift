import ArgumentParser
import ExecAgentOperations
import VertebraAgent

/// `exec-agent`: a worker serving `/exec/run` for the commands on its allow-list.
@main
struct ExecAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-agent",
        abstract: "Worker agent: /exec/run runs allow-listed commands and streams their output lines.",
        discussion: """
            Example: exec-agent --allow-command uptime=/usr/bin/uptime --allow-command df=/bin/df --jid exec@localhost --password-file pw
            then: vertebra dispatch /exec/run command=df
            (the arguments list is given from Swift or a 0.4 client as a <list name='arguments'>). \
            A command not on the allow-list is refused; one running past its timeout is killed.
            """)

    @OptionGroup var worker: WorkerOptions
    @Option(help: ArgumentHelp("An allowed command as name=/absolute/path (repeatable).", valueName: "name=path")) var allowCommand: [String] = []
    @Option(parsing: .unconditional, help: "Longest any command may run, in seconds.") var maxTimeout: Int = 60
    @Option(parsing: .unconditional, help: "Most bytes of output (both streams) one command may write; past it, it is killed and the job fails.")
    var maxOutputBytes: Int = 16 << 20
    @Option(parsing: .unconditional, help: "Most output lines one command may write; past it, it is killed and the job fails.") var maxOutputLines: Int = 100_000
    @Option(parsing: .unconditional, help: "A longer output line is sent in pieces of this many bytes.") var maxLineBytes: Int = 64 << 10

    func validate() throws {
        guard !allowCommand.isEmpty else { throw ValidationError("give at least one --allow-command name=/path: nothing runs that is not allowed") }
        guard (1...86_400).contains(maxTimeout) else { throw ValidationError("--max-timeout must be from 1 to 86400 seconds") }
        guard (1...(1 << 34)).contains(maxOutputBytes) else { throw ValidationError("--max-output-bytes must be from 1 to 16 GiB") }
        guard (1...100_000_000).contains(maxOutputLines) else { throw ValidationError("--max-output-lines must be from 1 to 100000000") }
        guard (1...(1 << 20)).contains(maxLineBytes) else {
            throw ValidationError("--max-line-bytes must be from 1 to 1048576 (a stanza carries the line)")
        }
    }

    func run() async throws {
        let limits = OutputLimits(maxBytes: maxOutputBytes, maxLines: maxOutputLines, maxLineBytes: maxLineBytes)
        let runner = try CommandRunner(allowing: allowCommand, maximumTimeout: .seconds(maxTimeout), limits: limits)
        try await worker.run(name: "exec-agent") { try await runner.register(on: $0) }
    }
}
