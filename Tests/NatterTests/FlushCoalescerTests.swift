import NIOCore
import NIOEmbedded
import Natter
import Testing

/// Stanzas written in one event-loop tick leave in one flush; ``FlushCoalescer/FlushNow``
/// flushes at once (STARTTLS needs its answer out before TLS starts).
@Suite struct FlushCoalescerTests {
    /// Counts the flushes that reach the socket end.
    final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var flushes = 0
        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    @Test func writesOfOneTickLeaveInOneFlushAtItsEnd() throws {
        let counter = FlushCounter()
        let channel = EmbeddedChannel(handlers: [counter, FlushCoalescer()])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5222)).wait()
        for text in ["<a/>", "<b/>", "<c/>"] { channel.writeAndFlush(ByteBuffer(string: text), promise: nil) }
        #expect(counter.flushes == 0)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing leaves before the tick ends")
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        let sent = try (0..<3).compactMap { _ in try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } }
        #expect(sent == ["<a/>", "<b/>", "<c/>"])
        // The next tick flushes again.
        channel.writeAndFlush(ByteBuffer(string: "<d/>"), promise: nil)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 2)
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "<d/>")
        _ = try channel.finish()
    }

    @Test func flushNowFlushesAtOnce() throws {
        let counter = FlushCounter()
        let channel = EmbeddedChannel(handlers: [counter, FlushCoalescer()])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5222)).wait()
        channel.write(ByteBuffer(string: "<proceed/>"), promise: nil)
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.pipeline.triggerUserOutboundEvent(FlushCoalescer.FlushNow(), promise: done)
        #expect(counter.flushes == 1)
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "<proceed/>")
        try done.futureResult.wait()
        _ = try channel.finish()
    }
}
