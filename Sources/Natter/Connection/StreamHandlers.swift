import NIOCore
import NIOTLS
import VertebraXML

/// Turns inbound bytes into ``XMLStreamEvent``s with one streaming parser per stream, and
/// restarts the parser when asked (after STARTTLS and SASL, RFC 6120 §4.3.3).
///
/// A parse error (hostile or broken XML from the server) is fired as an error and the channel is
/// closed: no further bytes are read from a stream that is no longer well-formed.
final class XMPPFrameHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = XMLStreamEvent
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent with `triggerUserOutboundEvent` to start a new stream on the same connection.
    struct RestartStream: Sendable {}

    private let parser: XMLStreamParser

    init(limits: XMLParserLimits) {
        parser = XMLStreamParser(limits: limits)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            let events = try buffer.withUnsafeReadableBytes { bytes in
                try parser.feed(bytes)
            }
            for event in events { context.fireChannelRead(wrapInboundOut(event)) }
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is RestartStream else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        parser.reset()
        promise?.succeed(())
    }
}

/// Hands stream events to async code through an `AsyncThrowingStream`; the stream ends when the
/// connection closes, with the error that closed it, if any.
final class StreamEventBridge: ChannelInboundHandler, Sendable {
    typealias InboundIn = XMLStreamEvent

    let continuation: AsyncThrowingStream<XMLStreamEvent, any Error>.Continuation

    init(continuation: AsyncThrowingStream<XMLStreamEvent, any Error>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}

/// Reports the end of a TLS handshake: success, the error that failed it, or the connection
/// closing under it. Whatever ends a handshake is a TLS failure, whichever event NIO delivers
/// first (a handshake error and the close it causes race with pending writes).
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent {
            promise.succeed(())
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(NatterError(.tlsFailed, "the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        promise.fail(NatterError(.tlsFailed, "the TLS handshake was abandoned"))
    }
}
