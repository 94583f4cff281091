import ArgumentParser
import Foundation
import VertebraJournal

/// `vertebra jobs`: the job history recorded in the exchange journal.
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List, inspect and prune the job history in the exchange journal; cancel and retry jobs.",
        discussion: """
            Reads the journal file directly (read-only), so it works while the coordinator or a \
            worker is writing to it. The journal is --journal PATH, else $VERTEBRA_JOURNAL, else \
            $XDG_STATE_HOME/vertebra/journal.sqlite, else ~/.local/state/vertebra/journal.sqlite.
            Job states: pending, dispatched, running, done, failed, cancelled.
            Durability (set by the agent that writes the journal, shown by `jobs stats`): \
            full = an acknowledged step survives power loss; normal = it survives a process crash.
            `jobs cancel` and `jobs retry` do not read the journal: they ask the coordinator over \
            XMPP (the connection options of `vertebra dispatch`).
            """,
        subcommands: [
            JobsList.self, JobsShow.self, JobsStats.self, JobsPrune.self, JobsCancel.self, JobsRetry.self, JobsGenerate.self,
            JobsCrashWriter.self,
        ],
        defaultSubcommand: JobsList.self)
}

/// `--journal PATH` and the default location.
struct JournalLocation: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Journal file.",
            discussion: "Default: $VERTEBRA_JOURNAL, else $XDG_STATE_HOME/vertebra/journal.sqlite, else ~/.local/state/vertebra/journal.sqlite.",
            valueName: "path"))
    var journal: String?

    /// The journal file to use.
    var path: String { journal ?? Self.defaultPath(environment: ProcessInfo.processInfo.environment) }

    static func defaultPath(environment: [String: String]) -> String {
        if let explicit = environment["VERTEBRA_JOURNAL"], !explicit.isEmpty { return explicit }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty {
            return (state as NSString).appendingPathComponent("vertebra/journal.sqlite")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".local/state/vertebra/journal.sqlite")
    }
}

/// Prints journal errors as `error: ...` on stderr and exits with status 1 instead of a stack of
/// Swift error descriptions.
func reportingJournalErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as JournalError {
        printError("error: \(error.description)")
        throw ExitCode(1)
    }
}

/// Writes a line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Writes a line to stdout without buffering (used where a reader must see it at once).
func printUnbuffered(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
