import Foundation
import Testing
import VertebraJournal
import VertebraXML

@testable import Vertebra

/// How a restarted coordinator reads its journal, decided without a journal, worker or clock.
@Suite struct RecoveryPlanTests {
    let attempt = JobToken("0123456789abcdef0123456789abcdef:fedcba98")

    func value(_ text: String) -> XElement {
        XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "v")], text: text)
    }

    /// The attempt's state as one line: its results so far and its end.
    func soFar(_ inbound: [ProtocolMessage], _ conversation: ConversationState = .open) -> String {
        let (values, ended) = RecoveryPlan.attemptSoFar(inbound: inbound, conversation: conversation)
        let end: String = switch ended {
        case nil: "running"
        case .done(let all)?: "done(\(all.map(\.text).joined(separator: ",")))"
        case .refused(let reason)?: "refused(\(reason))"
        case .lost(let reason)?: "lost(\(reason))"
        case .cancelled(let reason)?: "cancelled(\(reason))"
        case .failed(let error, let retryable)?: "failed(\(error.code.rawValue), retryable: \(retryable))"
        default: "other"
        }
        return "[\(values.map(\.text).joined(separator: ","))] \(end)"
    }

    @Test func anAttemptResumesWithTheResultsItsWorkerSentAndItsEnd() throws {
        let attempt = try #require(attempt)
        let progress = JobProgress(message: "half", done: 1, total: 2).chunk
        #expect(soFar([.ack(attempt)]) == "[] running")
        #expect(soFar([.ack(attempt), .data(attempt, values: [value("a")]), .data(attempt, values: progress)]) == "[a] running",
                "progress is not a result")
        #expect(soFar([.data(attempt, values: [value("a")]), .final(attempt, values: [value("b")])]) == "[a] done(a,b)")
        #expect(soFar([.nack(attempt, reason: "busy")]) == "[] refused(busy)")
        #expect(soFar([.error(attempt, kind: .error, error: VertebraError(.failed, "x"))]) == "[] failed(failed, retryable: true)")
        #expect(soFar([.error(attempt, kind: .fatal, error: VertebraError(.badResult, "x"))]) == "[] failed(bad-result, retryable: false)")
        #expect(soFar([.error(attempt, kind: .cancel, error: VertebraError(.cancelled, "by c"))]) == "[] cancelled(by c)")
    }

    @Test func aConversationClosedWithoutAnEndWasCancelledOrLostBeforeTheRestart() throws {
        let attempt = try #require(attempt)
        #expect(soFar([.ack(attempt)], .cancelled) == "[] cancelled(cancelled before the restart)")
        #expect(soFar([.ack(attempt)], .failed) == "[] lost(the attempt ended before the restart)")
        #expect(soFar([.final(attempt, values: [])], .finished) == "[] done()", "its end, when journalled, wins")
    }

    @Test func aSingleJobResumesItsLastAttemptAndAFanOutEveryPart() {
        #expect(RecoveryPlan.attemptsToResume([1, 2, 3], scope: .single) == [3])
        #expect(RecoveryPlan.attemptsToResume([1, 2, 3], scope: .all) == [1, 2, 3])
        #expect(RecoveryPlan.attemptsToResume([1, 2], scope: .direct) == [1, 2])
        #expect(RecoveryPlan.attemptsToResume([Int](), scope: .single).isEmpty)
    }

    @Test func theSubmitterOfAJobThatEndedMeanwhileHearsItsEnd() {
        func heard(_ state: JobState, _ code: String?, _ error: String?) -> String {
            switch RecoveryPlan.endOfEndedJob(state: state, errorCode: code, error: error) {
            case .done: "done"
            case .failed(let error): "\(error.code.rawValue): \(error.message)"
            default: "other"
            }
        }
        #expect(heard(.done, nil, nil) == "done")
        #expect(heard(.failed, "worker-lost", "w1 went away") == "worker-lost: w1 went away")
        #expect(heard(.failed, nil, "deadline-exceeded: too slow") == "deadline-exceeded: too slow", "a row from before schema 5")
        #expect(heard(.failed, nil, nil) == "failed: failed")
        #expect(heard(.cancelled, "cancelled", "by alice") == "cancelled: by alice")
    }

    /// A delayed job's deadline counts from its start, also when the start came late because
    /// the coordinator was down (it failed deadline-exceeded without a run).
    @Test func aDelayedJobsDeadlineCountsFromItsActualStart() {
        let due = Date(timeIntervalSince1970: 1_000)
        let journalled = due.addingTimeInterval(2)
        func deadline(firstAttempt: Date? = nil, now: Double) -> Double? {
            RecoveryPlan.deadline(
                journalled: journalled, duration: .seconds(2), notBefore: due, firstAttempt: firstAttempt,
                now: Date(timeIntervalSince1970: now))?.timeIntervalSince1970
        }
        #expect(deadline(now: 900) == 1_002, "not due yet: from its time")
        #expect(deadline(now: 1_010) == 1_012, "due while the coordinator was down: from now")
        #expect(deadline(firstAttempt: Date(timeIntervalSince1970: 1_005), now: 1_010) == 1_007, "started late: from its first attempt")
        // A job without a delay keeps its journalled deadline, as one without a deadline has none.
        #expect(RecoveryPlan.deadline(journalled: journalled, duration: .seconds(2), notBefore: nil, firstAttempt: nil, now: .distantFuture) == journalled)
        #expect(RecoveryPlan.deadline(journalled: nil, duration: nil, notBefore: due, firstAttempt: nil, now: due) == nil)
    }

    @Test func aJournalledDeadlineLeavesItsRemainingTimeClamped() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(RecoveryPlan.timeLeft(until: now.addingTimeInterval(2.5), now: now) == .milliseconds(2500))
        #expect(RecoveryPlan.timeLeft(until: now.addingTimeInterval(-60), now: now) == .zero, "passed: nothing left")
        let longest = Duration.milliseconds(Int64(DispatchExtension.maxDeadlineSeconds * 1000))
        #expect(RecoveryPlan.timeLeft(until: .distantFuture, now: now) == longest)
        #expect(RecoveryPlan.timeLeft(until: Date(timeIntervalSince1970: .infinity), now: now) == longest)
        #expect(RecoveryPlan.timeLeft(until: Date(timeIntervalSince1970: .nan), now: now) == .zero, "not a time: nothing left")
    }
}
