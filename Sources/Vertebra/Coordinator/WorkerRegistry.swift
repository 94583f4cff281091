import Natter
import VertebraXML

/// The live workers a coordinator knows: what each advertised, until its TTL runs out or its
/// presence goes away, and how much work each has outstanding.
struct WorkerRegistry {
    struct Entry: Sendable {
        let jid: JID
        var operations: [Resource]
        var resources: [String: [Resource]]
        var retryable: Set<String>
        var capacity: Int
        /// The fast-path budget the worker offers (``FastPath``), if it does.
        var fastPathBudget: Duration?
        var expires: ContinuousClock.Instant
        /// When it last advertised.
        var advertised: ContinuousClock.Instant
        var outstanding = 0

        func offers(_ operation: Resource, resources wanted: [String: Resource]) -> Bool {
            operations.contains(operation)
                && wanted.allSatisfy { name, resource in (resources[name] ?? []).contains { $0.covers(resource) } }
        }
    }

    private(set) var entries: [String: Entry] = [:]
    /// Attempts running on each worker, kept apart from its advertisement: attempts resumed at a
    /// start run before the worker is known again (its advertisement or the probe comes later),
    /// and a worker that went away and came back still runs what it ran.
    private var running: [String: Int] = [:]

    /// Records an advertisement; TTL 0 withdraws.
    mutating func advertise(_ jid: JID, _ ad: Advertisement, now: ContinuousClock.Instant) {
        guard ad.ttl > 0 else {
            entries[jid.description] = nil
            return
        }
        let outstanding = running[jid.description] ?? 0
        entries[jid.description] = Entry(
            jid: jid, operations: ad.operations, resources: ad.resources,
            retryable: Set((ad.retryable ?? []).map(\.path)), capacity: max(1, ad.capacity ?? 16),
            fastPathBudget: ad.fastPath.map { .milliseconds($0) }, expires: now + .seconds(ad.ttl), advertised: now,
            outstanding: outstanding)
    }

    mutating func remove(_ jid: JID) { entries[jid.description] = nil }

    mutating func adjustOutstanding(_ jid: JID, by delta: Int) {
        let count = max(0, (running[jid.description] ?? 0) + delta)
        running[jid.description] = count > 0 ? count : nil
        entries[jid.description]?.outstanding = count
    }

    /// Live workers offering `operation`, least loaded first.
    func capable(of operation: Resource, resources: [String: Resource] = [:], now: ContinuousClock.Instant) -> [Entry] {
        entries.values
            .filter { $0.expires > now && $0.offers(operation, resources: resources) }
            .sorted { ($0.outstanding, $0.jid.description) < ($1.outstanding, $1.jid.description) }
    }

    /// Whether any worker advertised `operation` as retryable.
    func isRetryable(_ operation: Resource) -> Bool {
        entries.values.contains { $0.retryable.contains(operation.path) }
    }

    func entry(_ jid: JID) -> Entry? { entries[jid.description] }
}
