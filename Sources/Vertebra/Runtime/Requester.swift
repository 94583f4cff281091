import Foundation
import Natter
import VertebraXML

/// Sends `op`s and follows their conversations without a journal: the service operations
/// (advertise, discover, authorize) and the `vertebra dispatch` client.
struct Requester: Sendable {
    let client: any StanzaTransport
    var clock: any RuntimeClock = SystemClock()
    let inbox: RequesterInbox
    let ids: StanzaIDs
    var answerTimeout: Duration = .seconds(15)

    /// A started conversation: its token `A:B` and what the performer sends.
    struct Started: Sendable {
        let token: JobToken
        let events: AsyncStream<InboxEvent>
        /// The job the performer says this submission follows (it holds the submission's unique key).
        var followed: String?
    }

    /// Sends an `op` to `peer` and returns once the performer named the attempt.
    func start(
        _ path: Resource, arguments: [XElement], scope: Scope?, to peer: JID, job: JobToken? = nil,
        extra: [XElement] = []
    ) async throws -> Started {
        guard let job = job ?? JobToken.newJob() else {
            throw VertebraError(.unreachable, "no random bytes for a job token")
        }
        let events = await inbox.open(job: job.job, peer: peer, conversation: nil)
        let op = ProtocolMessage.op(type: path, token: job, scope: scope, arguments: arguments).element
        let payload = extra.isEmpty ? op : op.with(children: op.children + extra.map { .element($0) })
        do {
            // A link lost mid-request is retried with the same IQ id: the performer answers a
            // repeat from its journal, so the job is submitted once.
            let delivery = Delivery(client: client, clock: clock, answerTimeout: answerTimeout, giveUpAfter: answerTimeout * 2, absentPeer: .fail)
            let answer = try await delivery.deliver(IQ(type: .set, id: ids.next(), to: peer, payload: payload))
            guard let element = answer.payload, case .accepted(let token)? = try? ProtocolMessage(element),
                token.job == job.job, token.attempt != nil
            else {
                throw VertebraError(.unreachable, "\(peer) answered the op without a token A:B")
            }
            await inbox.name(job: job.job, peer: peer, attempt: token.attempt)
            return Started(token: token, events: events, followed: DispatchExtension.followedJob(in: element))
        } catch {
            await inbox.close(job: job.job, peer: peer)
            if let stanzaError = error.peerStanzaError { throw VertebraError.from(stanzaError, peer: peer.description) }
            throw error
        }
    }

    /// Runs a whole conversation and returns the values of its `data` and `final`.
    func perform(_ path: Resource, arguments: [XElement], to peer: JID, timeout: Duration = .seconds(30)) async throws -> [XElement] {
        let started = try await start(path, arguments: arguments, scope: .direct, to: peer)
        defer { Task { await inbox.close(job: started.token.job, peer: peer) } }
        return try await withThrowingTaskGroup(of: [XElement].self) { group in
            group.addTask { try await Self.collect(started.events, token: started.token) }
            group.addTask {
                try await clock.sleep(for: timeout)
                throw VertebraError(.unreachable, "\(peer) did not finish \(path) within \(timeout)")
            }
            defer { group.cancelAll() }
            guard let values = try await group.next() else { return [] }
            return values
        }
    }

    private static func collect(_ events: AsyncStream<InboxEvent>, token: JobToken) async throws -> [XElement] {
        var values: [XElement] = []
        for await event in events {
            guard case .message(let message) = event else { continue }
            switch message {
            case .data(_, let chunk): values += chunk
            case .final(_, let last): return values + last
            case .nack(_, let reason): throw VertebraError(.refused, reason)
            case .error(_, _, let error): throw error
            default: continue
            }
        }
        throw CancellationError()
    }
}
