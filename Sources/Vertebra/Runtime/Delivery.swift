import Natter

/// Sends one IQ `set` until the peer answers it. Timeouts and lost links are retried with the
/// same IQ id (the peer's journal recognises a repeat and answers it again), with backoff.
struct Delivery: Sendable {
    /// What to do when the server says the recipient is not there.
    enum AbsentPeer: Sendable {
        /// Keep trying: the peer is expected back (a restarting coordinator).
        case wait
        /// Give up at once: pick someone else (a lost worker).
        case fail
    }

    let client: any StanzaTransport
    var clock: any RuntimeClock = SystemClock()
    /// How long one try waits for its answer.
    var answerTimeout: Duration = .seconds(10)
    /// When to stop retrying.
    var giveUpAfter: Duration = .seconds(3600)
    /// When to stop retrying a peer that answers "wait" (busy, its journal failing), when that
    /// should come sooner than `giveUpAfter` (nil: the same).
    var giveUpOnWaitAfter: Duration?
    var absentPeer: AbsentPeer = .wait

    /// The peer's answer (`result`). Throws the peer's stanza error, or the last transport error
    /// once `giveUpAfter` passed; `CancellationError` when cancelled.
    func deliver(_ request: IQ) async throws -> IQ {
        let start = clock.now
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await client.sendAndWait(request, timeout: answerTimeout)
            } catch let error as NatterError where isRetryable(error) {
                let limit = error.code == .stanzaError ? giveUpOnWaitAfter ?? giveUpAfter : giveUpAfter
                guard clock.now - start < limit else { throw error }
                try await clock.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func isRetryable(_ error: NatterError) -> Bool {
        switch error.code {
        case .timeout, .disconnected: return true
        case .stanzaError:
            guard let stanzaError = error.stanzaError else { return false }
            if stanzaError.type == .wait { return true }
            let absent = [.serviceUnavailable, .recipientUnavailable].contains(stanzaError.condition)
            return absentPeer == .wait && absent
        default: return false
        }
    }
}

extension Error {
    /// The stanza error a peer answered with, when this is one.
    var peerStanzaError: StanzaError? {
        (self as? NatterError)?.stanzaError ?? (self as? StanzaError)
    }
}
