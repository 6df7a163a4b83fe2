import NIOCore

/// Closes a connection whose client takes nothing for `timeout` while the server has audio to
/// send: the channel became unwritable (the client's receive window and NIO's outbound buffer
/// are full) and stayed so. The write the response was waiting in then fails, which drops the
/// stream and cancels its synthesis.
///
/// It also fixes the connection's kernel send buffer at `sendBuffer` bytes. Left to itself,
/// Linux grows a socket's send buffer up to 4 MB, which a stalled client never drains: 45 s of
/// 48 kHz WAV per connection, held by the kernel, before the server's writes even wait.
///
/// And it lets a connection that is closed after its response (Hummingbird closes one right after
/// writing the response's end: on shutdown, or when the route watched for the client going away)
/// first hand its last bytes to the kernel: NIO fails the writes still pending when a channel
/// closes, which cut whole files larger than the send buffer short.
///
/// Written as a channel handler because a stalled write is only visible at the connection:
/// the HTTP response writer and the Wyoming session simply wait (that waiting is the
/// backpressure that keeps a stream from synthesizing ahead), and idle timeouts count reads,
/// not stalled writes. Both servers put it first in each connection's pipeline.
public final class WriteTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias OutboundIn = NIOAny

    private let timeout: TimeAmount
    private let sendBuffer: Int32
    private var closing: Scheduled<Void>?
    /// The last write's outcome, while it is pending.
    private var lastWrite: EventLoopFuture<Void>?

    public init(timeout: TimeAmount, sendBuffer: Int32 = 256 * 1024) {
        self.timeout = timeout
        self.sendBuffer = sendBuffer
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
            .whenFailure { _ in }  // a channel without a socket (tests) keeps its own buffer
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            closing?.cancel()
            closing = nil
        } else if closing == nil {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            closing = context.eventLoop.scheduleTask(in: timeout) {
                bound.value.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let promise = promise ?? context.eventLoop.makePromise()
        let future = promise.futureResult
        lastWrite = future
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        future.whenComplete { _ in
            if bound.value.lastWrite === future { bound.value.lastWrite = nil }
        }
        context.write(data, promise: promise)
    }

    /// A close asked for while writes are pending waits for them (a stalled client's close comes
    /// from the write timeout, which does not wait).
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, let pending = lastWrite else {
            context.close(mode: mode, promise: promise)
            return
        }
        lastWrite = nil
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        pending.whenComplete { _ in bound.value.close(mode: mode, promise: promise) }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        closing?.cancel()
        closing = nil
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        closing?.cancel()
        closing = nil
    }
}
