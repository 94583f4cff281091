import ArgumentParser

/// The `vertebra` command: one binary for every role and tool.
@main
struct VertebraCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vertebra",
        abstract: "Distributed job dispatch over XMPP: typed operations, journalled on both sides.",
        discussion: """
            Start `vertebra router` (or use Prosody/ejabberd), a `vertebra coordinator` and \
            workers; submit jobs with `vertebra dispatch`; read the history with `vertebra jobs`. \
            Configuration comes from flags or VERTEBRA_SERVER, VERTEBRA_JID, \
            VERTEBRA_PASSWORD_FILE. See README.md.
            """,
        subcommands: [
            RouterCommand.self, CoordinatorCommand.self, WorkerCommand.self, DispatchCommand.self, WorkersCommand.self, JobsCommand.self, WebCommand.self,
            DemoCommand.self,
            BenchCommand.self,
        ])
}

/// `vertebra bench`: measurements printed beside a baseline run in the same invocation.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print it beside its baseline (build with -c release).",
        subcommands: [BenchXML.self, BenchJournal.self, BenchIQ.self, BenchJobs.self, BenchBurst.self])
}
