import NIOCore

/// Turns the flushes of one event-loop tick into one: every stanza is written with
/// `writeAndFlush`, and a burst (the answers to a read burst, the ops of a batch, the stanzas a
/// router relays from many senders to one receiver) would otherwise cost a TLS record and a
/// `write` system call each. The flush runs at the end of the tick the first one was asked in,
/// so nothing waits for more traffic.
///
/// Sits between the TLS handler (or the socket) and the handlers that write stanzas. Whoever
/// changes the pipeline under it (STARTTLS puts a TLS handler below it) sends ``FlushNow``
/// first, so that what was written before goes out as it was.
public final class FlushCoalescer: ChannelOutboundHandler {
    public typealias OutboundIn = NIOAny

    /// A user outbound event: flush now, without waiting for the end of the tick.
    public struct FlushNow: Sendable {
        public init() {}
    }

    private var flushPending = false

    public init() {}

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is FlushNow else { return context.triggerUserOutboundEvent(event, promise: promise) }
        context.flush()
        promise?.succeed()
    }

    public func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            bound.value.handler.flushPending = false
            bound.value.context.flush()
        }
    }
}
