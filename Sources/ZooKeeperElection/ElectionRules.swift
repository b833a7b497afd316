import Coordination
import Foundation

/// The election's decisions on ZooKeeper, as pure functions (no I/O): who leads among the
/// candidate nodes, whom a candidate watches, and the next epoch.
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

    public enum Decision: Sendable, Hashable {
        /// Our node is first: lead.
        case lead
        /// Our node is first but leadership is to move to this standing candidate: go to the back.
        case deferTo(String)
        /// Wait until this node (the one just before ours) goes.
        case watch(String)
        /// Our node is not among the children (session trouble): create it again.
        case missing
    }

    /// - Parameter target: the switchover target, if one is set.
    public static func decide(children: [String], mine: String, target: String?) -> Decision {
        let queue = queue(children)
        guard let index = queue.firstIndex(where: { $0.name == mine }) else { return .missing }
        if index > 0 { return .watch(queue[index - 1].name) }
        let me = queue[index].id
        if let target, target != me, queue.contains(where: { $0.id == target }) { return .deferTo(target) }
        return .lead
    }

    /// Who leads or is about to: the first candidate (the target if a switchover to a standing one is pending).
    public static func expectedLeader(children: [String], target: String?) -> String? {
        let queue = queue(children)
        if let target, queue.contains(where: { $0.id == target }) { return target }
        return queue.first?.id
    }
}

/// The content of the epoch node: the last epoch handed out, to whom, for which candidate node.
public struct EpochRecord: Sendable, Hashable, Codable {
    public var epoch: Epoch
    public var leader: String
    public var node: String
    public init(epoch: Epoch, leader: String, node: String) {
        self.epoch = epoch
        self.leader = leader
        self.node = node
    }

    public static func decode(_ bytes: [UInt8]) -> EpochRecord? {
        bytes.isEmpty ? nil : try? JSONDecoder().decode(EpochRecord.self, from: Data(bytes))
    }

    public var bytes: [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }

    /// The epoch a candidate with node `node` should lead with: the same one when this record is
    /// already its own (it is back from a connection loss that kept its session, so nobody else
    /// can have led meanwhile), else the next one.
    public static func claim(after record: EpochRecord?, node: String) -> (epoch: Epoch, isNew: Bool) {
        guard let record else { return (Epoch(1), true) }
        if record.node == node { return (record.epoch, false) }
        return (record.epoch.next, true)
    }
}
