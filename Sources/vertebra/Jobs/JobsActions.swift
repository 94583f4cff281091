import ArgumentParser
import Foundation
import Natter
import Vertebra
import VertebraAgent

/// `vertebra jobs cancel ID` and `vertebra jobs retry ID`: operator actions, asked of the
/// coordinator over XMPP (so they work from any machine that can log in).
struct JobsCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a job through the coordinator: its workers are told, and it ends cancelled.",
        discussion: JobAction.discussion(path: "/security/jobs/cancel"))

    @OptionGroup var action: JobAction

    func run() async throws {
        try await action.perform { try await $0.cancelJob($1) } describe: { result in
            "job \(result.job): cancelling (its workers were told; `vertebra jobs show \(result.job)` shows the end)"
        }
    }
}

struct JobsRetry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run a failed or cancelled job again, as a new job linked to it; prints the new job's id.",
        discussion: JobAction.discussion(path: "/security/jobs/retry"))

    @OptionGroup var action: JobAction

    func run() async throws {
        try await action.perform { try await $0.retryJob($1) } describe: { result in result.job }
    }
}

/// What `jobs cancel` and `jobs retry` share: the connection, the coordinator and the job id.
struct JobAction: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions
    @Option(help: ArgumentHelp("The coordinator's full JID. Default: $VERTEBRA_COORDINATOR, else coordinator@DOMAIN/coordinator.", valueName: "jid"))
    var coordinator: String?
    @Flag(help: "Print a JSON object: {job, state, retry_of}; when refused or unreachable, {job, state: refused|unknown, error, code}.") var json = false
    @Argument(help: "The job id, or a unique prefix of it.") var id: String

    static func discussion(path: String) -> String {
        """
        Asks the coordinator (\(path)). Allowed to the job's submitter, to the coordinator's own \
        account, and to accounts whose ACL rule covers the path, e.g. a line \
        `ops@example.org \(path)`. Exit status: 0 done, 1 refused (unknown job, wrong state, not \
        allowed), 3 the coordinator could not be reached.
        """
    }

    func perform(
        _ act: (Submitter, String) async throws -> JobActionResult, describe: (JobActionResult) -> String
    ) async throws {
        let result = try await askCoordinator(connection, coordinator: coordinator, resource: "jobs", jsonOnError: json ? ["job": id] : nil) {
            try await act($0, id)
        }
        if json {
            printJSONLine(["job": result.job, "state": result.state, "retry_of": result.retryOf ?? NSNull()])
        } else {
            print(describe(result))
        }
    }
}
