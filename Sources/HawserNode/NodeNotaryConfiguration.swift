import Foundation
import HawserClient
import HawserCore

/// The `notary` section of the node's configuration: which notary the flows use. `embedded` (the
/// default) runs one inside the node (named by the top-level `notaryName` and `notaryKeyFile`);
/// `remote` uses a notary's HTTP API at `urls` (one notary or the replicas of a cluster), pinned
/// to `publicKey`. The remote options are optional so that an embedded section stays
/// `{"kind": "embedded"}`; docs/node.md lists their defaults.
public struct NodeNotaryConfiguration: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case embedded, remote }

    public var kind = Kind.embedded
    /// The notary's base URLs, tried in turn (remote only).
    public var urls: [String]?
    /// The notary's name, for the node's identity (remote only; default as `notaryName`'s).
    public var name: String?
    /// The notary's Ed25519 public key, base64: requests are signed for it, answers checked with it.
    public var publicKey: String?
    /// The longest one notarisation may keep trying, across URLs, before the flow goes to the hospital.
    public var timeoutMillis: Int?
    /// The longest one attempt at one URL may take.
    public var attemptTimeoutMillis: Int?
    /// Most attempts per notarisation, across URLs.
    public var maxAttempts: Int?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, urls, name, publicKey, timeoutMillis, attemptTimeoutMillis, maxAttempts
    }

    public init() {}

    /// A remote notary at `urls` with key `publicKey` (base64) and every other option at its default.
    public static func remote(urls: [String], publicKey: String, name: String? = nil) -> NodeNotaryConfiguration {
        var configuration = NodeNotaryConfiguration()
        configuration.kind = .remote
        configuration.urls = urls
        configuration.publicKey = publicKey
        configuration.name = name
        return configuration
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .kind) {
            guard let parsed = Kind(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .kind, in: c,
                                                       debugDescription: "notary.kind must be \"embedded\" or \"remote\", not \"\(text)\"")
            }
            kind = parsed
        }
        urls = try c.decodeIfPresent([String].self, forKey: .urls)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        publicKey = try c.decodeIfPresent(String.self, forKey: .publicKey)
        timeoutMillis = try c.decodeIfPresent(Int.self, forKey: .timeoutMillis)
        attemptTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .attemptTimeoutMillis)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts)
    }

    /// The remote notary's identity (nil unless the key is valid).
    var identity: Party? {
        publicKey.flatMap(PublicKey.init(base64:)).map { Party(name: name ?? NodeConfiguration.defaultNotaryName, publicKey: $0) }
    }

    /// How the remote port's client retries one notarisation.
    var retryPolicy: RetryPolicy {
        let d = RetryPolicy.default
        let deadline = timeoutMillis.map { Duration.milliseconds($0) } ?? d.deadline
        return RetryPolicy(maxAttempts: maxAttempts ?? d.maxAttempts, baseBackoff: d.baseBackoff, maxBackoff: d.maxBackoff,
                           attemptTimeout: attemptTimeoutMillis.map { .milliseconds($0) } ?? min(d.attemptTimeout, deadline),
                           deadline: deadline)
    }

    static let timeoutRange = 100...3_600_000

    /// Every invalid value, one sentence each.
    var problems: [String] {
        switch kind {
        case .embedded:
            let remoteOnly = urls != nil || name != nil || publicKey != nil || timeoutMillis != nil || attemptTimeoutMillis != nil
                || maxAttempts != nil
            return remoteOnly ? ["notary.urls, name, publicKey, timeoutMillis, attemptTimeoutMillis and maxAttempts apply only to notary.kind \"remote\""] : []
        case .remote:
            var out = [String]()
            let urls = urls ?? []
            if urls.isEmpty { out.append("notary.urls must list the remote notary's base URLs, e.g. [\"http://10.0.0.1:8080\"]") }
            var bases = [String]()
            for url in urls {
                do { bases += try NotaryClient.addresses([url]) } catch { out.append("notary.urls: \(error.problem)") }
            }
            if Set(bases).count < bases.count { out.append("notary.urls must not name a URL twice") }
            if !bases.isEmpty {
                do { _ = try NotaryClient.addresses(bases) } catch { out.append("notary.urls: \(error.problem)") }  // http and grpc mixed
            }
            if name?.isEmpty == true { out.append("notary.name must not be empty") }
            if publicKey == nil {
                out.append("notary.publicKey is required: the remote notary's Ed25519 public key (base64), which every answer is checked against")
            } else if identity == nil {
                out.append("notary.publicKey is not a base64 Ed25519 public key (44 characters)")
            } else if identity?.publicKey.hasSmallOrder == true {
                out.append("notary.publicKey is a key of small order: answers could be signed for it without its private key")
            }
            if let timeoutMillis, !Self.timeoutRange.contains(timeoutMillis) {
                out.append("notary.timeoutMillis must be \(Self.timeoutRange.lowerBound)...\(Self.timeoutRange.upperBound)")
            }
            if let attemptTimeoutMillis, !Self.timeoutRange.contains(attemptTimeoutMillis) {
                out.append("notary.attemptTimeoutMillis must be \(Self.timeoutRange.lowerBound)...\(Self.timeoutRange.upperBound)")
            } else if let attemptTimeoutMillis, .milliseconds(attemptTimeoutMillis) > retryPolicy.deadline {
                let deadline = Int(retryPolicy.deadline / .milliseconds(1))
                out.append("notary.attemptTimeoutMillis must not exceed notary.timeoutMillis (\(deadline) ms; one attempt cannot outlast the whole call)")
            }
            if let maxAttempts, !(1...1_000).contains(maxAttempts) { out.append("notary.maxAttempts must be 1...1000") }
            return out
        }
    }
}

extension NotaryClientError {
    /// The sentence of a configuration problem, without the client's prefix.
    fileprivate var problem: String {
        if case .invalidConfiguration(let problem) = self { return problem }
        return description
    }
}
