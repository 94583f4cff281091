import ArgumentParser
import Foundation
import Natter
import Vertebra
import VertebraAgent

/// `vertebra workers`: the coordinator's live roster, asked over XMPP.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract: "List the coordinator's live workers: JID, operations, load, capacity, last advertisement.",
        discussion: """
            Asks the coordinator (/security/workers), so it works from any machine that can log \
            in; the coordinator's ACL must cover /security/workers for this account (its own \
            account always may), e.g. a line `alice@example.org /security/workers`. Exit status: \
            0 listed, 1 refused, 3 the coordinator could not be reached.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: ArgumentHelp("The coordinator's full JID. Default: $VERTEBRA_COORDINATOR, else coordinator@DOMAIN/coordinator.", valueName: "jid"))
    var coordinator: String?
    @Flag(help: "Print a JSON array of objects with the documented fields.") var json = false

    func run() async throws {
        let workers = try await askCoordinator(connection, coordinator: coordinator, resource: "workers") { try await $0.workers() }
        print(json ? Self.json(workers) : Self.table(workers))
    }

    static func json(_ workers: [WorkerStatus]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(workers.map(Row.init)), let text = String(data: data, encoding: .utf8) else { return "[]" }
        return text
    }

    /// The JSON shape: operations as plain paths.
    struct Row: Encodable {
        let jid: String
        let operations: [String]
        let outstanding: Int
        let capacity: Int
        let advertisedSecondsAgo: Int
        let expiresInSeconds: Int

        init(_ status: WorkerStatus) {
            jid = status.jid
            operations = status.operations.map(\.path)
            outstanding = status.outstanding
            capacity = status.capacity
            advertisedSecondsAgo = status.advertisedSecondsAgo
            expiresInSeconds = status.expiresInSeconds
        }
    }

    static func table(_ workers: [WorkerStatus]) -> String {
        guard !workers.isEmpty else { return "no live workers" }
        let header = ["JID", "LOAD", "ADVERTISED", "EXPIRES", "OPERATIONS"]
        let rows = workers.map {
            ["\($0.jid)", "\($0.outstanding)/\($0.capacity)", "\($0.advertisedSecondsAgo)s ago", "in \($0.expiresInSeconds)s",
             $0.operations.map(\.path).joined(separator: " ")]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { column, cell in column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
