import Natter
import VertebraXML

/// The status probe (an extension a 0.4 peer does not know): an IQ `get` carrying
/// `<status xmlns='urn:x-vertebra:status' token='A:B'/>`, answered with the same element and
/// `state='running'` (its handler runs or its results are being delivered), `'ended'` or
/// `'unknown'`. The coordinator asks when an attempt has been silent too long.
enum AttemptStatus {
    static let namespace = "urn:x-vertebra:status"

    enum State: String, Sendable {
        case running, ended, unknown
    }

    /// What the probe learnt.
    enum Answer: Sendable, Equatable {
        case running
        /// Not running, with why (the worker said so, or it does not know the probe).
        case notRunning(String)
        /// No answer at all (our link, a timeout): nothing is known.
        case unreachable
    }

    static func request(_ attempt: JobToken) -> XElement {
        XElement("status", namespace: namespace, attributes: [XAttribute("token", attempt.description)])
    }

    static func answer(_ attempt: JobToken, _ state: State) -> XElement {
        XElement("status", namespace: namespace, attributes: [
            XAttribute("token", attempt.description), XAttribute("state", state.rawValue),
        ])
    }

    /// Asks `worker` about `attempt`.
    static func ask(_ worker: JID, attempt: JobToken, client: any StanzaTransport, ids: StanzaIDs, timeout: Duration) async -> Answer {
        let request = IQ(type: .get, id: ids.next(), to: worker, payload: request(attempt))
        let reply: IQ
        do {
            reply = try await client.sendAndWait(request, timeout: timeout)
        } catch let error as NatterError {
            if let stanzaError = error.stanzaError, !stanzaError.meansRecipientGone || stanzaError.condition == .serviceUnavailable {
                return .notRunning("does not answer status probes (\(stanzaError.condition))")
            }
            return error.code == .timeout ? .notRunning("did not answer a status probe within \(timeout)") : .unreachable
        } catch {
            return .unreachable
        }
        guard let payload = reply.payload, payload.name == "status", payload.namespace == namespace,
            let state = payload[attribute: "state"].flatMap(State.init(rawValue:))
        else { return .notRunning("answered the status probe without a state") }
        return state == .running ? .running : .notRunning("says attempt \(attempt) is \(state.rawValue)")
    }
}
