import Natter
import VertebraXML

/// The performer role of an agent: what it does with an incoming `op` and `cancel`.
protocol PerformerRole: Sendable {
    /// Answers an `op`; `afterwards` starts the conversation once the answer is on the wire.
    func receiveOp(_ message: ProtocolMessage, payload: XElement, request: IQ, from peer: JID) async throws -> IQAnswer
    /// Handles a `cancel`.
    func receiveCancel(_ token: JobToken, request: IQ, from peer: JID) async throws
}

/// Wires Vertebra's protocol elements on a client: `op`/`cancel` to the performer role,
/// `ack`/`nack`/`data`/`final`/`error` to the requester inbox.
enum ProtocolEndpoint {
    static func install(on client: any StanzaTransport, inbox: RequesterInbox, performer: (any PerformerRole)?) async {
        let namespace = ProtocolMessage.namespace
        for name in ["op", "cancel"] {
            await client.respondToIQ(namespace: namespace, name: name) { request in
                let (message, from) = try parse(request)
                guard let performer else {
                    throw StanzaError(type: .cancel, condition: .serviceUnavailable, text: "this agent runs no operations")
                }
                if case .cancel(let token) = message {
                    try await performer.receiveCancel(token, request: request, from: from)
                    return IQAnswer()
                }
                guard request.type == .set, let payload = request.payload else {
                    throw StanzaError.badRequest("an op must be an IQ set")
                }
                return try await performer.receiveOp(message, payload: payload, request: request, from: from)
            }
        }
        for name in ["ack", "nack", "data", "final", "error"] {
            await client.respondToIQ(namespace: namespace, name: name) { request in
                let (message, from) = try parse(request)
                try await inbox.receive(message, in: request, from: from)
                return IQAnswer()
            }
        }
    }

    private static func parse(_ request: IQ) throws -> (ProtocolMessage, JID) {
        guard let payload = request.payload, let from = request.from else {
            throw StanzaError.badRequest("a Vertebra IQ needs a payload and a sender")
        }
        do {
            return (try ProtocolMessage(payload), from)
        } catch {
            throw error.stanzaError
        }
    }
}
