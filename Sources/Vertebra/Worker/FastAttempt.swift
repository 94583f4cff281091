import Natter
import VertebraXML

/// Drives one fast-path attempt's ``FastAnswer``: waits for its outcome within the budget and
/// sends what it says, in order. All sends go through one lock, so nothing overtakes the `ack`
/// or an earlier chunk.
actor FastAttempt {
    typealias Outcome = FastAnswer.Outcome

    private var answer: FastAnswer
    private var waiter: CheckedContinuation<Outcome, Never>?
    private let out: OutboundConversation
    private var sending = false
    private var queue: [CheckedContinuation<Void, Never>] = []

    init(out: OutboundConversation, ack: ProtocolMessage) {
        self.out = out
        self.answer = FastAnswer(ack: ack)
    }

    /// Waits until the handler ends or `budget` passes.
    func outcome(within budget: Duration, clock: any RuntimeClock) async -> Outcome {
        if let decided = answer.outcome { return decided }
        // Usually cancelled: most handlers end within the budget.
        let timer = clock.schedule(at: clock.now + budget) { Task { await self.budgetRanOut() } }
        let outcome = await withCheckedContinuation { waiter = $0 }
        timer.cancel()
        return outcome
    }

    private func budgetRanOut() {
        if let decided = answer.budgetRanOut() { resume(decided) }
    }

    private func resume(_ outcome: Outcome) {
        waiter?.resume(returning: outcome)
        waiter = nil
    }

    /// A result chunk from the handler: collected, or sent (after the `ack` and earlier chunks).
    func emit(_ chunk: [XElement]) async throws {
        try await serially {
            do { try await send(answer.chunk(chunk)) } catch is FastAnswer.YieldedAfterEnd {
                throw OutboundConversation.Refused(reason: "the handler yielded after it ended")
            }
        }
    }

    /// A progress chunk: dropped while collecting (the end supersedes it), sent once classic.
    func emitProgress(_ chunk: [XElement]) async throws {
        try await serially { try await send(answer.progress(chunk)) }
    }

    /// The handler's end. True when the answer to the `op` carries it (nothing more to send);
    /// false when the conversation is classic and the caller sends the end itself.
    func finish(_ end: ProtocolMessage) async throws -> Bool {
        try await serially {
            switch answer.end(end) {
            case .inAnswer:
                if let decided = answer.outcome { resume(decided) }
                return true
            case .classic(let first):
                try await send(first)
                return false
            }
        }
    }

    /// Sends the `ack` and the collected chunks once the attempt turned classic.
    func flush() async throws {
        try await serially { try await send(answer.flush()) }
    }

    private func send(_ messages: [ProtocolMessage]) async throws {
        for message in messages { try await out.send(message) }
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
