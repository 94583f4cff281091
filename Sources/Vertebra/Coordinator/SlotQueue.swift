import Natter
import VertebraXML

/// Jobs of scope `single` waiting for a free worker slot: first in, first out per operation.
///
/// Pure bookkeeping (no clock, no tasks): the coordinator asks it to ``grant(_:now:)`` free
/// slots whenever capacity may have freed (an attempt ended, a worker advertised) and to
/// ``sweep(_:now:workerWait:)`` now and then for jobs that can no longer wait. A granted slot
/// is reserved in the registry at once, so the next waiter sees the load it adds.
struct SlotQueue {
    /// How a wait ended.
    enum Outcome: Sendable, Hashable {
        /// Run the attempt on this worker (its slot is already counted).
        case worker(JID)
        /// Every capable worker refused this job already: back off, then try them again.
        case allRefused
        /// No capable worker existed for the whole `workerWait`.
        case noWorker
        case deadline
        /// Taken out of the queue by the coordinator (cancel or stop).
        case withdrawn
    }

    struct Waiter: Sendable {
        let token: String
        let path: Resource
        let excluded: Set<JID>
        let since: ContinuousClock.Instant
        let deadline: ContinuousClock.Instant?
    }

    private var queues: [String: FIFO<Waiter>] = [:]
    /// Since when each operation has had no capable worker at all.
    private var noWorkerSince: [String: ContinuousClock.Instant] = [:]
    /// Waiters with a deadline, per operation: a queue with none and capable workers needs no
    /// scan when swept (20,000 waiting jobs cost nothing while they wait).
    private var withDeadline: [String: Int] = [:]
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func enqueue(_ waiter: Waiter) {
        queues[waiter.path.path, default: FIFO()].append(waiter)
        if waiter.deadline != nil { withDeadline[waiter.path.path, default: 0] += 1 }
        count += 1
    }

    private mutating func left(_ waiter: Waiter) {
        guard waiter.deadline != nil else { return }
        let path = waiter.path.path
        withDeadline[path] = (withDeadline[path] ?? 1) > 1 ? (withDeadline[path] ?? 1) - 1 : nil
    }

    /// Removes the waiter of job `token`, if it waits.
    mutating func remove(_ token: String) -> Waiter? {
        for (path, var queue) in queues {
            if let waiter = queue.remove(where: { $0.token == token }) {
                queues[path] = queue.isEmpty ? nil : queue
                count -= 1
                left(waiter)
                return waiter
            }
        }
        return nil
    }

    /// Removes every waiter.
    mutating func removeAll() -> [Waiter] {
        let all = queues.values.flatMap(\.elements)
        queues.removeAll()
        withDeadline.removeAll()
        count = 0
        return all
    }

    /// Hands free slots to waiters in arrival order, reserving each in `registry`.
    mutating func grant(_ registry: inout WorkerRegistry, now: ContinuousClock.Instant) -> [(String, Outcome)] {
        var granted: [(String, Outcome)] = []
        for path in Array(queues.keys) {
            guard var queue = queues[path], let first = queue.first else { continue }
            var index = 0
            while index < queue.count {
                let capable = registry.capable(of: first.path, now: now)
                let free = capable.filter { $0.outstanding < $0.capacity }
                guard !free.isEmpty else { break }
                let waiter = queue[index]
                if let pick = free.first(where: { !waiter.excluded.contains($0.jid) }) {
                    registry.adjustOutstanding(pick.jid, by: 1)
                    granted.append((waiter.token, .worker(pick.jid)))
                    queue.remove(at: index)
                    left(waiter)
                } else if capable.allSatisfy({ waiter.excluded.contains($0.jid) }) {
                    granted.append((waiter.token, .allRefused))
                    queue.remove(at: index)
                    left(waiter)
                } else {
                    index += 1  // its own workers are busy: it keeps its place
                }
            }
            queues[path] = queue.isEmpty ? nil : queue
        }
        count -= granted.count
        return granted
    }

    /// Ends the waits that cannot go on: deadlines passed, and operations that have had no
    /// capable worker for `workerWait` (counted from when the job began waiting).
    mutating func sweep(_ registry: WorkerRegistry, now: ContinuousClock.Instant, workerWait: Duration) -> [(String, Outcome)] {
        var ended: [(String, Outcome)] = []
        for path in Array(queues.keys) {
            guard var queue = queues[path], let first = queue.first else { continue }
            let nobody = registry.capable(of: first.path, now: now).isEmpty
            if nobody {
                if noWorkerSince[path] == nil { noWorkerSince[path] = now }
            } else {
                noWorkerSince[path] = nil
            }
            let emptySince = noWorkerSince[path]
            guard emptySince != nil || withDeadline[path] != nil else { continue }
            var removed: [Waiter] = []
            queue.removeAll { waiter in
                if let deadline = waiter.deadline, deadline <= now {
                    ended.append((waiter.token, .deadline))
                    removed.append(waiter)
                    return true
                }
                if let emptySince, now - max(emptySince, waiter.since) >= workerWait {
                    ended.append((waiter.token, .noWorker))
                    removed.append(waiter)
                    return true
                }
                return false
            }
            for waiter in removed { left(waiter) }
            queues[path] = queue.isEmpty ? nil : queue
        }
        for path in Array(noWorkerSince.keys) where queues[path] == nil { noWorkerSince[path] = nil }
        count -= ended.count
        return ended
    }
}

/// A first-in-first-out list with cheap removal at the front.
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }
    var first: Element? { isEmpty ? nil : storage[head] }
    var elements: ArraySlice<Element> { storage[head...] }

    subscript(index: Int) -> Element { storage[head + index] }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard let element = first else { return nil }
        remove(at: 0)
        return element
    }

    mutating func remove(at index: Int) {
        if index == 0 {
            head += 1
            if head > 64 && head * 2 > storage.count {
                storage.removeFirst(head)
                head = 0
            }
        } else {
            storage.remove(at: head + index)
        }
    }

    mutating func remove(where match: (Element) -> Bool) -> Element? {
        guard let offset = storage[head...].firstIndex(where: match) else { return nil }
        let element = storage[offset]
        remove(at: offset - head)
        return element
    }

    mutating func removeAll(where match: (Element) -> Bool) {
        storage.removeSubrange(..<head)
        head = 0
        storage.removeAll(where: match)
    }
}

extension FIFO: Sendable where Element: Sendable {}
