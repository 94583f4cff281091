import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Natter
import ServiceLifecycle

/// The embedded XMPP server: a c2s listener that negotiates RFC 6120 streams (STARTTLS, SASL
/// SCRAM-SHA-256/SHA-1 and PLAIN, resource binding) and routes IQ, message and presence
/// stanzas between the full JIDs of one domain.
///
/// ```swift
/// let router = try XMPPRouter(configuration: config, accounts: try AccountStore(path: path), logger: logger)
/// try await ServiceGroup(services: [router], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
///
/// As a `Service`, ``run()`` listens until graceful shutdown (or cancellation), then ends every
/// stream with `system-shutdown` and closes the listener. Tests call ``start()`` and
/// ``shutdown()`` directly.
public final class XMPPRouter: Service, Sendable {
    private let core: RouterCore
    private let group: any EventLoopGroup
    private let listener = NIOLockedValueBox<(any Channel)?>(nil)
    private let onListening: (@Sendable (SocketAddress) -> Void)?

    /// Makes a router; loads the TLS certificate and key now, so a bad file fails here.
    /// `onListening` gets the bound address (with the chosen port for port 0) once it listens.
    public init(
        configuration: RouterConfiguration, accounts: AccountStore, logger: Logger = Logger(label: "vertebra.router"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) throws(RouterError) {
        self.onListening = onListening
        try configuration.validate()
        let context = try configuration.tls.map { files throws(RouterError) in try RouterTLS.makeContext(files) }
        core = RouterCore(configuration: configuration, accounts: accounts, tlsContext: context, logger: logger)
        group = eventLoopGroup
    }

    /// The address the listener is bound to, once started.
    public var localAddress: SocketAddress? { listener.withLockedValue { $0?.localAddress } }

    /// Open connections, authenticated or not.
    public var connectionCount: Int { core.registry.connectionCount }

    /// Bound sessions (full JIDs online).
    public var sessionCount: Int { core.registry.sessionCount }

    /// Binds the listener; returns its address (with the chosen port when configured with 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let core = self.core
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 128 << 10, high: 512 << 10))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let limit = core.configuration.limits.maxOutputBufferBytes
                    try channel.pipeline.syncOperations.addHandlers(
                        OutputBackPressure(limit: limit, logger: core.logger), FlushCoalescer(), C2SConnection(core: core))
                }
            }
        let configuration = core.configuration
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            throw RouterError(.bindFailed, "cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        listener.withLockedValue { $0 = channel }
        guard let address = channel.localAddress else {
            throw RouterError(.bindFailed, "the listener has no local address")
        }
        core.logger.info(
            "router listening",
            metadata: [
                "address": "\(address)", "domain": "\(configuration.domain)", "tls": "\(configuration.tls != nil)",
            ])
        onListening?(address)
        return address
    }

    /// Stops accepting, ends every stream with `system-shutdown`, and waits (up to `grace`)
    /// for the connections to close.
    public func shutdown(grace: Duration = .seconds(2)) async {
        let server = listener.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await server?.close().get()
        let connections = core.registry.close()
        core.logger.info("router shutting down", metadata: ["connections": "\(connections.count)"])
        for connection in connections { connection.terminate(.systemShutdown) }
        await withTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask {
                    let closed = connection.channel.closeFuture
                    let timer = connection.channel.eventLoop.scheduleTask(in: grace.timeAmount) {
                        connection.channel.close(promise: nil)
                    }
                    try? await closed.get()
                    timer.cancel()
                }
            }
        }
    }

    /// Listens until graceful shutdown or cancellation, then shuts down.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }
}
