import Natter
import VertebraXML

/// One attempt that may end inside the answer to its `op` (``FastPath``).
///
/// While the budget runs, the handler's result chunks are collected here instead of sent. If the
/// handler ends first, ``finish(_:)`` hands its end to the waiting answer (`.inline`). If the
/// budget runs out first, the attempt turns classic: the `ack` and the collected chunks are sent,
/// in order, before anything the handler yields later, and the end follows as usual. All sends go
/// through one lock, so nothing overtakes the `ack` or an earlier chunk.
actor FastAttempt {
    /// How the answer to the `op` goes out.
    enum Outcome: Sendable {
        /// The handler ended in time: the end and every chunk it yielded.
        case inline(ProtocolMessage, chunks: [[XElement]])
        /// The budget ran out: a plain answer; the conversation goes on classic.
        case classic
    }

    private enum State {
        case collecting([[XElement]])
        case ended(ProtocolMessage, [[XElement]])
        /// Classic; `pending` chunks (and the `ack`) not yet sent when `flushed` is false.
        case streaming(pending: [[XElement]], flushed: Bool)
    }

    private var state: State = .collecting([])
    private var waiter: CheckedContinuation<Outcome, Never>?
    private let out: OutboundConversation
    private let ack: ProtocolMessage
    private var sending = false
    private var queue: [CheckedContinuation<Void, Never>] = []

    init(out: OutboundConversation, ack: ProtocolMessage) {
        self.out = out
        self.ack = ack
    }

    /// Waits until the handler ends or `budget` passes.
    func outcome(within budget: Duration, clock: any RuntimeClock) async -> Outcome {
        if case .ended(let end, let chunks) = state { return .inline(end, chunks: chunks) }
        let timer = Task {
            try? await clock.sleep(for: budget)
            self.budgetRanOut()
        }
        let outcome = await withCheckedContinuation { waiter = $0 }
        timer.cancel()
        return outcome
    }

    private func budgetRanOut() {
        guard case .collecting(let chunks) = state else { return }
        state = .streaming(pending: chunks, flushed: false)
        resume(.classic)
    }

    private func resume(_ outcome: Outcome) {
        waiter?.resume(returning: outcome)
        waiter = nil
    }

    /// A result chunk from the handler: collected, or sent (after the `ack` and earlier chunks).
    func emit(_ chunk: [XElement]) async throws {
        try await serially {
            switch state {
            case .collecting(let chunks):
                state = .collecting(chunks + [chunk])
            case .ended:
                throw OutboundConversation.Refused(reason: "the handler yielded after it ended")
            case .streaming:
                try await flushLocked()
                try await out.send(.data(ack.token, values: chunk))
            }
        }
    }

    /// A progress chunk: dropped while collecting (the end supersedes it), sent once classic.
    func emitProgress(_ chunk: [XElement]) async throws {
        try await serially {
            guard case .streaming = state else { return }
            try await flushLocked()
            try await out.send(.data(ack.token, values: chunk))
        }
    }

    /// The handler's end. True when the answer to the `op` carries it (nothing more to send);
    /// false when the conversation is classic and the caller sends the end itself.
    func finish(_ end: ProtocolMessage) async throws -> Bool {
        try await serially {
            switch state {
            case .collecting(let chunks):
                state = .ended(end, chunks)
                resume(.inline(end, chunks: chunks))
                return true
            case .ended:
                return true
            case .streaming:
                try await flushLocked()
                return false
            }
        }
    }

    /// Sends the `ack` and the collected chunks once the attempt turned classic.
    func flush() async throws {
        try await serially { try await flushLocked() }
    }

    private func flushLocked() async throws {
        guard case .streaming(let pending, false) = state else { return }
        state = .streaming(pending: [], flushed: true)
        try await out.send(ack)
        for chunk in pending { try await out.send(.data(ack.token, values: chunk)) }
    }

    /// Runs `body` with no other send of this attempt in progress (FIFO).
    private func serially<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if sending {
            await withCheckedContinuation { queue.append($0) }
        }
        sending = true
        defer {
            if queue.isEmpty { sending = false } else { queue.removeFirst().resume() }
        }
        return try await body()
    }
}
