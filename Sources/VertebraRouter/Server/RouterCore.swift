import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// What every connection of one router shares: configuration, accounts, TLS, the registry.
final class RouterCore: Sendable {
    let configuration: RouterConfiguration
    let accounts: AccountStore
    let tlsContext: NIOSSLContext?
    let registry: SessionRegistry
    let logger: Logger
    /// Failed logins per IP address, across connections.
    let loginFailures = NIOLockedValueBox(LoginThrottle())
    /// Failed logins per account (lowercased username), from any address.
    let accountFailures = NIOLockedValueBox(LoginThrottle())
    /// `vertebra_router_auth_failures_total` and `vertebra_router_stanzas_routed_total`.
    let authFailures = Counter(label: "vertebra_router_auth_failures_total")
    let routed = Counter(label: "vertebra_router_stanzas_routed_total")

    init(configuration: RouterConfiguration, accounts: AccountStore, tlsContext: NIOSSLContext?, logger: Logger) {
        self.configuration = configuration
        self.accounts = accounts
        self.tlsContext = tlsContext
        self.registry = SessionRegistry(
            maxConnections: configuration.limits.maxConnections, maxPerAddress: configuration.limits.maxConnectionsPerAddress)
        self.logger = logger
    }

    var domain: String { configuration.domain }

    /// Whether `address` used up its failed logins for now.
    func loginsBlocked(from address: String) -> Bool {
        let limit = configuration.maxFailedLoginsPerAddress
        guard limit > 0 else { return false }
        return loginFailures.withLockedValue { $0.failures(address, now: .now, window: configuration.failedLoginWindow) >= limit }
    }

    /// Whether the account `username` had too many failed logins for now.
    func loginsBlocked(account username: String) -> Bool {
        let limit = configuration.maxFailedLoginsPerAccount
        guard limit > 0 else { return false }
        let key = username.lowercased()
        return accountFailures.withLockedValue { $0.failures(key, now: .now, window: configuration.failedLoginWindow) >= limit }
    }

    /// Counts a failed login of `address`, and of the account `username` when known.
    func recordFailedLogin(from address: String, account username: String?) {
        authFailures.increment()
        let window = configuration.failedLoginWindow
        _ = loginFailures.withLockedValue { $0.record(address, now: .now, window: window) }
        // Usernames longer than a JID's local part (1023 bytes) name no account; not kept.
        if let key = username?.lowercased(), key.utf8.count <= 1023 {
            _ = accountFailures.withLockedValue { $0.record(key, now: .now, window: window) }
        }
    }
}

/// Failed logins per key (an address or an account) in fixed windows; entries of ended windows are dropped when the
/// table grows, so a spray of addresses cannot grow it without bound.
struct LoginThrottle: Sendable {
    private var entries: [String: (count: Int, since: ContinuousClock.Instant)] = [:]
    static let pruneAbove = 10_000

    func failures(_ address: String, now: ContinuousClock.Instant, window: Duration) -> Int {
        guard let entry = entries[address], now - entry.since < window else { return 0 }
        return entry.count
    }

    mutating func record(_ address: String, now: ContinuousClock.Instant, window: Duration) -> Int {
        if entries.count > Self.pruneAbove { entries = entries.filter { now - $0.value.since < window } }
        let current = failures(address, now: now, window: window)
        let since = current == 0 ? now : entries[address]?.since ?? now
        entries[address] = (current + 1, since)
        return current + 1
    }
}

/// A token bucket: `rate` stanzas per second on average, bursts up to `burst`.
struct StanzaRateLimiter {
    private let rate: Double
    private let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(perSecond rate: Int, burst: Int) {
        self.rate = Double(rate)
        self.burst = Double(max(burst, 1))
        tokens = self.burst
        last = .now
    }

    /// Takes one token; `false` when the client is over its rate. A rate of 0 never limits.
    mutating func admit() -> Bool {
        guard rate > 0 else { return true }
        let now = ContinuousClock.now
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * rate)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
