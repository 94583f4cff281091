import Logging
import NIOSSL

/// What every connection of one router shares: configuration, accounts, TLS, the registry.
final class RouterCore: Sendable {
    let configuration: RouterConfiguration
    let accounts: AccountStore
    let tlsContext: NIOSSLContext?
    let registry: SessionRegistry
    let logger: Logger

    init(configuration: RouterConfiguration, accounts: AccountStore, tlsContext: NIOSSLContext?, logger: Logger) {
        self.configuration = configuration
        self.accounts = accounts
        self.tlsContext = tlsContext
        self.registry = SessionRegistry(
            maxConnections: configuration.limits.maxConnections, maxPerAddress: configuration.limits.maxConnectionsPerAddress)
        self.logger = logger
    }

    var domain: String { configuration.domain }
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
