import Natter
import Testing
import VertebraJournal

@testable import Vertebra

/// How a worker treats an arriving `op`, decided without a journal, client or handler.
@Suite struct OpAdmissionTests {
    let token = JobToken("0123456789abcdef0123456789abcdef")
    let attempt = JobToken("0123456789abcdef0123456789abcdef:fedcba98")

    /// One line per record, naming what a reader of the journal would see.
    func summary(_ records: [JournalRecord]) -> [String] {
        records.map { record in
            switch record {
            case .createJob(let job): "create \(job.token) \(job.operation) \(job.state.rawValue) by \(job.submitter ?? "-") args \(job.arguments)"
            case .transition(let job, let state, _, _, _, _): "move \(job) \(state.rawValue)"
            case .transitionIfAllowed(let job, let state, _, _, let code): "move-if-allowed \(job) \(state.rawValue)\(code.map { " " + $0 } ?? "")"
            case .openConversation(let c): "open \(c.token ?? "-") \(c.role.rawValue) with \(c.peer)\(c.supersedesOthers ? " superseding" : "")"
            case .setConversationState(let ref, let state): "conversation \(ref) \(state.rawValue)"
            case .recordStanza(let s): "\(s.direction.rawValue) \(s.kind.rawValue) \(s.iqID) in \(s.conversation) answered \(s.answer ?? "-")"
            default: "other"
            }
        }
    }

    /// A repeated op gets the journalled answer again: alone (then the conversation is
    /// replayed), or with the messages that went inside it (fast path: nothing to replay).
    @Test func aRepeatIsAnsweredAsBeforeWithItsInlineMessages() throws {
        let accepted = try #require(attempt)
        let answer = JournalText.text(IQ(type: .result, id: "op1", payload: ProtocolMessage.accepted(accepted).element).element)
        let classic = try #require(OpAdmission.answerAgain(answer, inline: []))
        #expect(classic.replays && classic.attempt == accepted && classic.payload.elements.isEmpty)
        let final = JournalText.text(ProtocolMessage.final(accepted, values: []).element)
        let fast = try #require(OpAdmission.answerAgain(answer, inline: [final]))
        #expect(!fast.replays && fast.payload.elements.map(\.name) == ["final"])
        #expect(OpAdmission.answerAgain(nil, inline: []) == nil)
        #expect(OpAdmission.answerAgain("<iq type='result' id='x'/>", inline: []) == nil, "an answer without accepted A:B")
        #expect(OpAdmission.answerAgain("not xml <", inline: []) == nil)
    }

    @Test func theSameIQIdIsARepeatWhateverHappenedSince() {
        let first = OpAdmission.Answered(conversation: 4, answer: "<iq/>")
        let other = OpAdmission.Answered(conversation: 9, answer: "<iq id='x'/>")
        #expect(OpAdmission.repeated(sameID: first, sameJob: other, sameJobOpen: false, sameJobEnded: true) == first)
        #expect(OpAdmission.repeated(sameID: first, sameJob: nil, sameJobOpen: false, sameJobEnded: false) == first)
    }

    @Test func theSameJobWithANewIdIsTheSameAttemptOnlyWhileItRuns() {
        let earlier = OpAdmission.Answered(conversation: 9, answer: "<iq/>")
        #expect(OpAdmission.repeated(sameID: nil, sameJob: earlier, sameJobOpen: true, sameJobEnded: false) == earlier)
        #expect(OpAdmission.repeated(sameID: nil, sameJob: earlier, sameJobOpen: true, sameJobEnded: true) == nil, "ended: a retry")
        #expect(OpAdmission.repeated(sameID: nil, sameJob: earlier, sameJobOpen: false, sameJobEnded: false) == nil, "closed: a retry")
        #expect(OpAdmission.repeated(sameID: nil, sameJob: nil, sameJobOpen: true, sameJobEnded: false) == nil, "new")
    }

    @Test func acceptingANewJobJournalsItRunningWithItsAttemptAndTheAnsweredOp() throws {
        let token = try #require(token), attempt = try #require(attempt)
        func accept(busy: Bool) -> [String] {
            summary(OpAdmission.acceptedRecords(
                op: "<op/>", operation: "/image/resize", token: token, attempt: attempt, scope: .single, peer: "c@x/r",
                iqID: "q1", answer: "<iq type='result'/>", busy: busy, existing: nil))
        }
        let opened = "open \(attempt) performer with c@x/r superseding"
        let op = "in op q1 in opened answered <iq type='result'/>"
        #expect(accept(busy: false) == ["create \(token.job) /image/resize running by c@x/r args <op/>", opened, op])
        #expect(accept(busy: true) == ["create \(token.job) /image/resize pending by c@x/r args <op/>", opened, op],
                "no slot: it waits pending for the nack")
    }

    @Test func aJobKnownHereRunsAgainOnlyWhereItsStateAllows() throws {
        let token = try #require(token), attempt = try #require(attempt)
        func moves(_ existing: JobState, busy: Bool = false) -> [String] {
            summary(OpAdmission.acceptedRecords(
                op: "<op/>", operation: "/image/resize", token: token, attempt: attempt, scope: .single, peer: "c@x/r",
                iqID: "q2", answer: "<iq/>", busy: busy, existing: existing)).filter { !$0.hasPrefix("open") && !$0.hasPrefix("in ") }
        }
        #expect(moves(.pending) == ["move \(token.job) running"], "a retry of a job that waited here")
        #expect(moves(.pending, busy: true).isEmpty, "still no slot: it stays pending")
        #expect(moves(.done).isEmpty, "a job that ended here is not moved back")
        #expect(moves(.running).isEmpty)
    }

    @Test func anInlineAnswerJournalsEachCarriedMessageAndAnEndMovingTheJobOnlyWhereAllowed() throws {
        let attempt = try #require(attempt)
        let inline: [ProtocolMessage] = [.data(attempt, values: []), .final(attempt, values: [])]
        let records = summary(OpAdmission.inlineRecords(inline, answer: "<iq/>", conversation: 7, attempt: attempt, opID: "op1"))
        #expect(records == [
            "out data \(FastPath.inlineID(of: "op1", index: 0)) in id(7) answered <iq/>",
            "out final \(FastPath.inlineID(of: "op1", index: 1)) in id(7) answered <iq/>",
            "conversation id(7) finished",
            "move-if-allowed \(attempt.job) done",
        ])
        let failed = summary(OpAdmission.inlineRecords(
            [.error(attempt, kind: .fatal, error: VertebraError(.failed, "no"))], answer: "<iq/>", conversation: 7, attempt: attempt,
            opID: "op2"))
        #expect(failed.suffix(2) == ["conversation id(7) failed", "move-if-allowed \(attempt.job) failed failed"])
        #expect(OpAdmission.inlineRecords([], answer: "<iq/>", conversation: 7, attempt: attempt, opID: "op3").isEmpty)
    }
}
