import Foundation
import Natter
import VertebraXML

/// Many jobs in one request (`urn:x-vertebra:batch`, an extension a 0.4 peer does not know):
/// a submitter sends `<batch>` holding up to ``maxJobs`` `op` elements (each may carry the
/// dispatch extension); the coordinator journals all of them in one transaction and answers
/// `<batch>` with one `<job token='A'/>` per op, in order. Jobs of a batch have no submitter
/// conversation: their results are in the journal (`vertebra jobs show`), not relayed.
///
/// A repeat of the same batch (the submitter's retry after a lost answer) gets the same answer
/// and starts nothing again.
public enum Batch {
    public static let namespace = "urn:x-vertebra:batch"
    /// The most jobs one batch may carry.
    public static let maxJobs = 1_000

    /// One job of a batch: its operation path, typed arguments and how to run it.
    public struct Job: Sendable {
        public var path: Resource
        public var arguments: [XElement]
        public var scope: Scope
        public var targets: [JID]
        public var deadline: Duration?
        /// A delayed job starts at this time.
        public var notBefore: Date?

        public init(
            _ path: Resource, arguments: [XElement], scope: Scope = .single, to targets: [JID] = [], deadline: Duration? = nil,
            notBefore: Date? = nil
        ) {
            self.notBefore = notBefore
            self.path = path
            self.arguments = arguments
            self.scope = scope
            self.targets = targets
            self.deadline = deadline
        }
    }

    /// The request for `jobs`, each under its token.
    static func request(_ jobs: [(JobToken, Job)]) -> XElement {
        XElement("batch", namespace: namespace, children: jobs.map { token, job in
            let op = ProtocolMessage.op(type: job.path, token: token, scope: job.scope, arguments: job.arguments).element
            let extra = DispatchExtension.element(targets: job.targets, deadline: job.deadline, retryable: nil, notBefore: job.notBefore)
            return .element(extra.map { op.appending($0) } ?? op)
        })
    }

    /// The `op`s of a request, checked: 1 to ``maxJobs``, each a job token `A` named once.
    static func ops(in request: XElement) throws(StanzaError) -> [(ProtocolMessage, XElement)] {
        let elements = request.elements.filter { $0.namespace == ProtocolMessage.namespace }
        guard (1...maxJobs).contains(elements.count), elements.count == request.elements.count else {
            throw StanzaError.badRequest("a batch holds 1 to \(maxJobs) op elements and nothing else, not \(request.elements.count) elements")
        }
        var seen: Set<String> = []
        var ops: [(ProtocolMessage, XElement)] = []
        for element in elements {
            let message: ProtocolMessage
            do throws(ProtocolError) { message = try ProtocolMessage(element) } catch { throw StanzaError.badRequest(error.message) }
            guard case .op(_, let token, _, _) = message, token.attempt == nil, seen.insert(token.job).inserted else {
                throw StanzaError.badRequest("each batch element must be an op with its own job token A")
            }
            ops.append((message, element))
        }
        return ops
    }

    /// The answer: the job ids in order.
    static func answer(_ tokens: [String]) -> XElement {
        XElement("batch", namespace: namespace, children: tokens.map {
            .element(XElement("job", namespace: namespace, attributes: [XAttribute("token", $0)]))
        })
    }

    /// The job ids of an answer; nil when it is not one for `count` jobs.
    static func tokens(in answer: XElement?, count: Int) -> [String]? {
        guard let answer, answer.name == "batch", answer.namespace == namespace else { return nil }
        let tokens = answer.elements.compactMap { $0.name == "job" ? $0[attribute: "token"] : nil }
        return tokens.count == count ? tokens : nil
    }
}
