import Synchronization
import VertebraXML

/// IQ requests waiting for their answers, by peer and id: what ``XMPPClient`` and
/// ``InMemoryTransport`` share. Lives inside one actor.
struct PendingRequests {
    private var requests: [PendingKey: PendingRequest] = [:]

    func isWaiting(_ key: PendingKey) -> Bool { requests[key] != nil }

    mutating func add(_ key: PendingKey, _ request: PendingRequest) { requests[key] = request }

    /// Ends the request with a `timeout` error.
    mutating func expire(_ key: PendingKey, after limit: Duration) {
        guard let request = requests.removeValue(forKey: key) else { return }
        request.continuation.resume(throwing: NatterError(
            .timeout, "no answer from \(key.peer.isEmpty ? "the server" : key.peer) to IQ \(key.id) within \(limit)"))
    }

    /// Ends the request with `CancellationError` (its task was cancelled).
    mutating func cancel(_ key: PendingKey) {
        end(key, with: .failure(CancellationError()))
    }

    /// Ends the request with `result`; false when nothing waited under `key`.
    @discardableResult
    mutating func end(_ key: PendingKey, with result: Result<IQ, any Error>) -> Bool {
        guard let request = requests.removeValue(forKey: key) else { return false }
        request.cancelTimer()
        request.continuation.resume(with: result)
        return true
    }

    /// Ends every request with `error`.
    mutating func failAll(_ error: NatterError) {
        let all = requests
        requests.removeAll()
        for request in all.values {
            request.cancelTimer()
            request.continuation.resume(throwing: error)
        }
    }

    /// Hands `answer` to the request it answers. Answers to requests sent without `to` come
    /// from the server (`domain`) or our own bare JID (`me`). False when none matched.
    mutating func resolve(_ answer: IQ, domain: String, me: JID?) -> Bool {
        var key = PendingKey(peer: answer.from?.description ?? "", id: answer.id)
        let fromServerOrSelf = answer.from.map { $0.description == domain || $0 == me } ?? true
        if !isWaiting(key), fromServerOrSelf { key = PendingKey(peer: "", id: answer.id) }
        return end(key, with: .success(answer))
    }
}

/// Streams of unclaimed stanzas by kind and sender, plus the default stream.
struct Exchanges {
    private var streams: [ExchangeKey: AsyncStream<XElement>.Continuation] = [:]
    private var fallback: AsyncStream<XElement>.Continuation?

    /// A new stream for (kind, sender); one replaced under the same key is finished.
    mutating func open(_ kind: StanzaKind, from sender: JID?) -> AsyncStream<XElement> {
        let key = ExchangeKey(kind: kind, sender: sender)
        let (stream, continuation) = AsyncStream<XElement>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        streams[key]?.finish()
        streams[key] = continuation
        return stream
    }

    /// A new default stream (what no other stream takes); the previous one is finished.
    mutating func openDefault() -> AsyncStream<XElement> {
        let (stream, continuation) = AsyncStream<XElement>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        fallback?.finish()
        fallback = continuation
        return stream
    }

    /// Offers `element` to the streams, most specific sender first; true when one took it.
    func offer(_ element: XElement, kind: StanzaKind) -> Bool {
        let sender = element.fromJID
        for key in [sender, sender?.bare, nil].map({ ExchangeKey(kind: kind, sender: $0) }) {
            if let continuation = streams[key], case .enqueued = continuation.yield(element) { return true }
        }
        if let fallback, case .enqueued = fallback.yield(element) { return true }
        return false
    }

    func finishAll() {
        for continuation in streams.values { continuation.finish() }
        fallback?.finish()
    }
}

/// Runs an IQ handler and makes the answer: its result, its `StanzaError`, or
/// `internal-server-error` for any other error; with the work to start after the answer left.
enum IQAnswering {
    static func answer(_ request: IQ, with handler: XMPPClient.IQResponder) async -> (IQ, (@Sendable () async -> Void)?) {
        do {
            let answer = try await handler(request)
            return (request.result(payload: answer.payload), answer.afterwards)
        } catch let error as StanzaError {
            return (request.error(error), nil)
        } catch {
            return (request.error(StanzaError(type: .cancel, condition: .internalServerError, text: "\(error)")), nil)
        }
    }
}

/// Lets a stopping client wait until the requests it is answering have their answers out (or a
/// bound passed: a handler may never end). The client calls ``release()`` when the last one
/// ended.
final class AnswerDrain: Sendable {
    private let waiters = Mutex<[CheckedContinuation<Void, Never>]>([])

    /// Waits for ``release()``, at most `limit` of real time (a test's manual clock may never
    /// move). Runs on the caller's actor until it waits, so a release from that actor cannot
    /// slip in between the caller's check and the wait.
    func wait(within limit: Duration, isolation: isolated (any Actor)? = #isolation) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: limit)
            release()
        }
        await withCheckedContinuation { continuation in waiters.withLock { $0.append(continuation) } }
        timer.cancel()
    }

    func release() {
        let waiting = waiters.withLock { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiting { waiter.resume() }
    }
}
