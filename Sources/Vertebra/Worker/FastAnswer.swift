import VertebraXML

/// The worker's side of a fast-path attempt (``FastPath``) as a state machine without I/O,
/// clock or Tasks: what the handler does and the budget running out go in; what to send, in
/// order, and how the answer to the `op` goes out come out. ``FastAttempt`` drives it.
///
/// While the budget runs, result chunks are collected. If the handler ends first, the answer
/// carries the end and the chunks (`.inline`). If the budget runs out first, the attempt turns
/// classic: the `ack` and the collected chunks go out before anything the handler yields later,
/// and the end follows as usual.
struct FastAnswer {
    /// How the answer to the `op` goes out.
    enum Outcome: Sendable {
        /// The handler ended in time: the end and every chunk it yielded.
        case inline(ProtocolMessage, chunks: [[XElement]])
        /// The budget ran out: a plain answer; the conversation goes on classic.
        case classic
    }

    /// What the handler's end leads to.
    enum Ending {
        /// The answer to the `op` carries it: nothing more to send.
        case inAnswer
        /// Classic: send these first (an `ack` and chunks not sent yet), then the end itself.
        case classic(sendFirst: [ProtocolMessage])
    }

    struct YieldedAfterEnd: Error {}

    private enum State {
        case collecting([[XElement]])
        case ended(ProtocolMessage, [[XElement]])
        /// Classic; the `ack` and `pending` chunks not yet sent while `flushed` is false.
        case streaming(pending: [[XElement]], flushed: Bool)
    }

    let ack: ProtocolMessage
    private var state: State = .collecting([])

    init(ack: ProtocolMessage) {
        self.ack = ack
    }

    /// The outcome, when it is decided (the handler ended, or the budget ran out).
    var outcome: Outcome? {
        switch state {
        case .collecting: nil
        case .ended(let end, let chunks): .inline(end, chunks: chunks)
        case .streaming: .classic
        }
    }

    /// The budget ran out: the outcome, if this decided it (classic).
    mutating func budgetRanOut() -> Outcome? {
        guard case .collecting(let chunks) = state else { return nil }
        state = .streaming(pending: chunks, flushed: false)
        return .classic
    }

    /// A result chunk: collected (nothing to send), or what to send now, in order.
    mutating func chunk(_ values: [XElement]) throws(YieldedAfterEnd) -> [ProtocolMessage] {
        switch state {
        case .collecting(let chunks):
            state = .collecting(chunks + [values])
            return []
        case .ended:
            throw YieldedAfterEnd()
        case .streaming:
            return flush() + [.data(ack.token, values: values)]
        }
    }

    /// A progress chunk: dropped while collecting (the end supersedes it), sent once classic.
    mutating func progress(_ values: [XElement]) -> [ProtocolMessage] {
        guard case .streaming = state else { return [] }
        return flush() + [.data(ack.token, values: values)]
    }

    /// The handler's end.
    mutating func end(_ message: ProtocolMessage) -> Ending {
        switch state {
        case .collecting(let chunks):
            state = .ended(message, chunks)
            return .inAnswer
        case .ended:
            return .inAnswer
        case .streaming:
            return .classic(sendFirst: flush())
        }
    }

    /// Once classic: the `ack` and collected chunks not sent yet (once only).
    mutating func flush() -> [ProtocolMessage] {
        guard case .streaming(let pending, false) = state else { return [] }
        state = .streaming(pending: [], flushed: true)
        return [ack] + pending.map { .data(ack.token, values: $0) }
    }
}
