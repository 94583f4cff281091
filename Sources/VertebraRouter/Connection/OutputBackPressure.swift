import Logging
import NIOCore

/// Keeps what the router holds for one connection bounded (DESIGN 6.1).
///
/// - While the connection's output is backed up (its socket buffer is past the high water
///   mark), the router stops reading from it: a client that sends requests but never reads the
///   answers stalls itself, not the router.
/// - A connection that others keep writing to but that does not read (a slow or stuck reader)
///   is closed once more than `limit` bytes wait for it.
///
/// Sits at the socket end of the pipeline and sees every write, also those other connections
/// route to this one.
final class OutputBackPressure: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let limit: Int
    private let logger: Logger
    private var closing = false

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        // Turning autoRead back on also issues the next read.
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: writable)
        context.fireChannelWritabilityChanged()
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        guard !closing, !context.channel.isWritable,
            let pending = try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes), pending > limit
        else { return }
        closing = true
        logger.warning(
            "closing a connection that does not read what it is sent",
            metadata: ["peer": "\(context.channel.remoteAddress?.description ?? "?")", "pending_bytes": "\(pending)"])
        context.close(promise: nil)
    }
}
