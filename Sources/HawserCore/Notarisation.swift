/// Domain-separation tags that begin every signed or hashed structure (docs/notary-protocol.md).
public enum ProtocolTag {
    public static let request = "hawser/notarisation-request/v1"
    public static let outcome = "hawser/notarisation-outcome/v1"
    public static let batch = "hawser/notarisation-batch/v1"
}

/// A request to notarise one transaction: spend its inputs, check its references and time window.
/// The requesting party signs `signingPayload(notary:)` with its Ed25519 key.
public struct NotarisationRequest: Hashable, Sendable {
    /// Most inputs plus references a notary takes in one request unless configured otherwise
    /// (`limits.maxStateRefs`); a flow that builds larger transactions is refused.
    public static let defaultMaxStateRefs = 10_000

    public var txId: SecureHash
    public var inputs: [StateRef]
    public var references: [StateRef]
    public var timeWindow: TimeWindow?
    public var requester: Party
    public var signature: [UInt8]

    public init(txId: SecureHash, inputs: [StateRef], references: [StateRef] = [], timeWindow: TimeWindow? = nil,
                requester: Party, signature: [UInt8]) {
        self.txId = txId
        self.inputs = inputs
        self.references = references
        self.timeWindow = timeWindow
        self.requester = requester
        self.signature = signature
    }

    /// Builds and signs a request as `requesterName` with `key`, addressed to `notary`.
    public static func signed(txId: SecureHash, inputs: [StateRef], references: [StateRef] = [],
                              timeWindow: TimeWindow? = nil, requesterName: String, key: SigningKey,
                              notary: PublicKey) -> NotarisationRequest {
        var request = NotarisationRequest(txId: txId, inputs: inputs, references: references, timeWindow: timeWindow,
                                          requester: Party(name: requesterName, publicKey: key.publicKey), signature: [])
        request.signature = key.sign(request.signingPayload(notary: notary))
        return request
    }

    /// The exact bytes the requester signs. Naming the notary stops a request from being replayed
    /// to a different notary.
    public func signingPayload(notary: PublicKey) -> [UInt8] {
        var w = CanonicalWriter(capacity: 160 + 36 * (inputs.count + references.count))
        w.string(ProtocolTag.request)
        w.raw(notary.rawBytes)
        w.hash(txId)
        w.list(inputs) { $0.stateRef($1) }
        w.list(references) { $0.stateRef($1) }
        w.optional(timeWindow) { $0.timeWindow($1) }
        w.string(requester.name)
        w.raw(requester.publicKey.rawBytes)
        return w.bytes
    }
}

/// Whether a ref was an input (to be spent) or a reference (only checked).
public enum RefKind: UInt8, Hashable, Sendable, CaseIterable {
    case input = 0
    case reference = 1
}

/// One conflicting ref: it was already spent by another transaction, named by the hash of its id.
public struct Conflict: Hashable, Sendable {
    public var ref: StateRef
    public var kind: RefKind
    /// SHA-256 of the consuming transaction's id; the id itself stays private.
    public var consumingTxIdHash: SecureHash

    public init(ref: StateRef, kind: RefKind, consumingTxIdHash: SecureHash) {
        self.ref = ref
        self.kind = kind
        self.consumingTxIdHash = consumingTxIdHash
    }
}

/// The notary's final word on a transaction. The first outcome recorded for a transaction id is
/// the one every later request about it receives.
public enum NotarisationOutcome: Hashable, Sendable {
    /// The inputs are now spent by this transaction.
    case committed
    /// Some inputs or references were spent by other transactions; nothing was spent.
    case conflict([Conflict])
    /// The notary's time (the log entry's timestamp) fell outside the time window; nothing was spent.
    case timeWindowInvalid(notaryTime: Instant, window: TimeWindow)

    public var isCommitted: Bool { self == .committed }

    public var kindName: String {
        switch self {
        case .committed: "committed"
        case .conflict: "conflict"
        case .timeWindowInvalid: "time_window_invalid"
        }
    }
}

/// A transaction's outcome signed by the notary: the outcome is a leaf of a batch's Merkle tree,
/// `signature` is the notary's Ed25519 signature over that tree's root, `proof` links the two.
public struct NotarisationAnswer: Hashable, Sendable {
    public var txId: SecureHash
    public var outcome: NotarisationOutcome
    public var proof: MerkleProof
    public var signature: [UInt8]

    public init(txId: SecureHash, outcome: NotarisationOutcome, proof: MerkleProof, signature: [UInt8]) {
        self.txId = txId
        self.outcome = outcome
        self.proof = proof
        self.signature = signature
    }

    /// The batch root this answer proves membership of, or nil if the proof is malformed.
    public var root: SecureHash? { proof.root(fromLeaf: Self.leafHash(txId: txId, outcome: outcome)) }

    /// True when the proof leads to a root that `notary` signed.
    public func isValid(notary: Verifier) -> Bool {
        guard let root else { return false }
        return notary.isValidSignature(signature, for: Self.batchSigningPayload(root: root))
    }

    public static func leafHash(txId: SecureHash, outcome: NotarisationOutcome) -> SecureHash {
        MerkleTree.leafHash(leafPayload(txId: txId, outcome: outcome))
    }

    /// The bytes of one leaf, before leaf hashing.
    public static func leafPayload(txId: SecureHash, outcome: NotarisationOutcome) -> [UInt8] {
        var w = CanonicalWriter()
        w.string(ProtocolTag.outcome)
        w.hash(txId)
        w.outcome(outcome)
        return w.bytes
    }

    /// The exact bytes the notary signs for a batch.
    public static func batchSigningPayload(root: SecureHash) -> [UInt8] {
        var w = CanonicalWriter(capacity: 64)
        w.string(ProtocolTag.batch)
        w.hash(root)
        return w.bytes
    }
}

extension CanonicalWriter {
    public mutating func timeWindow(_ v: TimeWindow) {
        optional(v.from) { $0.instant($1) }
        optional(v.until) { $0.instant($1) }
    }

    public mutating func outcome(_ v: NotarisationOutcome) {
        switch v {
        case .committed:
            u8(0)
        case .conflict(let conflicts):
            u8(1)
            list(conflicts) { w, c in
                w.stateRef(c.ref)
                w.u8(c.kind.rawValue)
                w.hash(c.consumingTxIdHash)
            }
        case .timeWindowInvalid(let notaryTime, let window):
            u8(2)
            instant(notaryTime)
            timeWindow(window)
        }
    }
}

extension CanonicalReader {
    public mutating func timeWindow() throws -> TimeWindow {
        let from = try optional { try $0.instant() }
        let until = try optional { try $0.instant() }
        guard let window = TimeWindow(from: from, until: until) else { throw CanonicalDecodingError("invalid time window") }
        return window
    }

    public mutating func outcome() throws -> NotarisationOutcome {
        switch try u8() {
        case 0:
            return .committed
        case 1:
            return .conflict(try list { r in
                let ref = try r.stateRef()
                guard let kind = RefKind(rawValue: try r.u8()) else { throw CanonicalDecodingError("invalid ref kind") }
                return Conflict(ref: ref, kind: kind, consumingTxIdHash: try r.hash())
            })
        case 2:
            return .timeWindowInvalid(notaryTime: try instant(), window: try timeWindow())
        case let tag:
            throw CanonicalDecodingError("invalid outcome tag \(tag)")
        }
    }
}
