import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// The inspector loses, delays and repeats protocol stanzas at random (fixed seed) during
/// 1,000 jobs: every job ends `done`, and no handler runs twice for one attempt.
@Suite(.serialized, .timeLimit(.minutes(8))) struct ChaosTests {
    static let rules = """
        <inspector xmlns='urn:vertebra:inspector:1' seed='20261127'>
          <rule direction='outbound' kind='iq' type='set' payload-namespace='http://xmlschema.engineyard.com/agent/api'>
            <drop probability='0.02'/>
            <delay probability='0.10' min-ms='1' max-ms='40'/>
            <repeat probability='0.03' times='1'/>
          </rule>
          <rule direction='inbound' kind='iq' type='result'>
            <drop probability='0.01'/>
            <delay probability='0.05' min-ms='1' max-ms='20'/>
          </rule>
        </inspector>
        """

    @Test func thousandJobsThroughDroppedDelayedAndRepeatedStanzas() async throws {
        let inspector = try RuleInspector(document: try XElement(xml: Self.rules))
        try await Cluster.with(
            .router, workers: 2, workerOptions: { _, options in
                options.answerTimeout = .milliseconds(700)
                options.maxConcurrentJobs = 64
            }, inspector: inspector,
            coordinatorOptions: { options in
                options.answerTimeout = .milliseconds(700)
                options.workerWait = .seconds(60)
            }
        ) { cluster in
            let total = 1_000
            let inFlight = 64
            let coordinator = cluster.coordinator
            var failures: [String] = []
            try await withThrowingTaskGroup(of: String?.self) { group in
                var next = 0
                func add() {
                    let index = next
                    next += 1
                    group.addTask {
                        do {
                            let echoed = try await coordinator.dispatch(Diagnostics.Echo(text: "job \(index)"))
                            return echoed == "job \(index)" ? nil : "job \(index) echoed '\(echoed)'"
                        } catch {
                            return "job \(index): \(error)"
                        }
                    }
                }
                for _ in 0..<inFlight { add() }
                while let result = try await group.next() {
                    if let result { failures.append(result) }
                    if next < total { add() }
                }
            }
            #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
            let jobs = try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 10_000))
            #expect(jobs.count == total)
            #expect(jobs.allSatisfy { $0.state == .done })
            // Once per attempt: per job and worker, no more handler runs than the coordinator made
            // attempts to that worker (duplicated and re-sent ops did not start the handler again).
            var attempts: [String: Int] = [:]
            for job in jobs {
                for conversation in try await cluster.coordinatorJournal.conversations(ofJob: job.token) where conversation.role == .requester {
                    attempts["\(job.token)|\(conversation.peer)", default: 0] += 1
                }
            }
            var totalRuns = 0
            for (index, journal) in cluster.workerJournals.enumerated() {
                let peer = "w\(index + 1)@\(cluster.server.domain)/w\(index + 1)"
                for job in try await journal.jobs(matching: JobFilter(limit: 10_000)) {
                    let runs = try await journal.conversations(ofJob: job.token).filter { $0.role == .performer }.count
                    totalRuns += runs
                    #expect(runs <= attempts["\(job.token)|\(peer)"] ?? 0, "job \(job.token) ran \(runs) times on \(peer)")
                }
            }
            #expect(totalRuns >= total)
            let decisions = inspector.decisions
            #expect((decisions["drop"] ?? 0) > 0 && (decisions["repeat"] ?? 0) > 0 && (decisions["delay"] ?? 0) > 0, "\(decisions)")
            print("chaos decisions: \(decisions)")
        }
    }
}
