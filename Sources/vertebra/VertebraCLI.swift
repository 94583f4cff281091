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

    /// Parses and runs the command. A usage error a command finds while running (a password
    /// file others can read, a JID that is not one) prints with that command's own usage, as a
    /// parse error does, and exits 64 (ArgumentParser shows the root's usage for those).
    static func main() async {
        let parsed: any ParsableCommand
        do { parsed = try await asyncParseAsRoot(nil) } catch { exit(withError: error) }
        var command = parsed
        do {
            if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch let error as ValidationError {
            let usage = usageString(for: type(of: parsed))
            let name = ([configuration.commandName ?? "vertebra"] + Self.path(to: type(of: parsed))).joined(separator: " ")
            printError("Error: \(error.message)\nUsage: \(usage)\n  See '\(name) --help' for more information.")
            exit(withError: ExitCode(64))
        } catch {
            exit(withError: error)
        }
    }

    /// The subcommand names leading from the root to `command`.
    private static func path(to command: any ParsableCommand.Type) -> [String] {
        func search(_ node: any ParsableCommand.Type, _ trail: [String]) -> [String]? {
            if node == command { return trail }
            for child in node.configuration.subcommands {
                if let found = search(child, trail + [child.configuration.commandName ?? "\(child)"]) { return found }
            }
            return nil
        }
        return search(Self.self, []) ?? []
    }
}

/// `vertebra bench`: measurements printed beside a baseline run in the same invocation.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print it beside its baseline (build with -c release).",
        subcommands: [BenchXML.self, BenchJournal.self, BenchIQ.self, BenchJobs.self, BenchBurst.self])
}
