import Foundation
import Testing
import HawserCore

/// docs/notary-protocol.md and the code must not drift apart: every vector in the document is
/// recomputed here. On a mismatch the expected blocks are printed, ready to paste into the document.
@Suite(.timeLimit(.minutes(10))) struct ProtocolDocumentTests {
    static let documentURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // HawserCoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .appendingPathComponent("docs/notary-protocol.md")

    struct Entry { var name: String, value: String, line: Int }

    /// The `name: value` lines of every ```vectors block; `#` lines are comments.
    static func parseVectors(_ text: String) throws -> [Entry] {
        var entries = [Entry]()
        var inBlock = false, blocks = 0
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if !inBlock {
                if line == "```vectors" { inBlock = true; blocks += 1 }
                continue
            }
            if line == "```" { inBlock = false; continue }
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.range(of: ": ") else {
                throw DocumentError("line \(n + 1): `\(line)` is not `name: value`")
            }
            entries.append(Entry(name: String(line[..<colon.lowerBound]),
                                 value: String(line[colon.upperBound...]).trimmingCharacters(in: .whitespaces),
                                 line: n + 1))
        }
        guard !inBlock else { throw DocumentError("unterminated vectors block") }
        guard blocks > 0 else { throw DocumentError("no vectors blocks") }
        return entries
    }

    struct DocumentError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    static func documentVectors() throws -> [String: String] {
        let text = try String(contentsOf: documentURL, encoding: .utf8)
        var map = [String: String]()
        for e in try parseVectors(text) {
            #expect(map[e.name] == nil, "vector `\(e.name)` is listed twice (line \(e.line))")
            map[e.name] = e.value
        }
        return map
    }

    /// Ed25519 as specified is deterministic, and so is swift-crypto on Linux (BoringSSL).
    /// Apple's CryptoKit randomises signatures, so there only validity is checked.
    static let signaturesAreDeterministic: Bool = {
        #if canImport(Darwin)
        false
        #else
        true
        #endif
    }()

    @Test func everyVectorMatchesTheCode() throws {
        let document: [String: String]
        do {
            document = try Self.documentVectors()
        } catch {
            print("---- expected vectors for docs/notary-protocol.md ----\n" + ProtocolVectors.rendered())
            throw error
        }
        let computed = ProtocolVectors.groups.flatMap(\.entries)
        var mismatches = 0
        for (name, value) in computed {
            guard let listed = document[name] else {
                Issue.record("vector `\(name)` is missing from the document")
                mismatches += 1
                continue
            }
            if name.contains("signature") && !name.contains("payload") && !Self.signaturesAreDeterministic { continue }
            if listed != value {
                Issue.record("vector `\(name)`: document has \(listed), code computes \(value)")
                mismatches += 1
            }
        }
        let known = Set(computed.map(\.name))
        for name in document.keys.sorted() where !known.contains(name) {
            Issue.record("the document lists `\(name)`, which the code does not compute")
            mismatches += 1
        }
        if mismatches > 0 {
            print("---- expected vectors for docs/notary-protocol.md ----\n" + ProtocolVectors.rendered())
        }
    }

    /// Checks the document against itself, as a client would use it: parts concatenate to the
    /// payload, the signatures verify, the proofs lead to the signed root.
    @Test func documentIsSelfConsistent() throws {
        let d = try Self.documentVectors()
        func bytes(_ name: String) throws -> [UInt8] {
            try #require(d[name].flatMap(Hex.decode), "vector `\(name)` is missing or not hex")
        }
        func hash(_ name: String) throws -> SecureHash {
            try #require(d[name].flatMap { SecureHash(hex: $0) }, "vector `\(name)` is missing or not a hash")
        }

        let requesterKey = try #require(PublicKey(rawBytes: try bytes("requester_public_key")))
        let notaryKey = try #require(PublicKey(rawBytes: try bytes("notary_public_key")))
        #expect(SigningKey(seed: try bytes("requester_seed"))?.publicKey == requesterKey)
        #expect(SigningKey(seed: try bytes("notary_seed"))?.publicKey == notaryKey)
        #expect(PublicKey(base64: d["requester_public_key_base64"] ?? "") == requesterKey)
        #expect(PublicKey(base64: d["notary_public_key_base64"] ?? "") == notaryKey)

        let partNames = d.keys.filter { $0.hasPrefix("request_part_") }.sorted()
        #expect(partNames.count == 8)
        let payload = try bytes("request_signing_payload")
        #expect(try partNames.flatMap { try bytes($0) } == payload)
        let requestSignature = try bytes("request_signature")
        #expect(requesterKey.isValidSignature(requestSignature, for: payload))
        #expect(Data(base64Encoded: d["request_signature_base64"] ?? "").map { [UInt8]($0) } == requestSignature)

        let root = try hash("root")
        for i in 0..<3 {
            let leafPayload = try bytes("leaf_\(i)_payload")
            let leafHash = try hash("leaf_\(i)_hash")
            #expect(SecureHash.sha256([0x00] + leafPayload) == leafHash)
            let index = try #require(d["proof_\(i)_leaf_index"].flatMap { UInt32($0) })
            let count = try #require(d["proof_\(i)_leaf_count"].flatMap { UInt32($0) })
            let path = try #require(d["proof_\(i)_path"]).split(separator: " ").map { SecureHash(hex: String($0)) }
            let proof = MerkleProof(leafIndex: index, leafCount: count, path: try path.map { try #require($0) })
            #expect(proof.root(fromLeaf: leafHash) == root, "proof \(i)")
            // The leaf payload is tag, transaction id, outcome: the vectors say the same.
            var w = CanonicalWriter()
            w.string(ProtocolTag.outcome)
            #expect(leafPayload == w.bytes + (try bytes("leaf_\(i)_tx_id")) + (try bytes("leaf_\(i)_outcome_encoding")))
        }
        #expect(SecureHash.sha256([0x01] + (try hash("leaf_0_hash")).bytes + (try hash("leaf_1_hash")).bytes)
                == (try hash("node_0_1")))
        let batchPayload = try bytes("batch_signing_payload")
        #expect(batchPayload.suffix(32).elementsEqual(root.bytes))
        #expect(notaryKey.isValidSignature(try bytes("batch_signature"), for: batchPayload))
    }

    @Test func parserRejectsMalformedBlocks() {
        #expect(throws: DocumentError.self) { try Self.parseVectors("no blocks here") }
        #expect(throws: DocumentError.self) { try Self.parseVectors("```vectors\na: 1\n") }
        #expect(throws: DocumentError.self) { try Self.parseVectors("```vectors\nnot a vector\n```\n") }
        let entries = try? Self.parseVectors("```vectors\n# c\n\na: 1\nb: x:1\n```\n```\nc: 2\n```\n")
        #expect(entries?.map(\.name) == ["a", "b"])
        #expect(entries?.map(\.value) == ["1", "x:1"])
    }
}
