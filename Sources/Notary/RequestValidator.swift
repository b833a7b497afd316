import Foundation
import HawserCore
import HawserWire

/// The front's checks (issue rule 7), run before a request can touch any state: cheap structural
/// checks first, the requester's authorisation next, the Ed25519 signature last.
public struct RequestValidator: Sendable {
    public let notary: PublicKey
    public let maxStateRefs: Int
    /// Authorised requesters by name; nil accepts any party that signs with the key it names.
    private let parties: [String: Verifier]?

    public init(notary: PublicKey, authorisedParties: [Party]?, maxStateRefs: Int) {
        self.notary = notary
        self.maxStateRefs = maxStateRefs
        self.parties = authorisedParties.map { parties in
            Dictionary(parties.map { ($0.name, Verifier($0.publicKey)) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// The refusal of a request that names `count` state refs, over `max` (also given before
    /// decoding, from the bytes: `WireScan`).
    public static func tooManyStateRefs(_ count: Int, max: Int) -> APIError {
        APIError(.tooManyStateRefs, "the request names \(count) state refs; this notary accepts at most \(max) inputs and references together")
    }

    public func check(_ request: NotarisationRequest) throws(APIError) {
        try checkShape(request)
        let verifier: Verifier
        if let parties {
            guard let known = parties[request.requester.name], known.key == request.requester.publicKey else {
                throw APIError(.unknownParty, "requester `\(request.requester.name.prefix(200))` with this key is not authorised to use this notary")
            }
            verifier = known
        } else {
            verifier = Verifier(request.requester.publicKey)
        }
        guard verifier.isValidSignature(request.signature, for: request.signingPayload(notary: notary)) else {
            throw APIError(.invalidSignature, "the signature does not verify against the requester's key and this notary's request payload")
        }
    }

    /// Read once: on Linux each read of the processor count reads two cgroup files.
    private static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// Checks many requests, spreading the signature checks over every core.
    public func checkAll(_ requests: [NotarisationRequest]) async -> [APIError?] {
        let cores = Self.cores
        guard requests.count >= 16, cores > 1 else { return requests.map(errorOf) }
        let chunk = (requests.count + cores - 1) / cores
        return await withTaskGroup(of: (Int, [APIError?]).self) { group in
            for start in stride(from: 0, to: requests.count, by: chunk) {
                let slice = requests[start..<min(start + chunk, requests.count)]
                group.addTask { (start, slice.map(errorOf)) }
            }
            var out = [APIError?](repeating: nil, count: requests.count)
            for await (start, errors) in group { out.replaceSubrange(start..<(start + errors.count), with: errors) }
            return out
        }
    }

    private func errorOf(_ request: NotarisationRequest) -> APIError? {
        do { try check(request); return nil } catch { return error }
    }

    private func checkShape(_ request: NotarisationRequest) throws(APIError) {
        let count = request.inputs.count + request.references.count
        guard count <= maxStateRefs else { throw Self.tooManyStateRefs(count, max: maxStateRefs) }
        guard count > 0 || request.timeWindow != nil else {
            throw APIError(.nothingToNotarise, "the request has no inputs, no references and no time window: there is nothing to notarise")
        }
        var inputs = Set<StateRef>(minimumCapacity: request.inputs.count)
        for ref in request.inputs where !inputs.insert(ref).inserted {
            throw APIError(.duplicateStateRef, "input \(ref) is listed twice")
        }
        var references = Set<StateRef>(minimumCapacity: request.references.count)
        for ref in request.references {
            guard references.insert(ref).inserted else { throw APIError(.duplicateStateRef, "reference \(ref) is listed twice") }
            guard !inputs.contains(ref) else {
                throw APIError(.refBothInputAndReference, "\(ref) is both an input and a reference")
            }
        }
    }
}
