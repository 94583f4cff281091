import ArgumentParser

/// The `vertebra` command: one binary for every role and tool.
@main
struct VertebraCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vertebra",
        abstract: "Distributed job dispatch over XMPP: typed operations, journalled on both sides.",
        discussion: """
            Roles (router, coordinator, worker, dispatch, jobs, demo) arrive as they are built; \
            see README.md for what works today.
            """,
        subcommands: [JobsCommand.self, RouterCommand.self, BenchCommand.self])
}

/// `vertebra bench`: measurements printed beside a baseline run in the same invocation.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print it beside its baseline (build with -c release).",
        subcommands: [BenchXML.self, BenchJournal.self, BenchIQ.self])
}
