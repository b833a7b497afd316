import Foundation
import HawserCore

// Conversions between HawserCore values and their protobuf messages. Decoding validates every
// field and throws the API error a client should see.

extension SecureHash {
    init(field data: Data, _ code: ErrorCode, _ what: String) throws(APIError) {
        guard let hash = SecureHash(bytes: data) else {
            throw APIError(code, "\(what) must be 32 bytes, got \(data.count)")
        }
        self = hash
    }
}

extension StateRef {
    public init(proto: Hawser_V1_StateRef) throws(APIError) {
        guard let txId = SecureHash(bytes: proto.txID) else {
            throw APIError(.invalidStateRef, "a state ref's transaction id must be 32 bytes, got \(proto.txID.count)")
        }
        self.init(txId: txId, index: proto.index)
    }

    public var proto: Hawser_V1_StateRef {
        var p = Hawser_V1_StateRef()
        p.txID = Data(txId.bytes)
        p.index = index
        return p
    }
}

extension TimeWindow {
    public init(proto: Hawser_V1_TimeWindow) throws(APIError) {
        let from = proto.hasFromMicros ? Instant(microsecondsSinceEpoch: proto.fromMicros) : nil
        let until = proto.hasUntilMicros ? Instant(microsecondsSinceEpoch: proto.untilMicros) : nil
        for (bound, name) in [(from, "from"), (until, "until")] {
            if let bound, !Instant.textRange.contains(bound) {
                throw APIError(.invalidTimeWindow, "time window `\(name)` (\(bound.microsecondsSinceEpoch) µs) is outside "
                               + "\(Instant.textRange.lowerBound) to \(Instant.textRange.upperBound)")
            }
        }
        guard let window = TimeWindow(from: from, until: until) else {
            throw APIError(.invalidTimeWindow, "a time window needs a bound, and `from` must be before `until`")
        }
        self = window
    }

    public var proto: Hawser_V1_TimeWindow {
        var p = Hawser_V1_TimeWindow()
        if let from { p.fromMicros = from.microsecondsSinceEpoch }
        if let until { p.untilMicros = until.microsecondsSinceEpoch }
        return p
    }
}

extension NotarisationRequest {
    public init(proto: Hawser_V1_NotarisationRequest) throws(APIError) {
        let txId = try SecureHash(field: proto.txID, .invalidTransactionId, "the transaction id")
        var inputs = [StateRef]()
        inputs.reserveCapacity(proto.inputs.count)
        for ref in proto.inputs { inputs.append(try StateRef(proto: ref)) }
        var references = [StateRef]()
        for ref in proto.references { references.append(try StateRef(proto: ref)) }
        let window = proto.hasTimeWindow ? try TimeWindow(proto: proto.timeWindow) : nil
        guard proto.hasRequester else { throw APIError(.malformedRequest, "the requester is missing") }
        guard let key = PublicKey(rawBytes: [UInt8](proto.requester.publicKey)) else {
            throw APIError(.invalidPublicKey, "the requester's public key is not a valid Ed25519 key")
        }
        self.init(txId: txId, inputs: inputs, references: references, timeWindow: window,
                  requester: Party(name: proto.requester.name, publicKey: key), signature: [UInt8](proto.signature))
    }

    public var proto: Hawser_V1_NotarisationRequest {
        var p = Hawser_V1_NotarisationRequest()
        p.txID = Data(txId.bytes)
        p.inputs = inputs.map(\.proto)
        p.references = references.map(\.proto)
        if let timeWindow { p.timeWindow = timeWindow.proto }
        p.requester.name = requester.name
        p.requester.publicKey = Data(requester.publicKey.rawBytes)
        p.signature = Data(signature)
        return p
    }
}

extension NotarisationOutcome {
    public init(proto: Hawser_V1_Outcome) throws(APIError) {
        switch proto.kind {
        case .committed?:
            self = .committed
        case .conflict(let c)?:
            var conflicts = [Conflict]()
            for item in c.conflicts {
                guard case let kind? = RefKind(rawValue: UInt8(clamping: item.kind.rawValue)) else {
                    throw APIError(.malformedRequest, "unknown conflict kind \(item.kind.rawValue)")
                }
                conflicts.append(Conflict(ref: try StateRef(proto: item.ref), kind: kind,
                                          consumingTxIdHash: try SecureHash(field: item.consumingTxIDHash, .malformedRequest, "a consuming transaction hash")))
            }
            self = .conflict(conflicts)
        case .timeWindowInvalid(let t)?:
            self = .timeWindowInvalid(notaryTime: Instant(microsecondsSinceEpoch: t.notaryTimeMicros),
                                      window: try TimeWindow(proto: t.timeWindow))
        case nil:
            throw APIError(.malformedRequest, "the outcome is missing")
        }
    }

    public var proto: Hawser_V1_Outcome {
        var p = Hawser_V1_Outcome()
        switch self {
        case .committed:
            p.committed = .init()
        case .conflict(let conflicts):
            p.conflict.conflicts = conflicts.map { c in
                var item = Hawser_V1_Conflict()
                item.ref = c.ref.proto
                item.kind = c.kind == .input ? .input : .reference
                item.consumingTxIDHash = Data(c.consumingTxIdHash.bytes)
                return item
            }
        case .timeWindowInvalid(let notaryTime, let window):
            p.timeWindowInvalid.notaryTimeMicros = notaryTime.microsecondsSinceEpoch
            p.timeWindowInvalid.timeWindow = window.proto
        }
        return p
    }
}

extension NotarisationAnswer {
    public init(proto: Hawser_V1_NotarisationAnswer) throws(APIError) {
        var path = [SecureHash]()
        for node in proto.proof.path { path.append(try SecureHash(field: node, .malformedRequest, "a proof hash")) }
        self.init(txId: try SecureHash(field: proto.txID, .invalidTransactionId, "the transaction id"),
                  outcome: try NotarisationOutcome(proto: proto.outcome),
                  proof: MerkleProof(leafIndex: proto.proof.leafIndex, leafCount: proto.proof.leafCount, path: path),
                  signature: [UInt8](proto.signature))
    }

    public var proto: Hawser_V1_NotarisationAnswer {
        var p = Hawser_V1_NotarisationAnswer()
        p.txID = Data(txId.bytes)
        p.outcome = outcome.proto
        p.proof.leafIndex = proof.leafIndex
        p.proof.leafCount = proof.leafCount
        p.proof.path = proof.path.map { Data($0.bytes) }
        p.signature = Data(signature)
        return p
    }
}

extension APIError {
    public var proto: Hawser_V1_Error {
        var p = Hawser_V1_Error()
        p.code = code.rawValue
        p.message = message
        p.active = active ?? ""
        return p
    }
}
