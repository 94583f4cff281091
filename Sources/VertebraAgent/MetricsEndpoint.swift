import Synchronization
import ArgumentParser
import CoreMetrics
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// `--metrics-address HOST:PORT`: serve the process's metrics in the Prometheus text format at
/// `http://HOST:PORT/metrics` (off by default). Every worker takes it (``WorkerOptions``).
public struct MetricsOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; port 0 picks one). Off by default.",
        valueName: "host:port"))
    public var metricsAddress: String?

    public init() {}

    public func validate() throws {
        if let metricsAddress { _ = try Self.parse(metricsAddress) }
    }

    static func parse(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ValidationError("--metrics-address must be HOST:PORT with a port from 0 to 65535, not '\(text)'")
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { throw ValidationError("--metrics-address needs a host, e.g. 127.0.0.1:9464") }
        return (host, port)
    }

    /// Bootstraps swift-metrics with Prometheus and starts the endpoint, when asked for. Call it
    /// before making the agent: its metrics are bound to the backend at creation.
    public func start() async throws -> MetricsEndpoint? {
        guard let metricsAddress else { return nil }
        let (host, port) = try Self.parse(metricsAddress)
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let endpoint: MetricsEndpoint
        do {
            endpoint = try await MetricsEndpoint.start(host: host, port: port, registry: registry)
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ValidationError("--metrics-address \(metricsAddress): the address is in use (another process listens there; pick another port, or 0 for any free one)")
        } catch let error as IOError {
            throw ValidationError("--metrics-address \(metricsAddress): cannot listen there: \(String(cString: strerror(error.errnoCode)))")
        }
        let shown = host.contains(":") ? "[\(host)]" : host
        Self.printToStandardError("metrics: http://\(shown):\(endpoint.port)/metrics")
        if !["127.0.0.1", "::1", "localhost"].contains(host) {
            Self.printToStandardError("warning: the metrics endpoint listens on \(host), beyond this machine; it has no authentication")
        }
        return endpoint
    }

    private static func printToStandardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// A minimal HTTP/1.1 server (SwiftNIO's HTTP codec) answering `GET /metrics`.
public final class MetricsEndpoint: Sendable {
    let channel: any Channel
    /// The port it listens on.
    public let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// Connections served at once; more are closed as they come (a scraper needs one).
    static let maxConnections = 64
    /// A connection that sends nothing for this long is closed.
    static let idleTimeout: TimeAmount = .seconds(15)

    static func start(host: String, port: Int, registry: PrometheusCollectorRegistry) async throws -> MetricsEndpoint {
        let open = ConnectionCount()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.take(below: maxConnections) else { return channel.close() }
                channel.closeFuture.whenComplete { _ in open.give() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsEndpoint(channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }
}

/// The connections open, bounded.
private final class ConnectionCount: Sendable {
    private let count = Atomic(0)

    /// Counts one more connection unless `limit` are open.
    func take(below limit: Int) -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = count.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func give() { count.subtract(1, ordering: .relaxed) }
}

/// Answers each request: `GET /metrics` with the registry's text, anything else 404 or 405.
/// A connection that sends bad HTTP (answered 400) or nothing for a while is closed.
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, body): (HTTPResponseStatus, [UInt8])
        if path != "/metrics" {
            (status, body) = (.notFound, Array("not found; metrics are at /metrics\n".utf8))
        } else if head.method != .GET && head.method != .HEAD {
            (status, body) = (.methodNotAllowed, Array("use GET\n".utf8))
        } else {
            (status, body) = (.ok, registry.emitToBuffer())
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
