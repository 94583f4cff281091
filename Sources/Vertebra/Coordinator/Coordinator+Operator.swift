import Foundation
import Natter
import VertebraJournal
import VertebraXML

/// Operator actions over XMPP (`vertebra jobs cancel|retry`): `/security/jobs/cancel` and
/// `/security/jobs/retry`, allowed to the coordinator's own account, to the job's submitter and
/// to accounts whose ACL rule covers the path.
extension Coordinator {
    func actOnJob(_ path: Resource, id: String, by peer: JID) async throws(StanzaError) -> JobActionResult {
        let job: Job
        do {
            job = try await journal.job(matching: id)
        } catch let error as JournalError where [.unknownJob, .ambiguousJob, .invalidArgument].contains(error.code) {
            throw StanzaError(type: .cancel, condition: error.code == .unknownJob ? .itemNotFound : .badRequest, text: error.message)
        } catch {
            throw VertebraErrors.internalError("the coordinator's journal could not be read: \(error)")
        }
        let isSubmitter = job.submitter.flatMap(JID.init)?.bare == peer.bare
        guard mayServeEverything(peer) || isSubmitter || options.accessList.allows(peer, path) else {
            throw VertebraErrors.notAuthorized("\(peer.bare) may not act on job \(job.token) (the submitter may; others need an ACL rule for \(path))")
        }
        if path == ServiceOperation.cancelJob { return try await cancelForOperator(job, by: peer) }
        return try await retryForOperator(job, by: peer)
    }

    private func cancelForOperator(_ job: Job, by peer: JID) async throws(StanzaError) -> JobActionResult {
        guard live[job.token] != nil else {
            let text = job.state.isTerminal ? "job \(job.token) already ended (\(job.state))" : "job \(job.token) is not running here"
            throw StanzaError(type: .cancel, condition: .notAllowed, text: text)
        }
        logger.notice("an operator cancels a job", metadata: ["job": "\(job.token)", "by": "\(peer)"])
        await cancel(job: job.token, reason: "cancelled by \(peer.bare)")
        return JobActionResult(job: job.token, state: "cancelling")
    }

    /// A failed or cancelled job runs again as a new job (same operation, arguments, scope,
    /// targets, deadline and key) that names the old one.
    private func retryForOperator(_ job: Job, by peer: JID) async throws(StanzaError) -> JobActionResult {
        guard job.state == .failed || job.state == .cancelled else {
            throw StanzaError(type: .cancel, condition: .notAllowed, text: "job \(job.token) is \(job.state); only a failed or cancelled job can be retried")
        }
        guard let stored = JournalText.element(job.arguments), case .op(let path, _, let scope, let arguments)? = try? ProtocolMessage(stored),
            let extensions = try? DispatchExtension.parse(stored), let token = JobToken.newJob()
        else {
            throw StanzaError.badRequest("the journalled op of job \(job.token) cannot be read back; it cannot be retried")
        }
        let spec = JobSpec(
            token: token.job, path: path, arguments: arguments, scope: scope ?? .single, targets: extensions.targets,
            deadline: extensions.deadline, retryable: extensions.retryable, submitter: peer, key: job.key, retryOf: job.token,
            trace: extensions.trace)
        do {
            try await beginMany([spec], followed: false)
        } catch let error as JournalError where error.code == .duplicateKey {
            throw StanzaError(type: .cancel, condition: .conflict, text: "another unfinished job holds the key '\(job.key ?? "")'")
        } catch {
            throw StanzaError.badRequest("job \(job.token) cannot be retried: \(error)")
        }
        logger.notice("an operator retries a job", metadata: ["job": "\(job.token)", "new": "\(token.job)", "by": "\(peer)"])
        return JobActionResult(job: token.job, state: JobState.pending.rawValue, retryOf: job.token)
    }
}
