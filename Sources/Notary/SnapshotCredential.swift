import HawserCore

/// Who may copy a replica's store (`GET /v1/snapshot`): a holder of the notary's key, such as
/// `hawser notary restore` on a replica's machine. The store holds every transaction id the notary
/// recorded and the transaction that spent each state, which its answers keep private (a conflict
/// names only the hash of the consuming transaction's id). The credential is
/// `Hawser-Snapshot SECONDS:MAC`: the Unix time it was made and the hex HMAC-SHA-256, keyed from
/// the notary's key, of `GET /v1/snapshot SECONDS`. Sans I/O: time is an input.
public struct SnapshotCredential: Sendable {
    public static let scheme = "Hawser-Snapshot"
    /// How far, in seconds, the asker's clock may be from the replica's.
    public static let skew: Int64 = 300
    private let authenticator: MessageAuthenticator

    public init(notaryKey: SigningKey) {
        authenticator = MessageAuthenticator(deriving: notaryKey, purpose: "notary snapshot")
    }

    /// The `Authorization` header's value made at `seconds` (Unix time).
    public func header(at seconds: Int64) -> String {
        "\(Self.scheme) \(seconds):\(Hex.encode(authenticator.code(Self.message(seconds))))"
    }

    /// Nil when `header` is a credential made with the notary's key within `skew` of `now` (Unix
    /// seconds); otherwise why it is refused.
    public func refusal(_ header: String?, at now: Int64) -> String? {
        guard let header else {
            return "a snapshot holds every transaction id this notary recorded: ask with an `Authorization: \(Self.scheme)` credential "
                + "made with the notary's key (`hawser notary restore` does; docs/cluster.md)"
        }
        let parts = header.split(separator: " ", omittingEmptySubsequences: false)
        let value = parts.count == 2 && parts[0] == Self.scheme ? parts[1].split(separator: ":", omittingEmptySubsequences: false) : []
        guard value.count == 2, let seconds = Int64(value[0]), let code = Hex.decode(String(value[1])) else {
            return "the Authorization header is not `\(Self.scheme) SECONDS:MAC` (docs/cluster.md)"
        }
        let (apart, overflow) = now.subtractingReportingOverflow(seconds)
        guard !overflow, apart.magnitude <= Self.skew else {
            return "the credential was made at \(seconds), more than \(Self.skew) s from this replica's clock (\(now)): make a new one"
        }
        guard authenticator.isValid(code, for: Self.message(seconds)) else {
            return "the credential was not made with this notary's key"
        }
        return nil
    }

    private static func message(_ seconds: Int64) -> [UInt8] { Array("GET /v1/snapshot \(seconds)".utf8) }
}
