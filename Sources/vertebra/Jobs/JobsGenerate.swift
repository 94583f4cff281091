import ArgumentParser
import Natter
import Foundation
import VertebraJournal

/// `vertebra jobs generate`: a TOOL, not part of normal operation. It fills a journal with
/// realistic synthetic history (jobs, retries, failures, cancellations, full stanza timelines)
/// for trying out `vertebra jobs` queries and measuring them on large journals.
struct JobsGenerate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Tool: fill a journal with realistic synthetic jobs, to try queries and measure performance.",
        discussion: """
            Never point this at a production journal: it adds fake jobs. Example:
              vertebra jobs generate --count 100000 --journal /tmp/journal.sqlite
            """)

    @OptionGroup var location: JournalLocation

    @Option(name: .long, parsing: .unconditional, help: "How many jobs to add.")
    var count: Int = 10_000

    @Option(name: .long, parsing: .unconditional, help: "Spread creation times over this many days before now.")
    var days: Double = 30

    @Option(name: .long, help: "Random seed (same seed, same jobs apart from ids).")
    var seed: UInt64 = 1

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1.") }
        guard days > 0, days <= 36_500 else { throw ValidationError("--days must be more than 0 and at most 36500 (got \(days)).") }
    }

    func run() async throws {
        let start = ContinuousClock.now
        let isNew = !FileManager.default.fileExists(atPath: location.path)
        let now = Date()
        let (count, days, seed, path) = (count, days, seed, location.path)
        try await reportingJournalErrors {
            let journal = try ExchangeJournal(
                path: path, options: .init(durability: isNew ? .normal : nil, commit: .group(.init(maxRecords: 64))))
            let run = String(UUID().uuidString.prefix(8)).lowercased()
            let chunk = 25
            let chunks = (count + chunk - 1) / chunk
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        var index = lane
                        while index < chunks {
                            var random = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9)
                            var records: [JournalRecord] = []
                            for number in (index * chunk)..<min(count, (index + 1) * chunk) {
                                records += SyntheticJob.records(
                                    number: number, run: run, now: now, days: days, random: &random)
                            }
                            try await journal.write(records)
                            index += 8
                        }
                    }
                }
                try await group.waitForAll()
            }
            await journal.close()
        }
        let elapsed = ContinuousClock.now - start
        print("Generated \(count) jobs in \(path) in \(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))).")
    }
}

/// The journal records of one plausible job, requester side (a coordinator's journal).
enum SyntheticJob {
    static let operations = [
        "/image/resize", "/image/crop", "/image/thumbnail", "/video/transcode", "/mail/send",
        "/report/render", "/cluster/rd00/deploy", "/backup/snapshot", "/security/discover", "/db/vacuum",
    ]

    static func records(number: Int, run: String, now: Date, days: Double, random: inout SplitMix64) -> [JournalRecord] {
        let token = String(format: "%016llx%016llx", random.next(), random.next())
        let operation = operations[Int(random.next() % UInt64(operations.count))]
        // 0.5 % of jobs are recent and still in flight (pending, dispatched or running).
        let inFlight = Double.random(in: 0..<1, using: &random) < 0.005
        let created = now.addingTimeInterval(-Double.random(in: 0..<(inFlight ? 3600 : days * 86_400), using: &random))
        let worker = "worker\(Int(random.next() % 24) + 1)@example.org/agent"
        let arguments = "<res name='input'>/data/\(number).bin</res><i4 name='size'>\(Int(random.next() % 4096))</i4>"
        // Log-normal-ish duration: mostly under a second, a tail of minutes.
        let duration = exp(Double.random(in: -4...6, using: &random) * Double.random(in: 0.3...1, using: &random))
        let roll = Double.random(in: 0..<1, using: &random)
        var records: [JournalRecord] = [
            .createJob(NewJob(token: token, operation: operation, arguments: arguments, submitter: "ops@example.org/cli",
                              created: created)),
        ]
        if inFlight && roll < 0.2 { return records }  // still pending
        var clock = created.addingTimeInterval(0.002)
        var iq = 0
        func nextID() -> String { iq += 1; return "\(run)-\(number)-\(iq)" }
        let retried = roll > 0.95
        if retried {
            // First attempt lost with its worker; superseded by the retry below.
            records += [
                .transition(job: token, to: .dispatched, at: clock),
                .openConversation(NewConversation(job: token, token: "\(token):\(number)a", peer: "worker0@example.org/agent",
                                                  role: .requester, created: clock)),
                .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: nextID(), kind: .op,
                                        body: "<op type='\(operation)' token='\(token)' scope='single'>\(arguments)</op>",
                                        answer: "<op token='\(token):\(number)a'/>", sent: clock)),
                .setConversationState(.opened, .failed),
            ]
            clock = clock.addingTimeInterval(30)
        }
        let conversation = "\(token):\(number)b"
        records += [
            .transition(job: token, to: .dispatched, at: clock),
            .openConversation(NewConversation(job: token, token: conversation, peer: worker, role: .requester,
                                              supersedesOthers: retried, created: clock)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: nextID(), kind: .op,
                                    body: "<op type='\(operation)' token='\(token)' scope='single'>\(arguments)</op>",
                                    answer: "<op token='\(conversation)'/>", sent: clock)),
        ]
        if inFlight && roll < 0.3 { return records }  // dispatched
        clock = clock.addingTimeInterval(0.004)
        records += [
            .recordStanza(NewStanza(conversation: .opened, direction: .inbound, iqID: nextID(), kind: .ack,
                                    body: "<ack token='\(conversation)'/>", answer: "<iq type='result'/>", sent: clock)),
            .transition(job: token, to: .running, at: clock),
        ]
        if inFlight { return records }  // running
        let end = created.addingTimeInterval(duration + (retried ? 30 : 0))
        if roll < 0.85 || retried {
            for chunk in 0..<Int(random.next() % 3) {
                records.append(.recordStanza(NewStanza(
                    conversation: .opened, direction: .inbound, iqID: nextID(), kind: .data,
                    body: "<data token='\(conversation)'><string name='chunk'>\(chunk)</string></data>",
                    answer: "<iq type='result'/>", sent: clock.addingTimeInterval(duration / 2))))
            }
            records += [
                .recordStanza(NewStanza(conversation: .opened, direction: .inbound, iqID: nextID(), kind: .final,
                                        body: "<final token='\(conversation)'/>", answer: "<iq type='result'/>", sent: end)),
                .setConversationState(.opened, .finished),
                .transition(job: token, to: .done, result: "<string name='response'>ok \(number)</string>", at: end),
            ]
        } else if roll < 0.92 {
            records += [
                .recordStanza(NewStanza(conversation: .opened, direction: .inbound, iqID: nextID(), kind: .error,
                                        body: "<error token='\(conversation)' type='fatal'>disk full on worker</error>",
                                        answer: "<iq type='result'/>", sent: end)),
                .setConversationState(.opened, .failed),
                .transition(job: token, to: .failed, error: "worker reported: disk full on worker", at: end),
            ]
        } else {
            records += [
                .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: nextID(), kind: .cancel,
                                        body: "<cancel token='\(conversation)'/>", answer: "<iq type='result'/>", sent: end)),
                .setConversationState(.opened, .cancelled),
                .transition(job: token, to: .cancelled, error: "cancelled by ops@example.org/cli", at: end),
            ]
        }
        return records
    }
}
