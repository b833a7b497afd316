import Foundation
import HawserCore

/// The test vectors of docs/notary-protocol.md, computed by the code. `ProtocolDocumentTests`
/// checks that the document lists exactly these names with exactly these values.
enum ProtocolVectors {
    struct Group {
        var name: String
        var entries: [(name: String, value: String)] = []

        init(_ name: String) { self.name = name }

        mutating func add(_ name: String, _ value: String) { entries.append((name, value)) }
        mutating func add(_ name: String, hex bytes: [UInt8]) { entries.append((name, Hex.encode(bytes))) }
        mutating func add(_ name: String, _ write: (inout CanonicalWriter) -> Void) {
            var w = CanonicalWriter()
            write(&w)
            add(name, hex: w.bytes)
        }
    }

    // The fixed inputs of the vectors.
    static let requesterKey = SigningKey(seed: [UInt8](repeating: 0x01, count: 32))!
    static let notaryKey = SigningKey(seed: [UInt8](repeating: 0x02, count: 32))!
    static let requesterName = "O=Alice Ltd, L=Zürich, C=CH"
    static func id(_ text: String) -> SecureHash { SecureHash.sha256(Array(text.utf8)) }
    static let txId = id("hawser vector: transaction")
    static let input0 = StateRef(txId: id("hawser vector: input 0"), index: 0)
    static let input1 = StateRef(txId: id("hawser vector: input 1"), index: 2)
    static let reference0 = StateRef(txId: id("hawser vector: reference 0"), index: 1)
    static let windowFrom = Instant(rfc3339: "2026-03-01T12:00:00Z")!
    static let windowUntil = Instant(rfc3339: "2026-03-01T12:30:00.25Z")!
    static let window = TimeWindow(from: windowFrom, until: windowUntil)!
    static let conflictingTxId = id("hawser vector: conflicting transaction")
    static let lateTxId = id("hawser vector: late transaction")
    /// The notary's time for the late transaction: exactly `until`, which the window excludes.
    static let lateNotaryTime = windowUntil

    static var request: NotarisationRequest {
        NotarisationRequest.signed(txId: txId, inputs: [input0, input1], references: [reference0], timeWindow: window,
                                   requesterName: requesterName, key: requesterKey, notary: notaryKey.publicKey)
    }

    static var batch: [(txId: SecureHash, outcome: NotarisationOutcome)] {
        let consumer = SecureHash.sha256(txId.bytes)
        return [
            (txId, .committed),
            (conflictingTxId, .conflict([
                Conflict(ref: input1, kind: .input, consumingTxIdHash: consumer),
                Conflict(ref: input0, kind: .reference, consumingTxIdHash: consumer),
            ])),
            (lateTxId, .timeWindowInvalid(notaryTime: lateNotaryTime, window: window)),
        ]
    }

    static var groups: [Group] {
        var keys = Group("keys")
        keys.add("requester_seed", hex: requesterKey.seed)
        keys.add("requester_public_key", hex: requesterKey.publicKey.rawBytes)
        keys.add("requester_public_key_base64", requesterKey.publicKey.base64)
        keys.add("notary_seed", hex: notaryKey.seed)
        keys.add("notary_public_key", hex: notaryKey.publicKey.rawBytes)
        keys.add("notary_public_key_base64", notaryKey.publicKey.base64)

        var primitives = Group("primitives")
        primitives.add("u8_42") { $0.u8(42) }
        primitives.add("u32_1") { $0.u32(1) }
        primitives.add("u32_4294967295") { $0.u32(.max) }
        primitives.add("u64_72623859790382856") { $0.u64(0x0102_0304_0506_0708) }
        primitives.add("i64_1") { $0.i64(1) }
        primitives.add("i64_minus_1") { $0.i64(-1) }
        primitives.add("i64_minus_9223372036854775808") { $0.i64(.min) }
        primitives.add("bool_false") { $0.bool(false) }
        primitives.add("bool_true") { $0.bool(true) }
        primitives.add("bytes_empty") { $0.lengthPrefixed([]) }
        primitives.add("bytes_010203") { $0.lengthPrefixed([1, 2, 3]) }
        primitives.add("string_empty") { $0.string("") }
        primitives.add("string_hawser") { $0.string("hawser") }
        primitives.add("string_zurich") { $0.string("Zürich") }
        primitives.add("optional_u32_absent") { $0.optional(nil as UInt32?) { $0.u32($1) } }
        primitives.add("optional_u32_7") { $0.optional(UInt32(7)) { $0.u32($1) } }
        primitives.add("list_u32_empty") { $0.list([UInt32]()) { $0.u32($1) } }
        primitives.add("list_u32_1_2") { $0.list([UInt32(1), 2]) { $0.u32($1) } }

        var ledger = Group("ledger")
        ledger.add("tx_id", txId.hex)
        ledger.add("tx_id_encoding") { $0.hash(txId) }
        for (name, ref) in [("input_0", input0), ("input_1", input1), ("reference_0", reference0)] {
            ledger.add("\(name)_text", ref.description)
            ledger.add("\(name)_encoding") { $0.stateRef(ref) }
        }
        ledger.add("instant_epoch_text", Instant(microsecondsSinceEpoch: 0).rfc3339)
        ledger.add("instant_epoch_encoding") { $0.instant(Instant(microsecondsSinceEpoch: 0)) }
        let beforeEpoch = Instant(microsecondsSinceEpoch: -1)
        ledger.add("instant_before_epoch_text", beforeEpoch.rfc3339)
        ledger.add("instant_before_epoch_encoding") { $0.instant(beforeEpoch) }
        ledger.add("window_from_text", windowFrom.rfc3339)
        ledger.add("window_from_encoding") { $0.instant(windowFrom) }
        ledger.add("window_until_text", windowUntil.rfc3339)
        ledger.add("window_until_encoding") { $0.instant(windowUntil) }
        ledger.add("time_window_encoding") { $0.timeWindow(window) }
        ledger.add("time_window_from_only_encoding") { $0.timeWindow(TimeWindow(from: windowFrom, until: nil)!) }
        ledger.add("time_window_until_only_encoding") { $0.timeWindow(TimeWindow(from: nil, until: windowUntil)!) }

        let r = request
        let notary = notaryKey.publicKey
        var req = Group("request")
        req.add("request_part_1_tag") { $0.string(ProtocolTag.request) }
        req.add("request_part_2_notary_key") { $0.raw(notary.rawBytes) }
        req.add("request_part_3_tx_id") { $0.hash(r.txId) }
        req.add("request_part_4_inputs") { $0.list(r.inputs) { $0.stateRef($1) } }
        req.add("request_part_5_references") { $0.list(r.references) { $0.stateRef($1) } }
        req.add("request_part_6_time_window") { $0.optional(r.timeWindow) { $0.timeWindow($1) } }
        req.add("request_part_7_requester_name") { $0.string(r.requester.name) }
        req.add("request_part_8_requester_key") { $0.raw(r.requester.publicKey.rawBytes) }
        req.add("request_signing_payload", hex: r.signingPayload(notary: notary))
        req.add("request_signature", hex: r.signature)
        req.add("request_signature_base64", Data(r.signature).base64EncodedString())

        let items = batch
        var answer = Group("answer")
        let leafHashes = items.map { NotarisationAnswer.leafHash(txId: $0.txId, outcome: $0.outcome) }
        let tree = MerkleTree(leaves: leafHashes)
        answer.add("consuming_tx_id_hash", SecureHash.sha256(txId.bytes).hex)
        answer.add("late_notary_time_text", lateNotaryTime.rfc3339)
        for (i, item) in items.enumerated() {
            answer.add("leaf_\(i)_tx_id", item.txId.hex)
            answer.add("leaf_\(i)_kind", item.outcome.kindName)
            answer.add("leaf_\(i)_outcome_encoding") { $0.outcome(item.outcome) }
            answer.add("leaf_\(i)_payload", hex: NotarisationAnswer.leafPayload(txId: item.txId, outcome: item.outcome))
            answer.add("leaf_\(i)_hash", leafHashes[i].hex)
        }
        answer.add("node_0_1", MerkleTree.nodeHash(leafHashes[0], leafHashes[1]).hex)
        answer.add("root", tree.root.hex)
        for i in items.indices {
            let proof = tree.proof(forLeaf: i)
            answer.add("proof_\(i)_leaf_index", String(proof.leafIndex))
            answer.add("proof_\(i)_leaf_count", String(proof.leafCount))
            answer.add("proof_\(i)_path", proof.path.map(\.hex).joined(separator: " "))
        }
        let payload = NotarisationAnswer.batchSigningPayload(root: tree.root)
        let signature = notaryKey.sign(payload)
        answer.add("batch_signing_payload", hex: payload)
        answer.add("batch_signature", hex: signature)
        answer.add("batch_signature_base64", Data(signature).base64EncodedString())

        return [keys, primitives, ledger, req, answer]
    }

    /// The document's form of the vectors: one fenced `vectors` block per group.
    static func rendered() -> String {
        groups.map { group in
            "```vectors\n# \(group.name)\n" + group.entries.map { "\($0.name): \($0.value)\n" }.joined() + "```\n"
        }.joined(separator: "\n")
    }
}
