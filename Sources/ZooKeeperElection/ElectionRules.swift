import Coordination
import Foundation

/// How the election is laid out in ZooKeeper, as pure functions (no I/O): candidate nodes, their
/// order, and the epoch record. The decisions themselves are `ElectionCore`'s.
///
/// Candidate nodes are ephemeral-sequential children named `c-<id>-<sequence>`; the lowest
/// sequence leads. Each other candidate watches only the node just before its own, so a change
/// wakes one candidate, not all of them.
public enum ElectionRules {
    /// A candidate node's name split into its parts.
    public struct Node: Sendable, Hashable {
        public var name: String
        public var id: String
        public var sequence: Int64
        public init(name: String, id: String, sequence: Int64) {
            self.name = name
            self.id = id
            self.sequence = sequence
        }
    }

    public static func nodePrefix(for id: String) -> String { "c-\(id)-" }

    /// Parses `c-<id>-<10 digits>`; nil for anything else (ignored).
    public static func parse(_ name: String) -> Node? {
        guard name.hasPrefix("c-"), name.count > 13 else { return nil }
        let digits = name.suffix(10)
        guard let sequence = Int64(digits), name.dropLast(10).hasSuffix("-") else { return nil }
        let id = String(name.dropFirst(2).dropLast(11))
        guard !id.isEmpty else { return nil }
        return Node(name: name, id: id, sequence: sequence)
    }

    /// The candidate nodes in the order they would lead.
    public static func queue(_ children: [String]) -> [Node] {
        children.compactMap(parse).sorted { $0.sequence < $1.sequence }
    }

    /// The node just before `mine` in the queue (the one to watch), if any.
    public static func predecessor(of mine: String, in queue: [Node]) -> Node? {
        guard let index = queue.firstIndex(where: { $0.name == mine }), index > 0 else { return nil }
        return queue[index - 1]
    }

    /// Who leads by the store: the epoch record's leader while its node is first.
    public static func leader(queue: [Node], record: EpochRecord?) -> String? {
        guard let record, let first = queue.first, first.name == record.node else { return nil }
        return record.leader
    }
}

/// The content of the epoch node: to whom, for which candidate node, the last epoch was handed.
///
/// The epoch itself is not in the content but is the node's `mzxid`, the id of the ZooKeeper
/// transaction that last wrote it: ZooKeeper's transaction ids only grow, so the epoch strictly
/// increases with every claim even if someone rewrote or deleted and re-created the node.
public struct EpochRecord: Sendable, Hashable, Codable {
    public var leader: String
    public var node: String
    public init(leader: String, node: String) {
        self.leader = leader
        self.node = node
    }

    public static func decode(_ bytes: [UInt8]) -> EpochRecord? {
        bytes.isEmpty ? nil : try? JSONDecoder().decode(EpochRecord.self, from: Data(bytes))
    }

    /// JSON with its keys in order: the same bytes in every process (a dictionary's order
    /// changes with each process's hash seed, and the simulation's digests with it).
    public var bytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// The epoch a record written by the transaction `mzxid` stands for.
    public static func epoch(mzxid: Int64) -> Epoch { Epoch(UInt64(max(mzxid, 0))) }
}
