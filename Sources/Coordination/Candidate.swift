/// One node that may lead: a stable id and the addresses it serves on (shown to operators and
/// to whoever needs to find the leader).
public struct Candidate: Sendable, Hashable, Codable {
    public var id: String
    public var addresses: [String]

    public init(id: String, addresses: [String] = []) {
        self.id = id
        self.addresses = addresses
    }

    /// Ids are short, printable and safe in paths, SQL text and JSON: 1-64 of `A-Z a-z 0-9 . _ -`.
    public static func validate(id: String) throws(CoordinationError) {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        guard !id.isEmpty, id.utf8.count <= 64, allowed else {
            throw .invalidConfiguration("candidate id \"\(id)\" must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
        }
    }
}

/// The fencing epoch: strictly increases with every change of leader. The leader hands it to every
/// write on shared state; a store refuses a write carrying an epoch lower than the highest it saw.
public struct Epoch: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public static func < (a: Epoch, b: Epoch) -> Bool { a.value < b.value }
    public var description: String { String(value) }
    public var next: Epoch { Epoch(value + 1) }
    public static let zero = Epoch(0)

    public init(from decoder: any Decoder) throws { value = try decoder.singleValueContainer().decode(UInt64.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// What this candidate is doing in the election.
public enum Role: Sendable, Hashable {
    /// Not taking part: starting, unhealthy, standing aside after a resignation, or stopped.
    case notStanding
    /// Standing, and someone else leads (or nobody does yet).
    case follower
    /// Leading with this epoch: the only role that may write to shared state.
    case leader(Epoch)

    public var epoch: Epoch? {
        if case .leader(let epoch) = self { return epoch }
        return nil
    }
}

/// The role of this candidate and who it believes leads.
public struct ElectionStatus: Sendable, Hashable {
    public var role: Role
    /// The leader's id as last seen (this candidate's own id when it leads); nil if unknown.
    public var leader: String?
    public init(role: Role, leader: String?) {
        self.role = role
        self.leader = leader
    }
    public static let initial = ElectionStatus(role: .notStanding, leader: nil)
}
