import Hummingbird
import NIOCore

/// The node API's request context: Hummingbird's basic one plus the caller's address, which
/// limits failed password attempts per source (`RPCAuthenticator`).
struct NodeRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The caller as the password limits count it (`SourceAddress`).
    var source: String { SourceAddress.group(remoteAddress) }
}
