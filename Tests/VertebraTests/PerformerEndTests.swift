import Natter
import Testing
import VertebraJournal

@testable import Vertebra

/// How a worker ends an attempt, decided without a handler, clock or journal.
@Suite struct PerformerEndTests {
    let attempt = JobToken("0123456789abcdef0123456789abcdef:fedcba98")
    let alice = JID(local: "alice", domain: "example.org", resource: "r")

    struct Boom: Error, CustomStringConvertible {
        var description: String { "boom" }
    }

    func describe(_ message: ProtocolMessage) -> String {
        guard case .error(_, let kind, let error) = message else { return "not an error" }
        return "\(kind) \(error.code.rawValue): \(error.message)"
    }

    @Test func aHandlersErrorBecomesTheErrorItMeans() throws {
        let attempt = try #require(attempt)
        let alice = try #require(alice)
        func end(_ error: any Error, cancelledBy: JID? = nil, late: Bool = false, stopping: Bool = false) -> String {
            describe(PerformerEnd.message(for: error, attempt: attempt, cancelledBy: cancelledBy, deadlinePassed: late, workerStopping: stopping))
        }
        #expect(end(Boom()) == "error failed: boom", "an unexpected error may be retried")
        #expect(end(OperationFailure("bad input", fatal: true)) == "fatal failed: bad input")
        #expect(end(OperationFailure("try later")) == "error failed: try later")
        #expect(end(Boom(), late: true) == "fatal deadline-exceeded: the operation's deadline passed")
        // A cancel the requester asked for wins over whatever the handler threw when stopped.
        #expect(end(CancellationError(), cancelledBy: alice, late: true) == "cancel cancelled: by \(alice)")
        // Cut off by the worker's stop: said so, and the coordinator moves the job on at once.
        #expect(end(CancellationError(), stopping: true) == "error worker-lost: the worker stopped before the operation finished")
        #expect(end(Boom(), stopping: true) == "error failed: boom", "what the handler threw itself stays")
    }

    @Test func eachEndClosesTheConversationAndMovesTheJob() throws {
        let attempt = try #require(attempt)
        func summary(_ message: ProtocolMessage) -> String {
            PerformerEnd.records(message, job: attempt.job, conversation: 3).map { record in
                switch record {
                case .setConversationState(.id(3), let state): "conversation \(state.rawValue)"
                case .transition(_, let state, _, _, _, let code): "job \(state.rawValue)\(code.map { " " + $0 } ?? "")"
                default: "other"
                }
            }.joined(separator: ", ")
        }
        #expect(summary(.final(attempt, values: [])) == "conversation finished, job done")
        #expect(summary(.error(attempt, kind: .fatal, error: VertebraError(.failed, "x"))) == "conversation failed, job failed failed")
        #expect(summary(.error(attempt, kind: .cancel, error: VertebraError(.cancelled, "x"))) == "conversation cancelled, job cancelled cancelled")
        #expect(summary(.nack(attempt, reason: "busy")) == "conversation failed, job failed refused")
        #expect(summary(.ack(attempt)).isEmpty, "an ack ends nothing")
        #expect(PerformerEnd.metricState(.error(attempt, kind: .cancel, error: VertebraError(.cancelled, "x"))) == "cancelled")
    }
}
