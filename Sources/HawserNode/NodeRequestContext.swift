import Foundation
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

    /// Bodies a route returns as a value are written as every other body (`WireFormat.encoder`).
    var responseEncoder: JSONEncoder { WireFormat.encoder }

    /// The caller as the password limits count it (`SourceAddress`).
    var source: String { SourceAddress.group(remoteAddress) }
}
