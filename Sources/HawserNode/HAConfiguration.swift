import Coordination
import Flows
import Foundation
import HawserClient

/// The `ha` section of node.json (docs/node.md, "High availability") and of the notary's
/// configuration (docs/configuration.md): how this process shares its work with others. `single`
/// (the default) is one process with nothing shared; `hot-warm` runs warm beside a standby and
/// stands in the election itself; `hot-cold` is started by a `hawser watchdog`
/// that stood in the election for it and passes the epoch it won in `HAWSER_FENCE_EPOCH`;
/// `hot-hot` (nodes only) stands in one election per partition of the flows and runs the flows of
/// the partitions it wins, beside other processes that run the rest.
public struct HAConfiguration: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        case single
        case hotWarm = "hot-warm"
        case hotCold = "hot-cold"
        case hotHot = "hot-hot"

        /// Whether the process stands in the election itself (`ha.id`, `ha.advertise`, `ha.election`).
        public var stands: Bool { self == .hotWarm || self == .hotHot }
    }

    /// What a hot-hot process does (docs/node.md, "Roles"): `flow` stands in the partitions'
    /// elections and runs the flows of those it wins; `rpc` takes clients' starts and reads; `p2p`
    /// takes peers' messages (`network.listen`), which start responders. A process without `flow`
    /// queues its starts and responders for the partitions' owners.
    public enum Role: String, Codable, Sendable, CaseIterable {
        case rpc, flow, p2p
    }

    public var mode = Mode.single
    /// This process's candidate id in the election (hot-warm), unique among its candidates.
    public var id: String?
    /// The API base URLs clients reach this process at; a standby names the active's first one.
    public var advertise: [String] = []
    /// The election's back end and timing (hot-warm), named as `hawser election run`'s options.
    public var election: ElectionSettings?
    /// How many partitions a hot-hot node's flows are split over (`FlowPartitions`); the same in
    /// every process of the node.
    public var partitions: Int?
    /// Hot-hot: the NATS bus its processes tell each other on (optional: without it they poll).
    public var bus: BusSettings?
    /// Hot-hot: this process's roles; nil means all of them.
    public var roles: Set<Role>?
    /// Hot-hot: how often a process serving partitions reads the queue of starts RPC workers left
    /// (at once, besides, when the bus says one was queued).
    public var startQueuePollMillis = 250

    /// The roles this process has: all of them unless `ha.roles` (hot-hot) chose.
    public var effectiveRoles: Set<Role> { roles ?? Set(Role.allCases) }

    /// Partitions of a hot-hot node when `ha.partitions` is not given, and the most it may have.
    public static let defaultPartitions = 16
    public static let maxPartitions = 256

    /// The environment variable a watchdog passes the won epoch in (hot-cold).
    public static let fenceEpochVariable = "HAWSER_FENCE_EPOCH"
    /// The one shard of a node or notary today; hot-hot will own several.
    public static let shard = "0"
    /// The fencing resource of a node's shard, as the node database's fencing table names it.
    public static func resource(shard: String) -> String { "node/\(shard)" }
    /// The fencing resource of partition `k` of a hot-hot node's flows.
    public static func resource(partition k: Int) -> String { "node/p\(k)" }
    /// The fencing resource of a notary's shard, in the notary database's fencing table.
    public static func notaryResource(shard: String) -> String { "notary/\(shard)" }

    enum CodingKeys: String, CodingKey, CaseIterable { case mode, id, advertise, election, partitions, bus, roles, startQueuePollMillis }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .mode) {
            guard let parsed = Mode(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .mode, in: c,
                                                       debugDescription: "ha.mode must be \"single\", \"hot-warm\", \"hot-cold\" or \"hot-hot\", not \"\(text)\"")
            }
            mode = parsed
        }
        id = try c.decodeIfPresent(String.self, forKey: .id)
        advertise = try c.decodeIfPresent([String].self, forKey: .advertise) ?? []
        election = try c.decodeIfPresent(ElectionSettings.self, forKey: .election)
        partitions = try c.decodeIfPresent(Int.self, forKey: .partitions)
        bus = try c.decodeIfPresent(BusSettings.self, forKey: .bus)
        startQueuePollMillis = try c.decodeIfPresent(Int.self, forKey: .startQueuePollMillis) ?? startQueuePollMillis
        if let names = try c.decodeIfPresent([String].self, forKey: .roles) {
            roles = try Set(names.map { name in
                if let role = Role(rawValue: name) { return role }
                throw DecodingError.dataCorruptedError(forKey: .roles, in: c, debugDescription:
                    "ha.roles names \"\(name)\"; the roles are \(Role.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            })
            if roles?.count != names.count {
                throw DecodingError.dataCorruptedError(forKey: .roles, in: c, debugDescription: "ha.roles names a role twice")
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        try c.encodeIfPresent(id, forKey: .id)
        if !advertise.isEmpty { try c.encode(advertise, forKey: .advertise) }
        try c.encodeIfPresent(election, forKey: .election)
        try c.encodeIfPresent(partitions, forKey: .partitions)
        try c.encodeIfPresent(bus, forKey: .bus)
        try c.encodeIfPresent(roles.map { $0.map(\.rawValue).sorted() }, forKey: .roles)
        if startQueuePollMillis != Self().startQueuePollMillis { try c.encode(startQueuePollMillis, forKey: .startQueuePollMillis) }
    }

    /// The partitions of a hot-hot node's flows (nil in every other mode).
    var flowPartitions: FlowPartitions? {
        mode == .hotHot ? FlowPartitions(count: partitions ?? Self.defaultPartitions) : nil
    }

    /// Every invalid value, one sentence each, for the process of `role` ("node" or "notary");
    /// `baseDirectory`: where relative file names point (nil: the current directory). What else
    /// hot-warm needs of a role (a node's remote notary, a notary's PostgreSQL) its configuration
    /// checks.
    func problems(role: String, baseDirectory: String?) -> [String] {
        var out = [String]()
        for (i, url) in advertise.enumerated() where (try? NotaryClient.baseURL(url)) == nil {
            out.append("ha.advertise[\(i)] \"\(url)\" must be an http:// or https:// base URL")
        }
        if let id, (try? Candidate.validate(id: id)) == nil {
            out.append("ha.id \"\(id)\" must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
        }
        if let partitions, mode != .hotHot {
            // A notary is never hot-hot: sending it there would only earn the next refusal.
            out.append(role == "node" ? "ha.partitions (\(partitions)) is for ha.mode hot-hot: remove it, or set ha.mode hot-hot"
                                      : "ha.partitions (\(partitions)) is for a hot-hot node's flows: remove it")
        }
        if let bus {
            if mode == .hotHot {
                out += bus.problems()
                // Without a subject of its own it is made of the election's name, which may hold
                // what a subject may not (".." or a dot at an end).
                if bus.subject == nil, let election, !BusSettings.isSubject(bus.eventsSubject(election: election.election)) {
                    out.append("ha.bus.subject: the default, hawser.<ha.election.election>.events, is no NATS subject with the election \"\(election.election)\": set ha.bus.subject")
                }
            } else {
                out.append(role == "node" ? "ha.bus is for ha.mode hot-hot: remove it, or set ha.mode hot-hot" : "ha.bus is for a hot-hot node: remove it")
            }
        }
        if !(10...60_000).contains(startQueuePollMillis) {
            out.append("ha.startQueuePollMillis must be 10 to 60000, not \(startQueuePollMillis)")
        } else if startQueuePollMillis != Self().startQueuePollMillis, mode != .hotHot {
            out.append(role == "node" ? "ha.startQueuePollMillis is for ha.mode hot-hot: remove it, or set ha.mode hot-hot"
                                      : "ha.startQueuePollMillis is for a hot-hot node: remove it")
        }
        if let roles {
            if mode != .hotHot {
                out.append(role == "node" ? "ha.roles is for ha.mode hot-hot: remove it, or set ha.mode hot-hot" : "ha.roles is for a hot-hot node: remove it")
            } else if roles.isEmpty {
                out.append("ha.roles must name at least one role: rpc, flow or p2p")
            }
        }
        switch mode {
        case .single:
            if id != nil || !advertise.isEmpty || election != nil {
                out.append("ha.id, ha.advertise and ha.election have no use with ha.mode single: set ha.mode hot-warm, or remove them")
            }
        case .hotWarm, .hotHot:
            let mode = mode.rawValue
            if id == nil { out.append("ha.mode \(mode) needs ha.id, this \(role)'s candidate id in the election") }
            if advertise.isEmpty { out.append("ha.mode \(mode) needs ha.advertise, the API base URLs clients reach this \(role) at") }
            if var election {
                // A hot-hot node's elections are named `<election>.p<k>` and `<election>.outbox`: the
                // longest must be valid too (`.outbox` is longer than `.p255`).
                if self.mode == .hotHot { election = election.outbox }
                out += election.resolved(against: baseDirectory ?? FileManager.default.currentDirectoryPath).problems(prefix: "ha.election.")
            } else {
                out.append("ha.mode \(mode) needs ha.election, the election's back end (zookeeper, postgres or sqlite) and timing")
            }
            if self.mode == .hotHot, let partitions, !(1...Self.maxPartitions).contains(partitions) {
                out.append("ha.partitions must be 1 to \(Self.maxPartitions), not \(partitions)")
            }
        case .hotCold:
            if election != nil {
                out.append("ha.election is for hot-warm: in hot-cold the watchdog stands in the election (hawser watchdog takes its options)")
            }
            if id != nil || !advertise.isEmpty {
                out.append("ha.id and ha.advertise are for hot-warm: in hot-cold the watchdog's --id and --advertise are used")
            }
        }
        return out
    }
}
