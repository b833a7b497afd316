import ArgumentParser
import Coordination
import Foundation
import HawserNode

/// `hawser admin`: operator commands on an election, talking to its coordination store directly.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Inspect an election, set its preferred master, hand leadership over, or compare a notary's replicas.",
        subcommands: [Status.self, Prefer.self, Switchover.self, VerifyCluster.self, ConfigCommand.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the leader, epoch, members and settings as JSON.",
            discussion: """
                `members` lists every member the store knows: its id, role (active, standby, unhealthy), the epoch the active \
                one leads under, whether it is healthy, and the addresses it advertises. A lease backend shows unhealthy members \
                seen within a lease; on ZooKeeper an unhealthy member withdraws and is not listed.

                With --partitions N: the N partition elections of `hawser election run --partitions` (<election>.p0 ...), \
                as {"partitions": [one status per partition, with its "partition" number], "leads": {worker id: [the \
                partitions it leads]}}; with --node-config of a hot-hot node (and not another --election), its partitions.
                """)
        @OptionGroup var store: CoordinationOptions
        @Option(help: "Show the partitions of a partitioned election (1-\(ElectionCommand.Run.maxPartitions)).") var partitions: Int?

        func validate() throws {
            if let partitions, !(1...ElectionCommand.Run.maxPartitions).contains(partitions) {
                throw ValidationError("--partitions must be 1 to \(ElectionCommand.Run.maxPartitions), not \(partitions)")
            }
        }

        /// --partitions, else a hot-hot node's own partitions when its file names the election
        /// (found from outside: its node's election alone showed nothing, as if nothing ran).
        private var partitionsShown: Int? {
            if let partitions { return partitions }
            guard let path = store.nodeConfig, let node = try? NodeConfiguration.load(path), node.ha.mode == .hotHot,
                  node.ha.election?.election == store.election else { return nil }
            return node.ha.partitions ?? HAConfiguration.defaultPartitions
        }

        func run() async throws {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            guard let partitions = partitionsShown else {
                let snapshot = try await AdminCommand.using(store) { try await $0.snapshot() }
                if snapshot.epoch == .zero && snapshot.candidates.isEmpty && snapshot.unhealthy.isEmpty {
                    // Indistinguishable in the output from a misspelt --election: say so.
                    FileHandle.standardError.write(Data("note: nothing has ever stood in election \(store.election) on this store (is --election right?)\n".utf8))
                }
                return print(String(decoding: try encoder.encode(snapshot), as: UTF8.self))
            }
            var statuses: [PartitionStatus] = []
            for partition in 0..<partitions {
                statuses.append(PartitionStatus(partition: partition, election: try await AdminCommand.using(store.partition(partition)) { try await $0.snapshot() }))
            }
            var leads: [String: [Int]] = [:]
            for status in statuses { if let leader = status.election.leader { leads[leader, default: []].append(status.partition) } }
            print(String(decoding: try encoder.encode(PartitionedStatus(partitions: statuses, leads: leads)), as: UTF8.self))
        }

        struct PartitionedStatus: Encodable {
            var partitions: [PartitionStatus]
            var leads: [String: [Int]]
        }

        /// One partition's election status, with its number beside the snapshot's fields.
        struct PartitionStatus: Encodable {
            var partition: Int
            var election: ElectionSnapshot

            func encode(to encoder: any Encoder) throws {
                try election.encode(to: encoder)
                var c = encoder.container(keyedBy: Key.self)
                try c.encode(partition, forKey: .partition)
            }

            enum Key: String, CodingKey { case partition }
        }
    }

    struct Prefer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the preferred master (takes effect without restarts, after the hold-down).",
            discussion: "The node must be standing now (running and healthy); otherwise the command fails with unknown_candidate and changes nothing.")
        @Argument(help: "The candidate id to prefer.") var node: String?
        @Flag(help: "Clear the preferred master instead.") var none = false
        @OptionGroup var store: CoordinationOptions

        func validate() throws {
            guard (node == nil) == none else { throw ValidationError("give a NODE or --none") }
            if let node { try Candidate.validateOption(node) }
        }

        func run() async throws {
            try await AdminCommand.using(store) { try await $0.setPreferred(node) }
            print(node.map { "preferred master: \($0)" } ?? "preferred master cleared")
        }
    }

    struct Switchover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hand leadership to a standing candidate (graceful: the leader stops before the new one starts).",
            discussion: """
                The target must be standing (lease: seen within --renew-ms + --request-timeout-ms), else unknown_candidate and \
                nothing changes. Waits until the target leads; if another candidate leads instead (the target died \
                meanwhile), or nobody within --wait-ms, fails with switchover_incomplete.
                """)
        @Option(help: "The candidate id to hand over to.") var to: String
        @OptionGroup var store: CoordinationOptions
        @Option(help: "Wait this long (ms, 0 to 86,400,000) for the new leader; 0 to return at once.") var waitMs = 10000

        func validate() throws {
            try Candidate.validateOption(to)
            // As every timing (coordination.md): a negative wait returned at once, as 0 does.
            guard (0...86_400_000).contains(waitMs) else { throw ValidationError("--wait-ms must be 0 to 86,400,000 ms (a day), not \(waitMs)") }
        }

        func run() async throws {
            try await AdminCommand.using(store) { try await handOver($0) }
        }

        private func handOver(_ admin: any ElectionAdministration) async throws {
            try await admin.switchover(to: to)
            guard waitMs > 0 else { return print("switchover to \(to) requested") }
            let deadline = ContinuousClock.now + .milliseconds(waitMs)
            while ContinuousClock.now < deadline {
                let snapshot = try await admin.snapshot()
                if snapshot.leader == to { return print("\(to) leads with epoch \(snapshot.epoch)") }
                // The request was dropped (its target went away) and someone else leads: over.
                if let leader = snapshot.leader, snapshot.switchoverTarget == nil { throw incomplete("\(leader) leads with epoch \(snapshot.epoch)") }
                try await Task.sleep(for: .milliseconds(100))
            }
            let snapshot = try await admin.snapshot()
            throw incomplete(snapshot.leader.map { "\($0) leads with epoch \(snapshot.epoch)" } ?? "nobody leads yet")
        }

        private func incomplete(_ state: String) -> CLIError {
            CLIError("switchover_incomplete: \(to) did not take over and \(state) (is \(to) running and healthy? see hawser admin status)")
        }
    }

    /// Runs `body` with the store's administration and closes it, also on errors.
    static func using<T>(_ store: CoordinationOptions, _ body: (any ElectionAdministration) async throws -> T) async throws -> T {
        let admin = try store.makeAdministration()
        do {
            let result = try await perform { try await body(admin) }
            await admin.close()
            return result
        } catch {
            await admin.close()
            throw error
        }
    }

    /// Runs one store operation, turning its failure into a clear one-line error.
    static func perform<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CoordinationError {
            throw CLIError("\(error.code): \(error)")
        }
    }
}
