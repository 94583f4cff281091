import Natter
import Testing
import VertebraXML

@testable import Vertebra

/// The requester's side of one attempt and a job's retry plan, driven without clock, sockets
/// or Tasks: each event in, the coordinator's actions out.
@Suite struct AttemptFollowerTests {
    let worker = JID(local: "w1", domain: "example.org", resource: "r")
    let token = JobToken("0123456789abcdef0123456789abcdef:fedcba98")

    func makeFollower(values: [XElement] = []) throws -> AttemptFollower {
        AttemptFollower(worker: try #require(worker), lease: .seconds(10), values: values)
    }

    func value(_ text: String) -> XElement {
        XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "v")], text: text)
    }

    /// The actions as short labels, to compare whole sequences.
    func labels(_ actions: [AttemptFollower.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .report(.running): "running"
            case .report(.data(_, let values)): "data(\(values.count))"
            case .report(.progress(_, let progress)): "progress(\(progress.message))"
            case .report: "report"
            case .acknowledged: "ack"
            case .startLease: "startLease"
            case .stopLease: "stopLease"
            case .sendCancel: "sendCancel"
            case .end(let outcome): "end(\(outcome.metricLabel))"
            }
        }
    }

    @Test func aClassicConversationReportsEachStepAndEndsDoneWithAllChunks() throws {
        let token = try #require(token)
        var follower = try makeFollower(values: [value("journalled")])
        #expect(labels(follower.handle(.message(.ack(token)))) == ["ack"])
        #expect(labels(follower.handle(.message(.data(token, values: [value("a")])))) == ["data(1)"])
        let progress = JobProgress(message: "half", done: 1, total: 2)
        #expect(labels(follower.handle(.message(.data(token, values: progress.chunk)))) == ["progress(half)"])
        #expect(labels(follower.handle(.message(.final(token, values: [value("b")])))) == ["data(1)", "end(done)"])
        guard case .done(let values)? = follower.outcome else { Issue.record("not done: \(String(describing: follower.outcome))"); return }
        #expect(values.map(\.text) == ["journalled", "a", "b"])
        // Nothing happens after the end, not even a late message.
        #expect(follower.handle(.message(.data(token, values: [value("late")]))).isEmpty)
        #expect(follower.handle(.leaseExpired).isEmpty)
    }

    @Test func theWorkersEndDecidesTheOutcome() throws {
        let token = try #require(token)
        let cases: [(ProtocolMessage, String)] = [
            (.nack(token, reason: "busy"), "refused"),
            (.error(token, kind: .error, error: VertebraError(.failed, "boom")), "failed"),
            (.error(token, kind: .fatal, error: VertebraError(.failed, "bad input")), "failed"),
            (.error(token, kind: .cancel, error: VertebraError(.cancelled, "by you")), "cancelled"),
        ]
        for (message, label) in cases {
            var follower = try makeFollower()
            #expect(labels(follower.handle(.message(message))) == ["end(\(label))"])
        }
        var retryable = try makeFollower()
        _ = retryable.handle(.message(.error(token, kind: .error, error: VertebraError(.failed, "boom"))))
        guard case .failed(_, let yes)? = retryable.outcome else { Issue.record("not failed"); return }
        var fatal = try makeFollower()
        _ = fatal.handle(.message(.error(token, kind: .fatal, error: VertebraError(.failed, "bad input"))))
        guard case .failed(_, let no)? = fatal.outcome else { Issue.record("not failed"); return }
        #expect(yes && !no)
    }

    @Test func aWorkerThatGoesAwayHasOneLeaseToComeBack() throws {
        var follower = try makeFollower()
        #expect(labels(follower.handle(.peerGone)) == ["startLease"])
        #expect(follower.handle(.peerGone).isEmpty, "a second absence does not restart the lease")
        #expect(labels(follower.handle(.peerBack)) == ["stopLease"])
        #expect(follower.handle(.peerBack).isEmpty)
        #expect(labels(follower.handle(.peerGone)) == ["startLease"])
        #expect(labels(follower.handle(.leaseExpired)) == ["end(lost)"])
    }

    @Test func aCancelIsSentOnceAndTheWorkerHasOneLeaseToConfirmIt() throws {
        var follower = try makeFollower()
        #expect(labels(follower.handle(.cancelRequested("operator"))) == ["sendCancel", "startLease"])
        #expect(follower.handle(.cancelRequested("again")).isEmpty)
        #expect(labels(follower.handle(.leaseExpired)) == ["end(cancelled)"])
        guard case .cancelled(let reason)? = follower.outcome else { Issue.record("not cancelled"); return }
        #expect(reason == "operator")
        // A silent worker after a cancel is a cancelled attempt too, not a silent one.
        var silent = try makeFollower()
        _ = silent.handle(.cancelRequested(""))
        #expect(labels(silent.handle(.silent("quiet"))) == ["end(cancelled)"])
        guard case .cancelled(let why)? = silent.outcome else { Issue.record("not cancelled"); return }
        #expect(why == "cancelled")
    }

    /// The worker confirms a cancel "by" the coordinator that passed it on; the job says who
    /// asked for it (it said the coordinator, whoever cancelled).
    @Test func aConfirmedCancelKeepsWhoAskedForIt() throws {
        var follower = try makeFollower()
        _ = follower.handle(.cancelRequested("cancelled by alice@localhost"))
        let attempt = try #require(JobToken("0123456789abcdef0123456789abcdef:fedcba98"))
        _ = follower.handle(.message(.error(attempt, kind: .cancel, error: VertebraError(.cancelled, "by coordinator@localhost/coordinator"))))
        guard case .cancelled(let reason)? = follower.outcome else { Issue.record("not cancelled"); return }
        #expect(reason == "cancelled by alice@localhost")
        // A cancel the worker made on its own (its deadline, its stop) keeps the worker's words.
        var own = try makeFollower()
        _ = own.handle(.message(.error(attempt, kind: .cancel, error: VertebraError(.cancelled, "by the worker"))))
        guard case .cancelled(let why)? = own.outcome else { Issue.record("not cancelled"); return }
        #expect(why == "by the worker")
    }

    @Test func theDeadlineCancelsTheWorkersAttemptAndEndsIt() throws {
        var follower = try makeFollower()
        #expect(labels(follower.handle(.deadlineExceeded)) == ["sendCancel", "end(deadline)"])
        var quiet = try makeFollower()
        #expect(labels(quiet.handle(.silent("120 s"))) == ["end(silent)"])
    }

    @Test func anInlineConversationIsReportedAsIfItCameOneByOne() throws {
        let token = try #require(token)
        var follower = try makeFollower()
        let actions = follower.takeInline([.data(token, values: [value("a")]), .final(token, values: [value("b")])])
        #expect(labels(actions) == ["running", "data(1)", "data(1)", "end(done)"])
        var endless = try makeFollower()
        #expect(labels(endless.takeInline([.data(token, values: [value("a")])])) == ["running", "data(1)", "end(failed)"])
        guard case .failed(let error, let retryable)? = endless.outcome else { Issue.record("not failed"); return }
        #expect(error.code == .badResult && !retryable)
    }
}

@Suite struct RetryPlanTests {
    let w1 = JID(local: "w1", domain: "example.org", resource: "r")
    let w2 = JID(local: "w2", domain: "example.org", resource: "r")

    func plan(failuresBefore: Int = 0) -> RetryPlan {
        RetryPlan(failuresBefore: failuresBefore, firstDelay: .seconds(1), maxDelay: .seconds(3), maxAttempts: 3)
    }

    @Test func failedAttemptsRetryElsewhereWithABackoffUntilTheLimit() throws {
        let (w1, w2) = (try #require(w1), try #require(w2))
        var plan = plan()
        guard case .retry(let first) = plan.after(.lost("gone"), on: w1, jobRetryable: true, cancelReason: nil) else { Issue.record("no retry"); return }
        guard case .retry(let second) = plan.after(.silent("quiet"), on: w2, jobRetryable: true, cancelReason: nil) else { Issue.record("no retry"); return }
        #expect(first == .seconds(1) && second == .seconds(2))
        #expect(plan.excluded == [w1, w2])
        guard case .end(let ended) = plan.after(.lost("gone again"), on: w1, jobRetryable: true, cancelReason: nil) else { Issue.record("no end"); return }
        #expect(ended.state == .failed)
        #expect(ended.error?.code == .workerLost)
        #expect(ended.error?.message == "gone again; gave up after 3 attempts")
    }

    @Test func aRestartedJobCountsTheAttemptsItAlreadyHad() throws {
        var plan = plan(failuresBefore: 2)
        guard case .end(let ended) = plan.after(.lost("gone"), on: try #require(w1), jobRetryable: true, cancelReason: nil) else { Issue.record("no end"); return }
        #expect(ended.error?.message == "gone; gave up after 3 attempts")
    }

    @Test func notRetryableFailuresEndAtOnce() throws {
        let w1 = try #require(w1)
        var plan = plan()
        guard case .end(let fatal) = plan.after(.failed(VertebraError(.failed, "bad input"), retryable: false), on: w1, jobRetryable: true, cancelReason: nil)
        else { Issue.record("no end"); return }
        #expect(fatal.error?.message == "bad input")
        guard case .end(let job) = plan.after(.lost("gone"), on: w1, jobRetryable: false, cancelReason: nil) else { Issue.record("no end"); return }
        #expect(job.error?.message == "gone; the operation is not retryable")
        // A worker that lost its job says so with a retryable code even when it sent `fatal`.
        var fresh = self.plan()
        guard case .retry = fresh.after(.failed(VertebraError(.workerLost, "restarted"), retryable: false), on: w1, jobRetryable: true, cancelReason: nil)
        else { Issue.record("no retry"); return }
    }

    @Test func aRefusalTriesAnotherWorkerAtOnceAndEveryoneRefusingBacksOff() throws {
        let w1 = try #require(w1)
        var plan = plan()
        guard case .requeue = plan.after(.refused("busy"), on: w1, jobRetryable: true, cancelReason: nil) else { Issue.record("no requeue"); return }
        #expect(plan.excluded == [w1] && plan.failures == 0)
        #expect(plan.allRefused() == .seconds(1))
        #expect(plan.excluded.isEmpty)
        #expect(plan.allRefused() == .seconds(2))
        #expect(plan.allRefused() == .seconds(3))
        #expect(plan.allRefused() == .seconds(3), "the backoff stops at its maximum")
    }

    @Test func aCancelWinsOverARetryAndAStopLeavesTheJobOpen() throws {
        let w1 = try #require(w1)
        var plan = plan()
        guard case .end(let ended) = plan.after(.lost("gone"), on: w1, jobRetryable: true, cancelReason: "operator") else { Issue.record("no end"); return }
        #expect(ended.state == .cancelled && ended.error?.message == "operator")
        guard case .stop = plan.after(.interrupted, on: w1, jobRetryable: true, cancelReason: nil) else { Issue.record("no stop"); return }
        guard case .end(let deadline) = plan.after(.deadline, on: w1, jobRetryable: true, cancelReason: nil) else { Issue.record("no end"); return }
        #expect(deadline.error?.code == .deadlineExceeded)
    }

    @Test func aFanOutEndsDoneOnlyWhenEveryWorkerDid() throws {
        let (w1, w2) = (try #require(w1), try #require(w2))
        let done = FanOutEnd.combine([(w2, .done([])), (w1, .done([]))], cancelReason: nil)
        #expect(done?.state == .done)
        #expect(done?.result.compactMap(\.text) == [w1.description, w2.description], "each worker's part is named, in JID order")
        let mixed = FanOutEnd.combine([(w1, .done([])), (w2, .lost("gone"))], cancelReason: nil)
        #expect(mixed?.state == .failed && mixed?.error?.code == .workerLost)
        #expect(mixed?.error?.message.hasPrefix("1 of 2 workers failed: ") ?? false)
        let twoKinds = FanOutEnd.combine([(w1, .silent("quiet")), (w2, .lost("gone"))], cancelReason: nil)
        #expect(twoKinds?.error?.code == .failed)
        #expect(FanOutEnd.combine([(w1, .done([])), (w2, .cancelled("x"))], cancelReason: "operator")?.error?.message == "operator")
        #expect(FanOutEnd.combine([(w1, .done([])), (w2, .interrupted)], cancelReason: nil) == nil)
    }
}
