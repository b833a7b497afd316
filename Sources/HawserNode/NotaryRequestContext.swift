import Foundation
import Hummingbird

/// The notary API's request context: Hummingbird's basic one, writing the bodies a route returns
/// as a value as every other body (`WireFormat.encoder`).
struct NotaryRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    var responseEncoder: JSONEncoder { WireFormat.encoder }
}
