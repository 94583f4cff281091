import Foundation
import Natter
import Testing
import VertebraJournal
import VertebraXML

@testable import Vertebra

/// What a coordinator refuses and journals for a new job, decided without a journal or workers.
@Suite struct SubmissionTests {
    let now = Date(timeIntervalSince1970: 2_000_000_000)
    let w1 = JID("w1@example.org/r")
    let w2 = JID("w2@example.org/r")

    func spec(
        targets: [JID] = [], deadline: Duration? = nil, retryable: Bool? = nil, key: String? = nil, notBefore: Date? = nil,
        token: String? = nil
    ) throws -> JobSpec {
        let job = try #require(JobToken.newJob(now: now))
        return JobSpec(
            token: token ?? job.job, path: Resource("/image/resize"), arguments: [], scope: targets.isEmpty ? .single : .direct,
            targets: targets, deadline: deadline, retryable: retryable, submitter: nil, key: key, notBefore: notBefore)
    }

    func prepare(_ spec: JobSpec, serving: Set<String> = [], retryableByDefault: Bool = true) throws(VertebraError) -> PreparedJob {
        try Submission.prepare(spec, mayServe: { serving.contains($0.description) }, retryableByDefault: retryableByDefault, now: now)
    }

    func refusal(_ spec: JobSpec, serving: Set<String> = []) -> String? {
        do {
            _ = try prepare(spec, serving: serving)
            return nil
        } catch {
            return "\(error.code.rawValue): \(error.message)"
        }
    }

    /// The created job's row as a reader of the journal would see it.
    func created(_ job: PreparedJob) throws -> NewJob {
        guard case .createJob(let row) = job.record else { throw VertebraError(.failed, "not a createJob record") }
        return row
    }

    @Test func targetsTheACLDoesNotLetServeAreRefusedByName() throws {
        let w1 = try #require(w1), w2 = try #require(w2)
        let refused = refusal(try spec(targets: [w1, w2]), serving: [w1.description])
        #expect(refused == "not-authorized: \(w2) may not serve /image/resize (no 'serve' rule in the coordinator's ACL)")
        #expect(refusal(try spec(targets: [w1]), serving: [w1.description]) == nil)
    }

    /// A `direct` op over XMPP without a target would run on any worker (the CLI and a batch
    /// refused it; a single op did not).
    @Test func aDirectJobWithoutTargetsIsRefused() throws {
        var direct = try spec()
        direct.scope = .direct
        #expect(refusal(direct) == "bad-request: scope direct needs at least one target JID")
    }

    @Test func deadlinesKeysAndDelaysOutOfRangeAreRefused() throws {
        let longest = Int64(DispatchExtension.maxDeadlineSeconds)
        #expect(refusal(try spec(deadline: .zero))?.hasPrefix("bad-request: a deadline must be from 1 ms") == true)
        #expect(refusal(try spec(deadline: .seconds(longest) + .milliseconds(1)))?.hasPrefix("bad-request: a deadline") == true)
        #expect(refusal(try spec(deadline: .milliseconds(1))) == nil)
        #expect(refusal(try spec(key: "")) == "bad-request: a unique key must not be empty")
        #expect(refusal(try spec(key: "a\u{7}b")) == "bad-request: a unique key must not contain control characters")
        #expect(refusal(try spec(notBefore: now.addingTimeInterval(DispatchExtension.maxDeadlineSeconds + 60)))?
            .hasPrefix("bad-request: a job may be delayed by at most ten years") == true)
        #expect(refusal(try spec(token: "not a token")) == "bad-request: bad job token not a token")
    }

    @Test func theJobIsJournalledPendingWithItsDeadlineFromItsStart() throws {
        let immediate = try created(try prepare(try spec(deadline: .seconds(30))))
        #expect(immediate.state == .pending)
        #expect(immediate.deadline == now.addingTimeInterval(30))
        let start = now.addingTimeInterval(3600)
        let delayed = try created(try prepare(try spec(deadline: .milliseconds(1500), notBefore: start)))
        #expect(delayed.deadline == start.addingTimeInterval(1.5), "a delayed job's deadline counts from its start")
        #expect(delayed.notBefore == start)
        #expect(try created(try prepare(try spec())).deadline == nil)
    }

    @Test func theJournalKeepsTheDispatchExtensionAndWorkersGetThePlainOp() throws {
        let w1 = try #require(w1)
        let job = try prepare(try spec(targets: [w1], deadline: .seconds(5), retryable: false), serving: [w1.description])
        let stored = try #require(JournalText.element(try created(job).arguments))
        let parsed = try DispatchExtension.parse(stored)
        #expect(parsed.targets == [w1])
        #expect(parsed.deadline == .seconds(5))
        #expect(parsed.retryable == false)
        #expect(job.op.firstElement(named: "dispatch", namespace: DispatchExtension.namespace) == nil)
    }

    @Test func theRetryPolicyIsTheSubmittersOrElseWhatWorkersAdvertised() throws {
        #expect(try prepare(try spec(), retryableByDefault: true).retryable)
        #expect(try !prepare(try spec(), retryableByDefault: false).retryable)
        #expect(try !prepare(try spec(retryable: false), retryableByDefault: true).retryable)
        #expect(try prepare(try spec(retryable: true), retryableByDefault: false).retryable)
    }

    @Test func aSubmitterOverXMPPMayForbidRetriesButNotGrantThem() throws {
        let token = try #require(JobToken.newJob(now: now)), peer = try #require(w1)
        func retryable(_ asked: Bool?) -> Bool? {
            var extensions = DispatchExtension.Parsed()
            extensions.retryable = asked
            extensions.key = "nightly"
            let spec = JobSpec(submittedBy: peer, token: token, path: Resource("/image/resize"), scope: nil, arguments: [], extensions: extensions)
            #expect(spec.scope == .single && spec.key == "nightly" && spec.submitter == peer)
            return spec.retryable
        }
        #expect(retryable(true) == nil, "left to what the workers declared")
        #expect(retryable(nil) == nil)
        #expect(retryable(false) == false)
    }
}
