import Foundation
import Natter
import VertebraXML

/// What happens to a job, as a coordinator sees it.
public enum JobEvent: Sendable {
    /// Sent to a worker (a new attempt).
    case dispatched(worker: JID)
    /// The worker acknowledged and runs it.
    case running(worker: JID)
    /// The worker reported progress.
    case progress(worker: JID, JobProgress)
    /// One chunk of results from a worker.
    case data(worker: JID, values: [XElement])
    /// Finished: every worker's part ended well.
    case done
    /// Failed, cancelled or timed out, with the reason.
    case failed(VertebraError)
}

/// A job submitted to a coordinator: its id (token `A`) and its events, ending with `done` or
/// `failed`.
public struct JobHandle: Sendable {
    public let id: String
    public let events: AsyncStream<JobEvent>
}

/// The `<dispatch>` extension element a submitter may add to its `op` (ignored by 0.4 peers):
/// target JIDs for scope `direct`, a deadline in seconds (decimals allowed, to the
/// millisecond), whether the job may be retried, and `detach='1'`: the submitter will not
/// follow the job, so the coordinator answers the `op` and relays nothing after it.
enum DispatchExtension {
    static let namespace = "urn:x-vertebra:dispatch"
    /// The longest deadline accepted (ten years) and the most `direct` targets.
    static let maxDeadlineSeconds: Double = 315_360_000
    static let maxTargets = 1_000

    /// The longest unique key, in UTF-8 bytes.
    static let maxKeyBytes = 256

    static func element(
        targets: [JID], deadline: Duration?, retryable: Bool?, key: String? = nil, notBefore: Date? = nil, trace: TraceCarrier = TraceCarrier(),
        detach: Bool = false
    ) -> XElement? {
        guard !targets.isEmpty || deadline != nil || retryable != nil || key != nil || notBefore != nil || !trace.isEmpty || detach else { return nil }
        var attributes: [XAttribute] = []
        if let deadline { attributes.append(XAttribute("deadline", secondsText(deadline))) }
        if let retryable { attributes.append(XAttribute("retryable", retryable ? "1" : "0")) }
        if let key { attributes.append(XAttribute("key", key)) }
        if let notBefore { attributes.append(XAttribute("not-before", String(Int64((notBefore.timeIntervalSince1970 * 1000).rounded())))) }
        if detach { attributes.append(XAttribute("detach", "1")) }
        return XElement(
            "dispatch", namespace: namespace, attributes: attributes,
            children: targets.map { .element(XElement("jid", namespace: namespace, text: $0.description)) } + trace.elements.map { .element($0) })
    }

    /// In the answer to an `op`: the submission follows job `id` (which holds its unique key).
    static func followed(_ id: String) -> XElement {
        XElement("job", namespace: namespace, attributes: [XAttribute("id", id)])
    }

    /// The job an answer says the submission follows, if any.
    static func followedJob(in answer: XElement?) -> String? {
        guard let id = answer?.firstElement(named: "job", namespace: namespace)?[attribute: "id"],
            let token = JobToken(id), token.attempt == nil
        else { return nil }
        return token.job
    }

    struct Parsed {
        var targets: [JID] = []
        var deadline: Duration?
        var retryable: Bool?
        var key: String?
        var notBefore: Date?
        var trace = TraceCarrier()
        /// The submitter will not follow the job: no relay after the answer to the `op`.
        var detach = false
    }

    /// Why `key` cannot be a unique key (nil if it can).
    static func keyProblem(_ key: String) -> String? {
        if key.isEmpty { return "a unique key must not be empty" }
        if key.utf8.count > maxKeyBytes { return "a unique key is at most \(maxKeyBytes) bytes, not \(key.utf8.count)" }
        if key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "a unique key must not contain control characters"
        }
        return nil
    }

    static func parse(_ op: XElement) throws(StanzaError) -> Parsed {
        guard let element = op.firstElement(named: "dispatch", namespace: namespace) else { return Parsed() }
        var parsed = Parsed()
        parsed.trace = TraceCarrier(in: op)
        for jid in element.elements where jid.name == "jid" {
            guard let target = JID(jid.text), target.isFull else {
                throw StanzaError.badRequest("dispatch target '\(jid.text)' is not a full JID")
            }
            parsed.targets.append(target)
        }
        if let text = element[attribute: "deadline"] {
            guard let seconds = Double(text), seconds.isFinite, seconds >= 0.001, seconds <= maxDeadlineSeconds else {
                throw StanzaError.badRequest("deadline '\(text)' is not a number of seconds from 0.001 to \(Int(maxDeadlineSeconds))")
            }
            parsed.deadline = .milliseconds(Int64((seconds * 1000).rounded()))
        }
        guard parsed.targets.count <= maxTargets else {
            throw StanzaError.badRequest("\(parsed.targets.count) dispatch targets; at most \(maxTargets)")
        }
        guard Set(parsed.targets).count == parsed.targets.count else {
            throw StanzaError.badRequest("a dispatch target is named twice")
        }
        if let text = element[attribute: "retryable"] { parsed.retryable = text == "1" || text == "true" }
        if let text = element[attribute: "detach"] {
            guard ["0", "1", "false", "true"].contains(text) else { throw StanzaError.badRequest("detach '\(text)' is not 0, 1, false or true") }
            parsed.detach = text == "1" || text == "true"
        }
        if let key = element[attribute: "key"] {
            if let problem = keyProblem(key) { throw StanzaError.badRequest(problem) }
            parsed.key = key
        }
        if let text = element[attribute: "not-before"] {
            // Milliseconds since 1970 (UTC), from the epoch to ten years ahead.
            let latest = (Date().timeIntervalSince1970 + maxDeadlineSeconds) * 1000
            guard let milliseconds = Int64(text), milliseconds >= 0, Double(milliseconds) <= latest else {
                throw StanzaError.badRequest("not-before '\(text)' is not a time in milliseconds since 1970 within ten years from now")
            }
            parsed.notBefore = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        }
        return parsed
    }

    /// `12` for whole seconds (as older Vertebra for Swift wrote), else `0.5` to the millisecond.
    static func secondsText(_ duration: Duration) -> String {
        let seconds = min(max(duration.components.seconds, 0), Int64(maxDeadlineSeconds))
        let milliseconds = seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 == 0 { return String(milliseconds / 1000) }
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
