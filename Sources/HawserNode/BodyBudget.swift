import Synchronization

/// The bytes of request bodies one server holds decoded or being decoded at once, across all its
/// connections. Each body is bounded (`maxBodyBytes`), but decoding costs many times its bytes
/// (JSON about 30 times: 8 MiB of `0,` took a notary to 317 MB), and nothing bounded how many
/// bodies a server decoded at once: a few clients sending large bodies together could drive it
/// out of memory, the more so with more cores. A request takes its body's bytes once the body has
/// arrived whole and gives them back once answered; one that does not fit is answered
/// `overloaded` (503, `Retry-After`) undecoded. Bodies still arriving take nothing, so a client
/// that sends slowly holds nothing but its connection. A gRPC listener keeps one for the request
/// messages arriving on its calls (`GRPCMessageHold`), whose library buffers them whole.
final class BodyBudget: Sendable {
    let limit: Int
    private let taken = Mutex(0)

    init(limit: Int) { self.limit = limit }

    /// Takes `bytes` if they fit beside what is taken; false, taking nothing, if they do not.
    func take(_ bytes: Int) -> Bool {
        taken.withLock { taken in
            guard bytes <= limit - taken else { return false }
            taken += bytes
            return true
        }
    }

    func give(_ bytes: Int) {
        taken.withLock { $0 -= bytes }
    }
}
