import Natter
import Testing
import VertebraJournal
import VertebraXML

@testable import Vertebra

/// The relay conversation's two ends, without sockets: a job's events, as the coordinator's own
/// listeners see them, reach the submitter as the same values.
@Suite struct JobRelayTests {
    let attempt = JobToken("0123456789abcdef0123456789abcdef:fedcba98")
    let worker = JID(local: "w1", domain: "example.org", resource: "r")

    func value(_ text: String) -> XElement {
        XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "v")], text: text)
    }

    /// The submitter's events for `events`, through the wire: message, its XML, parsed back.
    func relayed(_ events: [JobEvent], scope: Scope) throws -> (events: [Submitter.Event], ended: Int, records: [[JournalRecord]]) {
        let attempt = try #require(attempt)
        var seen: [Submitter.Event] = []
        var ended = 0
        var records: [[JournalRecord]] = []
        for event in events {
            guard let (message, onAnswer) = JobRelay.message(for: event, attempt: attempt, scope: scope, conversation: 7) else { continue }
            records.append(onAnswer)
            let received = try ProtocolMessage(message.element)
            let (submitterEvents, ends) = JobRelay.events(for: received)
            seen += submitterEvents
            if ends { ended += 1 }
        }
        return (seen, ended, records)
    }

    func label(_ event: Submitter.Event) -> String {
        switch event {
        case .accepted: "accepted"
        case .progress(let progress): "progress(\(progress.message) \(progress.done ?? -1)/\(progress.total ?? -1))"
        case .data(let values): "data(\(values.map(\.text).joined(separator: ",")))"
        case .done: "done"
        case .failed(let error): "failed(\(error.code.rawValue): \(error.message))"
        }
    }

    @Test func aSingleJobsChunksProgressAndEndArriveAsTheyWereReported() throws {
        let worker = try #require(worker)
        let events: [JobEvent] = [
            .dispatched(worker: worker), .running(worker: worker),
            .progress(worker: worker, JobProgress(message: "half", done: 1, total: 2)),
            .data(worker: worker, values: [value("a"), value("b")]), .done,
        ]
        let (seen, ended, records) = try relayed(events, scope: .single)
        #expect(seen.map(label) == ["progress(half 1/2)", "data(a,b)", "done"])
        #expect(ended == 1)
        #expect(records.count == 3, "dispatched and running are not relayed")
        guard case .setConversationState(.id(7), .finished)? = records.last?.first else { Issue.record("the end closes no conversation"); return }
    }

    @Test func aFanOutsChunksNameTheirWorker() throws {
        let worker = try #require(worker)
        let (seen, _, _) = try relayed([.data(worker: worker, values: [value("a")]), .done], scope: .all)
        #expect(seen.map(label) == ["data(\(worker),a)", "done"])
    }

    @Test func failuresKeepTheirCodeAndACancelClosesTheConversationAsCancelled() throws {
        for error in [VertebraError(.workerLost, "w1 went away"), VertebraError(.deadlineExceeded, "too late"), VertebraError(.cancelled, "by alice")] {
            let (seen, ended, records) = try relayed([.failed(error)], scope: .single)
            #expect(seen.map(label) == ["failed(\(error.code.rawValue): \(error.message))"])
            #expect(ended == 1)
            let state: ConversationState = error.code == .cancelled ? .cancelled : .failed
            guard case .setConversationState(.id(7), let closed)? = records.first?.first else { Issue.record("no conversation end"); continue }
            #expect(closed == state)
        }
    }

    @Test func aNackEndsTheSubmittersJobAsRefusedAndOtherMessagesAreIgnored() throws {
        let attempt = try #require(attempt)
        let (nack, ends) = JobRelay.events(for: .nack(attempt, reason: "busy"))
        #expect(nack.map(label) == ["failed(refused: busy)"] && ends)
        let (ack, ackEnds) = JobRelay.events(for: .ack(attempt))
        #expect(ack.isEmpty && !ackEnds)
    }
}
