/// Errors of the election and fencing layer. Each has a stable code and an HTTP status that fits,
/// for whoever reports it over an API.
public enum CoordinationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A write carried an epoch lower than the highest the store has seen: its leader is stale.
    case staleEpoch(resource: String, presented: Epoch, current: Epoch)
    /// A write was attempted by a process that does not own the resource now (a standby, or a
    /// master that lost the election).
    case notOwner(resource: String)
    /// A switchover named a candidate that is not standing (absent or unhealthy).
    case unknownCandidate(String)
    /// A setting is out of range or inconsistent with another.
    case invalidConfiguration(String)
    /// The coordination store did not answer in time or refused the request.
    case unavailable(String)
    /// Another live process stands in the election with the same candidate id.
    case duplicateCandidate(String)
    /// The coordination store refused our credentials, or its nodes belong to other ones.
    case notAuthorized(String)

    /// A fencing check refused a write: this process does not own the resource (any more).
    public var isFencingRefusal: Bool {
        switch self {
        case .staleEpoch, .notOwner: true
        default: false
        }
    }

    public var code: String {
        switch self {
        case .staleEpoch: "stale_epoch"
        case .notOwner: "not_owner"
        case .unknownCandidate: "unknown_candidate"
        case .invalidConfiguration: "invalid_configuration"
        case .unavailable: "coordination_unavailable"
        case .duplicateCandidate: "duplicate_candidate"
        case .notAuthorized: "coordination_not_authorized"
        }
    }

    public var httpStatus: Int {
        switch self {
        case .staleEpoch: 409
        case .notOwner: 503
        case .unknownCandidate: 404
        case .invalidConfiguration: 400
        case .unavailable: 503
        case .duplicateCandidate: 409
        case .notAuthorized: 503
        }
    }

    public var description: String {
        switch self {
        case .staleEpoch(let resource, let presented, let current) where presented == current:
            "claim of \(resource) refused: epoch \(presented) was claimed already (by another process, from an election other than this one's, or by this process in an earlier attempt)"
        case .staleEpoch(let resource, let presented, let current):
            "write to \(resource) refused: epoch \(presented) is older than epoch \(current) already seen (a newer leader exists)"
        case .notOwner(let resource):
            "write to \(resource) refused: this process does not own it now (it is a standby, or lost the election)"
        case .unknownCandidate(let id):
            "candidate \(id) is not standing (absent, unhealthy or not seen recently), so it cannot lead or be preferred"
        case .invalidConfiguration(let message): message
        case .unavailable(let message): "coordination store unavailable: \(message)"
        case .duplicateCandidate(let id):
            "another process already stands in this election as candidate \(id); give every node its own id"
        case .notAuthorized(let message): "coordination store refused access: \(message)"
        }
    }
}
