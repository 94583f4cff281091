import Foundation
import Natter
import VertebraJournal
import VertebraXML

/// A checked job: its op as workers get it, its retry policy and the record that creates it.
struct PreparedJob: Sendable {
    let spec: JobSpec
    let op: XElement
    let retryable: Bool
    let record: JournalRecord
}

/// The coordinator's rules for a new job, without I/O: what it refuses (a target the ACL does
/// not let serve the operation, a deadline, key or delay out of range) and what it journals —
/// the job `pending`, with its `op` and the dispatch extension (targets, deadline, retry policy,
/// trace), so that a restarted coordinator resumes the same job.
enum Submission {
    /// Checks `spec` and makes its record. `mayServe` says whether a worker may serve the
    /// operation; `retryableByDefault` is what the workers advertised, used when the submitter
    /// did not say; `now` is when the job is submitted (its deadline counts from then, or from
    /// its start when delayed).
    static func prepare(
        _ spec: JobSpec, mayServe: (JID) -> Bool, retryableByDefault: Bool, now: Date
    ) throws(VertebraError) -> PreparedJob {
        guard let token = JobToken(spec.token) else { throw VertebraError(.badRequest, "bad job token \(spec.token)") }
        // Without targets a direct job would run on any worker.
        if spec.scope == .direct && spec.targets.isEmpty {
            throw VertebraError(.badRequest, "scope direct needs at least one target JID")
        }
        // Arguments go only to workers the ACL lets serve the operation, named ones included.
        let strangers = spec.targets.filter { !mayServe($0) }
        guard strangers.isEmpty else {
            throw VertebraError(
                .notAuthorized,
                "\(strangers.map(\.description).joined(separator: ", ")) may not serve \(spec.path) (no 'serve' rule in the coordinator's ACL)")
        }
        let longest = Int64(DispatchExtension.maxDeadlineSeconds)
        if let deadline = spec.deadline, deadline < .milliseconds(1) || deadline > .seconds(longest) {
            throw VertebraError(.badRequest, "a deadline must be from 1 ms to \(longest) s, not \(deadline)")
        }
        if let key = spec.key, let problem = DispatchExtension.keyProblem(key) { throw VertebraError(.badRequest, problem) }
        if let notBefore = spec.notBefore, notBefore.timeIntervalSince(now) > DispatchExtension.maxDeadlineSeconds {
            throw VertebraError(.badRequest, "a job may be delayed by at most ten years, not until \(notBefore)")
        }
        let op = ProtocolMessage.op(type: spec.path, token: token, scope: spec.scope, arguments: spec.arguments).element
        // Decided once, when the job is made, and journalled: a recovered job is the same job.
        let retryable = spec.retryable ?? retryableByDefault
        // The journal keeps the op with the dispatch extension, so recovery knows the targets,
        // deadline and retry policy; workers get the plain op.
        let stored = DispatchExtension.element(targets: spec.targets, deadline: spec.deadline, retryable: retryable, trace: spec.trace)
            .map { op.appending($0) } ?? op
        let record = JournalRecord.createJob(NewJob(
            token: spec.token, operation: spec.path.path, arguments: JournalText.text(stored),
            scope: JobScope(rawValue: spec.scope.rawValue) ?? .single, submitter: spec.submitter?.description,
            state: .pending, deadline: spec.deadline.map { (spec.notBefore ?? now).addingTimeInterval(seconds($0)) },
            retryOf: spec.retryOf, key: spec.key, notBefore: spec.notBefore))
        return PreparedJob(spec: spec, op: op, retryable: retryable, record: record)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension JobSpec {
    /// A job a submitter sent over XMPP (an `op`, alone or in a batch), with what its dispatch
    /// extension asks. A submitter may forbid retries, never grant them: whether an operation
    /// may run again is the workers' declaration (vetted by serve rules), not one peer's say-so.
    init(submittedBy peer: JID, token: JobToken, path: Resource, scope: Scope?, arguments: [XElement], extensions: DispatchExtension.Parsed) {
        self.init(
            token: token.job, path: path, arguments: arguments, scope: scope ?? .single, targets: extensions.targets,
            deadline: extensions.deadline, retryable: extensions.retryable == false ? false : nil, submitter: peer,
            key: extensions.key, notBefore: extensions.notBefore, trace: extensions.trace)
    }
}
