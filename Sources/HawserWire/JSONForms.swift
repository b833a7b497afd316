import Foundation
import HawserCore

// The JSON forms of the API (docs/openapi.json): hashes in lower-case hex, keys and signatures in
// base64, state refs as "<txid hex>:<index>", instants as RFC 3339 strings.


public struct TimeWindowJSON: Codable, Sendable, Equatable {
    public var from: String?
    public var until: String?

    public init(_ window: TimeWindow) {
        from = window.from?.rfc3339
        until = window.until?.rfc3339
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case from, until }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownFields(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        from = try c.decodeIfGiven(String.self, forKey: .from)
        until = try c.decodeIfGiven(String.self, forKey: .until)
    }

    public func decoded() throws(APIError) -> TimeWindow {
        func instant(_ text: String?, _ name: String) throws(APIError) -> Instant? {
            guard let text else { return nil }
            guard let instant = Instant(rfc3339: text) else {
                throw APIError(.invalidTimeWindow, "time window `\(name)` is not an RFC 3339 time from "
                               + "\(Instant.textRange.lowerBound) to \(Instant.textRange.upperBound): \(text)")
            }
            return instant
        }
        guard let window = TimeWindow(from: try instant(from, "from"), until: try instant(until, "until")) else {
            throw APIError(.invalidTimeWindow, "a time window needs a bound, and `from` must be before `until`")
        }
        return window
    }
}

public struct PartyJSON: Codable, Sendable, Equatable {
    public var name: String
    public var publicKey: String

    public init(_ party: Party) {
        name = party.name
        publicKey = party.publicKey.base64
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, publicKey }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownFields(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        publicKey = try c.decode(String.self, forKey: .publicKey)
    }
}

public struct NotarisationRequestJSON: Codable, Sendable {
    public var txId: String
    public var inputs: [String]
    public var references: [String]?
    public var timeWindow: TimeWindowJSON?
    public var requester: PartyJSON
    public var signature: String

    public init(_ r: NotarisationRequest) {
        txId = r.txId.hex
        inputs = r.inputs.map(\.description)
        references = r.references.map(\.description)
        timeWindow = r.timeWindow.map(TimeWindowJSON.init)
        requester = PartyJSON(r.requester)
        signature = Data(r.signature).base64EncodedString()
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case txId, inputs, references, timeWindow, requester, signature }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownFields(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        txId = try c.decode(String.self, forKey: .txId)
        inputs = try c.decode([String].self, forKey: .inputs)
        references = try c.decodeIfGiven([String].self, forKey: .references)
        timeWindow = try c.decodeIfGiven(TimeWindowJSON.self, forKey: .timeWindow)
        requester = try c.decode(PartyJSON.self, forKey: .requester)
        signature = try c.decode(String.self, forKey: .signature)
    }

    public func decoded() throws(APIError) -> NotarisationRequest {
        guard let id = SecureHash(hex: txId) else {
            throw APIError(.invalidTransactionId, "txId must be 64 hexadecimal digits")
        }
        func refs(_ texts: [String]) throws(APIError) -> [StateRef] {
            var out = [StateRef]()
            out.reserveCapacity(texts.count)
            for text in texts {
                guard let ref = StateRef(text) else {
                    throw APIError(.invalidStateRef, "state ref `\(text.prefix(100))` is not `<64 hex digits>:<index>`")
                }
                out.append(ref)
            }
            return out
        }
        guard let key = PublicKey(base64: requester.publicKey) else {
            throw APIError(.invalidPublicKey, "requester.publicKey is not a base64 Ed25519 public key")
        }
        guard let sig = Data(base64Encoded: signature) else {
            throw APIError(.invalidSignature, "signature is not base64")
        }
        return NotarisationRequest(txId: id, inputs: try refs(inputs), references: try refs(references ?? []),
                                   timeWindow: try timeWindow?.decoded(),
                                   requester: Party(name: requester.name, publicKey: key), signature: [UInt8](sig))
    }
}

public struct ConflictJSON: Codable, Sendable, Equatable {
    public var ref: String
    public var kind: String  // "input" or "reference"
    public var consumingTxIdHash: String
}

public struct OutcomeJSON: Codable, Sendable, Equatable {
    public var kind: String  // committed, conflict, time_window_invalid
    public var conflicts: [ConflictJSON]?
    public var notaryTime: String?
    public var timeWindow: TimeWindowJSON?

    public init(_ outcome: NotarisationOutcome) {
        kind = outcome.kindName
        switch outcome {
        case .committed: break
        case .conflict(let cs):
            conflicts = cs.map {
                ConflictJSON(ref: $0.ref.description, kind: $0.kind == .input ? "input" : "reference",
                             consumingTxIdHash: $0.consumingTxIdHash.hex)
            }
        case .timeWindowInvalid(let time, let window):
            notaryTime = time.rfc3339
            timeWindow = TimeWindowJSON(window)
        }
    }

    public func decoded() throws(APIError) -> NotarisationOutcome {
        switch kind {
        case "committed":
            return .committed
        case "conflict":
            var out = [Conflict]()
            for c in conflicts ?? [] {
                guard let ref = StateRef(c.ref), let hash = SecureHash(hex: c.consumingTxIdHash),
                      let kind: RefKind = c.kind == "input" ? .input : c.kind == "reference" ? .reference : nil else {
                    throw APIError(.malformedRequest, "malformed conflict in outcome")
                }
                out.append(Conflict(ref: ref, kind: kind, consumingTxIdHash: hash))
            }
            return .conflict(out)
        case "time_window_invalid":
            guard let notaryTime, let time = Instant(rfc3339: notaryTime), let timeWindow else {
                throw APIError(.malformedRequest, "malformed time_window_invalid outcome")
            }
            return .timeWindowInvalid(notaryTime: time, window: try timeWindow.decoded())
        default:
            throw APIError(.malformedRequest, "unknown outcome kind `\(kind)`")
        }
    }
}

public struct MerkleProofJSON: Codable, Sendable, Equatable {
    public var leafIndex: UInt32
    public var leafCount: UInt32
    public var path: [String]
}

public struct NotarisationAnswerJSON: Codable, Sendable, Equatable {
    public var txId: String
    public var outcome: OutcomeJSON
    public var proof: MerkleProofJSON
    public var signature: String

    public init(_ a: NotarisationAnswer) {
        txId = a.txId.hex
        outcome = OutcomeJSON(a.outcome)
        proof = MerkleProofJSON(leafIndex: a.proof.leafIndex, leafCount: a.proof.leafCount, path: a.proof.path.map(\.hex))
        signature = Data(a.signature).base64EncodedString()
    }

    public func decoded() throws(APIError) -> NotarisationAnswer {
        var path = [SecureHash]()
        for text in proof.path {
            guard let h = SecureHash(hex: text) else { throw APIError(.malformedRequest, "malformed proof hash") }
            path.append(h)
        }
        guard let id = SecureHash(hex: txId), let sig = Data(base64Encoded: signature) else {
            throw APIError(.malformedRequest, "malformed answer")
        }
        return NotarisationAnswer(txId: id, outcome: try outcome.decoded(),
                                  proof: MerkleProof(leafIndex: proof.leafIndex, leafCount: proof.leafCount, path: path),
                                  signature: [UInt8](sig))
    }
}

public struct ErrorBodyJSON: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        /// With `standby`: the active process's base URL (absent when none is active).
        public var active: String?
    }
    public var error: Detail

    public init(_ e: APIError) { error = Detail(code: e.code.rawValue, message: e.message, active: e.active) }
}

public struct BatchRequestJSON: Codable, Sendable {
    public var requests: [NotarisationRequestJSON]
    public init(requests: [NotarisationRequestJSON]) { self.requests = requests }

    enum CodingKeys: String, CodingKey, CaseIterable { case requests }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownFields(CodingKeys.self)
        requests = try decoder.container(keyedBy: CodingKeys.self).decode([NotarisationRequestJSON].self, forKey: .requests)
    }
}

/// One item of a batch answer: exactly one of `answer` and `error` is present.
public struct BatchResultJSON: Codable, Sendable, Equatable {
    public var answer: NotarisationAnswerJSON?
    public var error: ErrorBodyJSON.Detail?

    public init(_ result: Result<NotarisationAnswer, APIError>) {
        switch result {
        case .success(let a): answer = NotarisationAnswerJSON(a)
        case .failure(let e): error = ErrorBodyJSON(e).error
        }
    }
}

public struct BatchResponseJSON: Codable, Sendable, Equatable {
    public var results: [BatchResultJSON]
    public init(results: [BatchResultJSON]) { self.results = results }
}

public struct NotaryIdentityJSON: Codable, Sendable, Equatable {
    public var name: String
    public var publicKey: String
    public var signatureScheme: String

    public init(name: String, publicKey: PublicKey) {
        self.name = name
        self.publicKey = publicKey.base64
        signatureScheme = "ed25519"
    }
}
