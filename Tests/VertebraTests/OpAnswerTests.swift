import Natter
import Testing
import VertebraJournal
import VertebraXML

@testable import Vertebra

/// How the coordinator reads the answer to an `op` (``OpAnswer``), without a network.
@Suite struct OpAnswerTests {
    let job = "0123456789abcdef0123456789abcdef"
    let token = JobToken("0123456789abcdef0123456789abcdef:fedcba98")!
    let worker = JID("w1@localhost/w")!

    func attempt(known: JobToken? = nil) -> OpAnswer.Attempt {
        OpAnswer.Attempt(job: job, worker: worker, conversation: 7, op: .id(3), iqID: "op1", known: known)
    }

    func answered(_ payload: XElement?) -> OpAnswer.Delivered {
        .answered(IQ(type: .result, id: "op1", from: worker, payload: payload))
    }

    /// The kinds of `records`, in order, as short names.
    func kinds(_ records: [JournalRecord]) -> [String] {
        records.map { record in
            switch record {
            case .nameConversation(.id(7), let named): "name \(named)"
            case .acknowledge(.id(3), let answer, _): answer == nil ? "ack" : "ack+answer"
            case .recordStanza(let stanza): "\(stanza.direction) \(stanza.kind) \(stanza.iqID)"
            default: "\(record)"
            }
        }
    }

    @Test func anAcceptedOpRunsAsItsTokenAndNamesTheConversation() throws {
        guard case .running(let running, let records) = OpAnswer.judge(answered(ProtocolMessage.accepted(token).element), for: attempt(), stopping: false) else {
            Issue.record("not running")
            return
        }
        #expect(running == token)
        #expect(kinds(records) == ["name \(token)", "ack+answer"])
    }

    @Test func aResumedAttemptIsNotNamedAgainAndAnotherTokenMeansTheAttemptIsLost() throws {
        let resumed = OpAnswer.judge(answered(ProtocolMessage.accepted(token).element), for: attempt(known: token), stopping: false)
        guard case .running(_, let records) = resumed else {
            Issue.record("not running: \(resumed)")
            return
        }
        #expect(kinds(records) == ["ack+answer"])
        let other = try #require(JobToken("\(job):00000000"))
        guard case .over(.lost(let reason)) = OpAnswer.judge(answered(ProtocolMessage.accepted(token).element), for: attempt(known: other), stopping: false) else {
            Issue.record("not lost")
            return
        }
        #expect(reason.contains("another attempt after the restart"))
    }

    @Test(arguments: [nil, "0123456789abcdef0123456789abcdef", "ffffffffffffffffffffffffffffffff:fedcba98"])
    func anAnswerWithoutThisJobsTokenABIsARefusal(accepted: String?) {
        let payload = accepted.flatMap(JobToken.init).map { ProtocolMessage.accepted($0).element }
        guard case .over(.refused(let reason)) = OpAnswer.judge(answered(payload), for: attempt(), stopping: false) else {
            Issue.record("not refused")
            return
        }
        #expect(reason.contains("without a token A:B"))
    }

    @Test func aFastPathAnswerCarriesTheWholeConversationJournalledAsInbound() {
        let payload = FastPath.answer(token, inline: [.data(token, values: [XElement("i4", text: "1")]), .final(token, values: [])])
        guard case .inline(let running, let records, let messages) = OpAnswer.judge(answered(payload), for: attempt(), stopping: false) else {
            Issue.record("not inline")
            return
        }
        #expect(running == token && messages.count == 2)
        #expect(kinds(records) == ["name \(token)", "ack+answer", "inbound data inline:0:op1", "inbound final inline:1:op1"])
    }

    @Test func aBrokenInlineConversationFailsTheAttemptForGood() {
        let payload = FastPath.answer(token, inline: [.data(token, values: [])])  // no end
        guard case .over(.failed(let error, let retryable)) = OpAnswer.judge(answered(payload), for: attempt(), stopping: false) else {
            Issue.record("not failed")
            return
        }
        #expect(error.code == .badResult && !retryable)
    }

    @Test func aBadRequestOrAnOpTooLargeFailsForGoodAndOtherStanzaErrorsAreRefusals() {
        let bad = NatterError(.stanzaError, "refused", stanzaError: .badRequest("no such argument"))
        guard case .over(.failed(let error, let retryable)) = OpAnswer.judge(.failed(bad, heard: nil), for: attempt(), stopping: false) else {
            Issue.record("not failed")
            return
        }
        #expect(error.code == .badRequest && !retryable && error.message.contains("no such argument"))
        let absent = NatterError(.stanzaError, "absent", stanzaError: .serviceUnavailable())
        guard case .over(.refused) = OpAnswer.judge(.failed(absent, heard: token), for: attempt(), stopping: false) else {
            Issue.record("not refused")
            return
        }
        // The server would not forward an op that large: no worker would get it, so the job
        // fails at once instead of going round the workers for ever.
        let tooLarge = NatterError(.stanzaError, "refused", stanzaError: StanzaError(
            type: .modify, condition: .policyViolation, text: "the stanza would be 1048594 bytes as delivered; the limit is 1048576"))
        guard case .over(.failed(let refusal, let again)) = OpAnswer.judge(.failed(tooLarge, heard: nil), for: attempt(), stopping: false) else {
            Issue.record("not failed")
            return
        }
        #expect(refusal.code == .refused && !again && refusal.message.contains("policy-violation (modify): the stanza would be"), "\(refusal)")
    }

    /// The answer was lost but the worker's messages name the attempt: it runs (abandoning it
    /// would leave it running unseen); without them it is silent, or lost when resumed.
    @Test func aLostAnswerFollowsTheAttemptTheWorkerNamedElseGivesUp() {
        let timeout = NatterError(.timeout, "no answer")
        guard case .running(let running, let records) = OpAnswer.judge(.failed(timeout, heard: token), for: attempt(), stopping: false) else {
            Issue.record("not running")
            return
        }
        #expect(running == token && kinds(records) == ["name \(token)"])
        // Without them the worker may still have taken the op (its answer lost, or too large to
        // deliver): the attempt counts as silent, not as a refusal that tries the next worker
        // uncounted (a non-retryable handler ran on eight workers in turn).
        guard case .over(.silent(let reason)) = OpAnswer.judge(.failed(timeout, heard: nil), for: attempt(), stopping: false) else {
            Issue.record("not silent")
            return
        }
        #expect(reason.contains("no answer from \(worker) to the op"))
        guard case .over(.silent) = OpAnswer.judge(.failed(timeout, heard: token.jobOnly), for: attempt(), stopping: false) else {
            Issue.record("a heard token without A:B was followed")
            return
        }
        guard case .over(.lost) = OpAnswer.judge(.failed(timeout, heard: token), for: attempt(known: token), stopping: false) else {
            Issue.record("not lost")
            return
        }
    }

    @Test func aStopOrCancellationInterruptsTheAttempt() {
        guard case .over(.interrupted) = OpAnswer.judge(.failed(CancellationError(), heard: nil), for: attempt(), stopping: false),
            case .over(.interrupted) = OpAnswer.judge(.failed(NatterError(.timeout, "x"), heard: token), for: attempt(), stopping: true)
        else {
            Issue.record("not interrupted")
            return
        }
    }
}
