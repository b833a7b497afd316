import Synchronization

/// Checks notary answers: the answer is for the expected transaction and its Merkle proof leads to
/// a root that the notary key signed.
///
/// Answers from one batch share a root and a signature, so each distinct (root, signature) pair is
/// verified once and remembered in a small bounded cache (first in, first out). Thread-safe.
/// The notary client checks every answer with one; so does the embedded notary's flow port.
public final class AnswerVerifier: Sendable {
    public let notaryKey: PublicKey
    private let verifier: Verifier
    private let cache: Mutex<State>

    private struct SignedRoot: Hashable {
        var root: SecureHash
        var signature: [UInt8]
    }

    private struct State {
        var recent = BoundedSet<SignedRoot>(capacity: 1024)
        var signatureChecks = 0
    }

    /// - Parameter cacheCapacity: how many verified (root, signature) pairs to remember.
    public init(notaryKey: PublicKey, cacheCapacity: Int = 1024) {
        self.notaryKey = notaryKey
        self.verifier = Verifier(notaryKey)
        var state = State()
        state.recent = BoundedSet(capacity: max(1, cacheCapacity))
        self.cache = Mutex(state)
    }

    /// How many Ed25519 signature checks were actually made (cache misses).
    public var signatureChecks: Int { cache.withLock { $0.signatureChecks } }

    /// Throws `InvalidAnswerError` unless `answer` is a valid notary answer for `txId`.
    public func verify(_ answer: NotarisationAnswer, for txId: SecureHash) throws(InvalidAnswerError) {
        guard answer.txId == txId else {
            throw InvalidAnswerError(txId: txId, reason: "the answer is for transaction \(answer.txId.hex)")
        }
        guard let root = answer.root else {
            throw InvalidAnswerError(txId: txId, reason: "the Merkle proof is malformed")
        }
        let key = SignedRoot(root: root, signature: answer.signature)
        if cache.withLock({ $0.recent.contains(key) }) { return }
        guard verifier.isValidSignature(answer.signature, for: NotarisationAnswer.batchSigningPayload(root: root)) else {
            cache.withLock { $0.signatureChecks += 1 }
            throw InvalidAnswerError(txId: txId, reason: "the signature over the batch root does not verify under the notary key")
        }
        cache.withLock {
            $0.signatureChecks += 1
            $0.recent.insert(key)
        }
    }
}

/// A notary answer that is not what it should be (wrong transaction, bad proof or signature).
public struct InvalidAnswerError: Error, Equatable, CustomStringConvertible {
    public var txId: SecureHash
    public var reason: String

    public init(txId: SecureHash, reason: String) {
        self.txId = txId
        self.reason = reason
    }

    public var description: String { "invalid notary answer for \(txId.hex): \(reason)" }
}

/// A set that keeps at most `capacity` elements, forgetting the oldest first.
struct BoundedSet<Element: Hashable>: Sendable where Element: Sendable {
    private var members: Set<Element> = []
    private var order: [Element] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        members.reserveCapacity(capacity)
        order.reserveCapacity(capacity)
    }

    var count: Int { members.count }

    func contains(_ element: Element) -> Bool { members.contains(element) }

    mutating func insert(_ element: Element) {
        guard !members.contains(element) else { return }
        if order.count < capacity {
            order.append(element)
        } else {
            members.remove(order[next])
            order[next] = element
            next = (next + 1) % capacity
        }
        members.insert(element)
    }
}
