import ArgumentParser
import Foundation
import Vertebra
import VertebraJournal
import VertebraXML

/// `vertebra jobs show ID`: one job with its arguments, result and full stanza timeline.
struct JobsShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one job: arguments, result or error, and every stanza of every attempt.",
        discussion: """
            --json prints one object: job (the fields of `jobs --json`), retried_as (the ids of \
            the jobs that retried this one), conversations and stanzas.
            """)

    @OptionGroup var location: JournalLocation

    @Argument(help: "The job id, or any unique prefix of it.")
    var id: String

    @Flag(name: .long, help: "Print JSON: {job, retried_as, conversations, stanzas}.")
    var json = false

    func run() async throws {
        let timeline = try await reportingJournalErrors {
            try await JournalReader(path: location.path).timeline(ofJob: id)
        }
        if json {
            print(try jsonText(TimelineJSON(timeline)))
        } else {
            print(Self.render(timeline, now: Date()))
        }
    }

    static func render(_ timeline: JobTimeline, now: Date) -> String {
        let job = timeline.job
        var lines: [String] = []
        func field(_ name: String, _ value: String?) {
            lines.append(name.padding(toLength: 11, withPad: " ", startingAt: 0) + (value ?? "-"))
        }
        field("Job", job.token)
        field("Operation", job.operation)
        field("State", "\(job.state) (\(job.attempts) attempt\(job.attempts == 1 ? "" : "s"))")
        field("Scope", job.scope.rawValue)
        field("Submitter", job.submitter)
        field("Worker", job.worker)
        field("Created", "\(TimeText.iso(job.created)) (\(TimeText.compact(now.timeIntervalSince(job.created))) ago)")
        field("Updated", TimeText.iso(job.updated))
        field("Finished", job.finished.map { "\(TimeText.iso($0)) (took \(TimeText.compact($0.timeIntervalSince(job.created))))" })
        field("Deadline", job.deadline.map(TimeText.iso))
        if let notBefore = job.notBefore { field("Not before", TimeText.iso(notBefore)) }
        if let key = job.key { field("Key", key) }
        if let original = job.retryOf { field("Retry of", original) }
        if !timeline.retries.isEmpty { field("Retried as", timeline.retries.joined(separator: ", ")) }
        lines.append("Arguments")
        lines.append(indented(job.arguments.isEmpty ? "(none)" : Self.argumentLines(job.arguments)))
        if let result = job.result {
            lines.append("Result")
            lines.append(indented(result))
        }
        if let error = job.error {
            lines.append("Error")
            lines.append(indented(error))
        }
        lines.append("")
        lines.append("Conversations")
        if timeline.conversations.isEmpty { lines.append("  (none)") }
        var names: [Int64: String] = [:]
        for conversation in timeline.conversations {
            let name = "#\(conversation.id)"
            names[conversation.id] = name
            lines.append(
                "  \(name)  \(conversation.token ?? "(unnamed)")  \(conversation.role.rawValue)  peer \(conversation.peer)  "
                    + "\(conversation.state.rawValue)\(conversation.isCurrent ? "" : "  superseded")")
        }
        lines.append("")
        lines.append("Timeline")
        if timeline.stanzas.isEmpty { lines.append("  (no stanzas)") }
        for stanza in timeline.stanzas {
            let arrow = stanza.direction == .inbound ? "<-" : "->"
            // A fast-path message came inside the answer to its op: it has no answer of its own.
            let acked = FastPath.isInline(stanza.iqID) ? "inside the op's answer"
                : stanza.acked.map { "answered +\(TimeText.compact($0.timeIntervalSince(stanza.sent)))" } ?? "UNANSWERED"
            lines.append(
                "  \(TimeText.iso(stanza.sent))  \(names[stanza.conversation] ?? "?") #\(stanza.sequence)  \(arrow) \(stanza.peer)  "
                    + "\(stanza.kind.rawValue)  id=\(stanza.iqID)  \(acked)")
            lines.append(indented(stanza.body, by: 6))
            if let answer = stanza.answer { lines.append(indented("answer: " + answer, by: 6)) }
        }
        return lines.joined(separator: "\n")
    }

    /// The arguments one typed value a line. A worker or coordinator journals the whole `op`:
    /// its argument elements are shown without the protocol's wrapper and extensions
    /// (`<dispatch>`, the fast-path request); anything else as journalled.
    static func argumentLines(_ text: String) -> String {
        guard let op = try? XElement(xml: text), op.name == "op", op.namespace == XMLNamespace.vertebraAPI else { return text }
        let values = op.elements.filter { $0.namespace == op.namespace }
        return values.isEmpty ? "(none)" : values.map { XElement($0.name, attributes: $0.attributes, children: $0.children).serializedString() }.joined(separator: "\n")
    }

    private static func indented(_ text: String, by spaces: Int = 2) -> String {
        let pad = String(repeating: " ", count: spaces)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { pad + $0 }.joined(separator: "\n")
    }
}

/// `vertebra jobs show --json`: the job (same fields as `jobs --json`), its conversations and stanzas.
private struct TimelineJSON: Encodable {
    struct ConversationJSON: Encodable {
        var number: Int64
        var token: String?
        var peer: String
        var role: String
        var state: String
        var current: Bool
        var created: String
    }
    struct StanzaJSON: Encodable {
        var conversation: Int64
        var sequence: Int
        var direction: String
        var peer: String
        var iqID: String
        var kind: String
        var body: String
        var answer: String?
        var sent: String
        var acked: String?
    }
    var job: JobJSON
    var retriedAs: [String]

    private enum CodingKeys: String, CodingKey {
        case job, retriedAs = "retried_as", conversations, stanzas
    }

    var conversations: [ConversationJSON]
    var stanzas: [StanzaJSON]

    init(_ timeline: JobTimeline) {
        job = JobJSON(timeline.job)
        retriedAs = timeline.retries
        conversations = timeline.conversations.map {
            ConversationJSON(
                number: $0.id, token: $0.token, peer: $0.peer, role: $0.role.rawValue, state: $0.state.rawValue,
                current: $0.isCurrent, created: TimeText.iso($0.created))
        }
        stanzas = timeline.stanzas.map {
            StanzaJSON(
                conversation: $0.conversation, sequence: $0.sequence, direction: $0.direction.rawValue, peer: $0.peer,
                iqID: $0.iqID, kind: $0.kind.rawValue, body: $0.body, answer: $0.answer, sent: TimeText.iso($0.sent),
                acked: $0.acked.map(TimeText.iso))
        }
    }
}
