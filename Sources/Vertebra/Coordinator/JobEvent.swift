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
/// millisecond), and whether the job may be retried.
enum DispatchExtension {
    static let namespace = "urn:x-vertebra:dispatch"
    /// The longest deadline accepted (ten years) and the most `direct` targets.
    static let maxDeadlineSeconds: Double = 315_360_000
    static let maxTargets = 1_000

    static func element(targets: [JID], deadline: Duration?, retryable: Bool?) -> XElement? {
        guard !targets.isEmpty || deadline != nil || retryable != nil else { return nil }
        var attributes: [XAttribute] = []
        if let deadline { attributes.append(XAttribute("deadline", secondsText(deadline))) }
        if let retryable { attributes.append(XAttribute("retryable", retryable ? "1" : "0")) }
        return XElement(
            "dispatch", namespace: namespace, attributes: attributes,
            children: targets.map { .element(XElement("jid", namespace: namespace, text: $0.description)) })
    }

    struct Parsed {
        var targets: [JID] = []
        var deadline: Duration?
        var retryable: Bool?
    }

    static func parse(_ op: XElement) throws(StanzaError) -> Parsed {
        guard let element = op.firstElement(named: "dispatch", namespace: namespace) else { return Parsed() }
        var parsed = Parsed()
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
