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
    @Option(help: "Longest any command may run, in seconds.") var maxTimeout: Int = 60

    func validate() throws {
        guard !allowCommand.isEmpty else { throw ValidationError("give at least one --allow-command name=/path: nothing runs that is not allowed") }
        guard maxTimeout > 0 else { throw ValidationError("--max-timeout must be positive") }
    }

    func run() async throws {
        let runner = try CommandRunner(allowing: allowCommand, maximumTimeout: .seconds(maxTimeout))
        try await worker.run(name: "exec-agent") { try await runner.register(on: $0) }
    }
}
