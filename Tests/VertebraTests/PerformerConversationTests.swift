import Natter
import Testing
import VertebraJournal
import VertebraXML

@testable import Vertebra

/// The worker's side of an accepted attempt, driven without a handler, journal or network.
@Suite struct PerformerConversationTests {
    let attempt = JobToken("0123456789abcdef0123456789abcdef:fedcba98")
    let diskFull = JournalError(.ioError, "disk full")

    struct Boom: Error, CustomStringConvertible {
        var description: String { "boom" }
    }

    /// The actions as short words, to compare sequences.
    func names(_ actions: [PerformerConversation.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .sendAck: "sendAck"
            case .runHandler: "runHandler"
            case .noteFailure(let text): "noteFailure(\(text))"
            case .freeSlot(let state): "freeSlot(\(state))"
            case .finishFast: "finishFast"
            case .sendEnd(let end, let records): "sendEnd(\(end.element.name), \(records.count) records)"
            case .reportJournalBroke: "reportJournalBroke"
            case .endLocally(let reason): "endLocally(\(reason))"
            case .noteInterrupted: "noteInterrupted"
            case .done: "done"
            }
        }
    }

    func ended(_ error: (any Error)?, _ attempt: JobToken) -> PerformerConversation.Event {
        guard let error else { return .handlerEnded(failure: nil, description: "", end: .final(attempt, values: [])) }
        let end = PerformerEnd.message(for: error, attempt: attempt, cancelledBy: nil, deadlinePassed: false)
        return .handlerEnded(failure: .init(error), description: "\(error)", end: end)
    }

    @Test func aClassicAttemptAcksRunsThenSendsItsEndWithTheRecordsThatCloseIt() throws {
        let attempt = try #require(attempt)
        var machine = PerformerConversation(job: attempt.job, conversation: 7, fast: false)
        #expect(names(machine.handle(.begin)) == ["sendAck"])
        #expect(names(machine.handle(.delivered(.ack))) == ["runHandler"])
        #expect(names(machine.handle(ended(nil, attempt))) == ["freeSlot(done)", "sendEnd(final, 2 records)"])
        #expect(!machine.isDone)
        #expect(names(machine.handle(.delivered(.end))) == ["done"])
        #expect(machine.isDone && machine.handle(.delivered(.end)).isEmpty, "nothing after the end")
    }

    @Test func aFailingHandlerIsNotedAndItsErrorSent() throws {
        let attempt = try #require(attempt)
        var machine = PerformerConversation(job: attempt.job, conversation: 7, fast: false)
        _ = machine.handle(.begin)
        _ = machine.handle(.delivered(.ack))
        #expect(names(machine.handle(ended(Boom(), attempt))) == ["noteFailure(boom)", "freeSlot(failed)", "sendEnd(error, 2 records)"])
        var cancelled = PerformerConversation(job: attempt.job, conversation: 7, fast: false)
        _ = cancelled.handle(.begin)
        #expect(names(cancelled.handle(ended(CancellationError(), attempt))).first == "noteFailure(CancellationError())")
    }

    @Test func theFastPathRunsAtOnceAndEndsInTheAnswerOrTurnsClassic() throws {
        let attempt = try #require(attempt)
        var inline = PerformerConversation(job: attempt.job, conversation: 7, fast: true)
        #expect(names(inline.handle(.begin)) == ["runHandler"], "no ack before the budget runs out")
        #expect(names(inline.handle(ended(nil, attempt))) == ["freeSlot(done)", "finishFast"])
        #expect(names(inline.handle(.fastFinished(inAnswer: true))) == ["done"])

        var classic = PerformerConversation(job: attempt.job, conversation: 7, fast: true)
        _ = classic.handle(.begin)
        _ = classic.handle(ended(Boom(), attempt))
        #expect(names(classic.handle(.fastFinished(inAnswer: false))) == ["sendEnd(error, 2 records)"])
        #expect(names(classic.handle(.delivered(.end))) == ["done"])
    }

    @Test func aSendThatFailsEndsTheConversationAsItsCauseSays() throws {
        let attempt = try #require(attempt)
        func afterFailed(_ step: PerformerConversation.Step, _ error: any Error) -> [String] {
            var machine = PerformerConversation(job: attempt.job, conversation: 7, fast: step == .ackOrData)
            _ = machine.handle(.begin)
            if step == .end { _ = machine.handle(.delivered(.ack)); _ = machine.handle(ended(nil, attempt)) }
            if step == .ackOrData { _ = machine.handle(ended(nil, attempt)) }
            return names(machine.handle(.sendFailed(step, .init(error), description: "\(error)")))
        }
        #expect(afterFailed(.ack, diskFull) == ["reportJournalBroke", "done"])
        #expect(afterFailed(.end, CancellationError()) == ["noteInterrupted", "done"], "our stop: resumed at the next start")
        #expect(afterFailed(.ack, Boom()) == ["endLocally(the requester did not take the ack: boom)", "done"])
        #expect(afterFailed(.ackOrData, Boom()) == ["endLocally(the requester did not take the ack or a data: boom)", "done"])
        #expect(afterFailed(.end, Boom()) == ["endLocally(the requester did not take the end: boom)", "done"])
        // A rule the journal enforces is not the journal failing.
        let violation = JournalError(.illegalTransition, "done to running")
        #expect(afterFailed(.end, violation).first?.hasPrefix("endLocally(") == true)
    }

    @Test func aHandlerRefusedOrCutOffByTheJournalEndsWithoutItsSlotCounted() throws {
        let attempt = try #require(attempt)
        var refused = PerformerConversation(job: attempt.job, conversation: 7, fast: false)
        _ = refused.handle(.begin)
        _ = refused.handle(.delivered(.ack))
        let gone = OutboundConversation.Refused(reason: "the requester is gone")
        #expect(names(refused.handle(ended(gone, attempt))) == ["endLocally(the requester is gone)", "done"])
        var broke = PerformerConversation(job: attempt.job, conversation: 7, fast: true)
        _ = broke.handle(.begin)
        #expect(names(broke.handle(ended(diskFull, attempt))) == ["reportJournalBroke", "done"])
    }
}
