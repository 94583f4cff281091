import ArgumentParser
import Foundation
import VertebraJournal

/// Hidden helper for the crash-safety test: writes jobs from concurrent submitters and prints
/// `ack TOKEN` on stdout (unbuffered) only after each write returned, until killed.
struct JobsCrashWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_crash-writer",
        abstract: "Test helper: write acknowledged jobs until killed.",
        shouldDisplay: false)

    @OptionGroup var location: JournalLocation

    @Option(name: .long) var durability: String = "full"
    @Option(name: .long, parsing: .unconditional) var submitters: Int = 8
    @Option(name: .long, parsing: .unconditional, help: "Writes per submitter before exiting.") var count: Int = 1_000_000

    func run() async throws {
        guard let durability = Durability(rawValue: durability) else {
            throw ValidationError("--durability must be full or normal")
        }
        let (path, submitters, count) = (location.path, submitters, count)
        try await reportingJournalErrors {
            let journal = try ExchangeJournal(path: path, options: .init(durability: durability))
            printUnbuffered("ready")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for submitter in 0..<max(1, submitters) {
                    group.addTask {
                        for number in 0..<count {
                            let token = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                            try await journal.write([
                                .createJob(NewJob(token: token, operation: "/crash/test", state: .running)),
                                .openConversation(NewConversation(
                                    job: token, token: "\(token):p", peer: "c\(submitter)@example.org/r", role: .performer)),
                                .recordStanza(NewStanza(
                                    conversation: .opened, direction: .inbound, iqID: "\(token)-\(number)", kind: .op,
                                    body: "<op type='/crash/test' token='\(token)'/>", answer: "<op token='\(token):p'/>")),
                            ])
                            printUnbuffered("ack \(token)")
                        }
                    }
                }
                try await group.waitForAll()
            }
            await journal.close()
        }
    }
}
