/// The coordinator's `/security/authorize` answers a worker remembers (`--ask-coordinator`):
/// at most `capacity` entries, each for `lifetime`, the oldest evicted first. Bounded because the
/// keys are chosen by whoever sends the worker an `op`.
struct AuthorizationCache: Sendable {
    private struct Entry: Sendable {
        let allowed: Bool
        let expires: ContinuousClock.Instant
    }

    let capacity: Int
    let lifetime: Duration
    private var entries: [String: Entry] = [:]
    /// Keys in insertion order (may hold keys already replaced or removed; skipped on eviction).
    private var order = FIFO<String>()

    init(capacity: Int = 1024, lifetime: Duration = .seconds(60)) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    var count: Int { entries.count }

    /// The remembered answer for `key`, unless it expired.
    func answer(_ key: String, now: ContinuousClock.Instant) -> Bool? {
        guard let entry = entries[key], entry.expires > now else { return nil }
        return entry.allowed
    }

    mutating func remember(_ key: String, allowed: Bool, now: ContinuousClock.Instant) {
        if entries[key] == nil {
            while entries.count >= capacity, let oldest = order.popFirst() {
                entries[oldest] = nil
            }
            order.append(key)
        }
        entries[key] = Entry(allowed: allowed, expires: now + lifetime)
    }
}
