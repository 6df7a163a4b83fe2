import Hummingbird
import NIOCore

/// The request context of every route: Hummingbird's core storage plus the peer's address,
/// which rate limits count by when the server has no keys.
public struct LarkRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
