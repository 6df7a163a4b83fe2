import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The connections open at once, shared by every connection's `ConnectionLimitHandler`.
final class OpenConnections: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts a new connection; false when it is over the limit (it is counted all the same,
    /// and `close` uncounts it).
    func open() -> Bool {
        count.add(1, ordering: .relaxed).newValue <= limit
    }

    func close() {
        count.subtract(1, ordering: .relaxed)
    }
}

/// Answers a connection over `--max-connections` with 503 `too_many_connections` (and
/// `Retry-After`) to its first request, then closes it: the client learns why at once, and the
/// connections already open keep their place. Hummingbird's own limit stops accepting instead,
/// which here left the waiting connection unserved after others closed.
final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let connections: OpenConnections
    private var counted = false
    private var refused = false

    init(connections: OpenConnections) {
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { count() }
    }

    func channelActive(context: ChannelHandlerContext) {
        count()
        context.fireChannelActive()
    }

    private func count() {
        guard !counted else { return }
        counted = true
        refused = !connections.open()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refused else {
            context.fireChannelRead(data)
            return
        }
        guard case .head = unwrapInboundIn(data) else { return }
        let body = #"{"error":{"code":"too_many_connections","message":"the server has as many connections open as it allows; retry in a moment"}}"#
        var head = HTTPResponse(status: .serviceUnavailable)
        head.headerFields[.contentType] = "application/json; charset=utf-8"
        head.headerFields[.contentLength] = String(body.utf8.count)
        head.headerFields[.retryAfter] = "1"
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(string: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        uncount()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        uncount()
    }

    private func uncount() {
        guard counted else { return }
        counted = false
        connections.close()
    }
}
