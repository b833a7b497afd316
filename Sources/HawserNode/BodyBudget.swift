import Synchronization

/// The request-body bytes one server reads and decodes at once, across all its connections.
/// Each connection's body is bounded (`maxBodyBytes`), but decoding costs many times its bytes
/// (JSON about 30 times, 8 MiB of `0,` 300 MB), and nothing else bounded how many bodies a
/// server took at once: a few clients sending large bodies together could drive it out of
/// memory. A request takes its body's length (its `Content-Length`, or the body limit when the
/// length is not announced) before its body is read and gives it back when it is answered; a
/// request that does not fit is answered `overloaded` (503, `Retry-After`) unread.
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
