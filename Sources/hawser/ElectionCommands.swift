import ArgumentParser
import Coordination
import Embedded
import Foundation
import GRDB
import Logging
import ServiceLifecycle

/// `hawser election run`: one candidate process, for operators to try an election and for the
/// fault tests and the failover benchmark. It prints one JSON line per event on stdout and, while
/// leading, makes fenced writes to a SQLite file.
struct ElectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "election", abstract: "Run a candidate of a master election.", subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stand for election until SIGTERM or SIGINT, printing JSON lines on role changes.",
            discussion: """
                Events: started, leader (epoch), follower (leader), not-standing, write (epoch, accepted, error), \
                stopped, failed (code, error: the election gave up, for example duplicate_candidate, and the process \
                exits non-zero). Each carries "t", CLOCK_MONOTONIC in nanoseconds (comparable across processes on one \
                machine). With --fenced-writes, the leader writes a row every --write-interval-ms: it takes its epoch, \
                waits the interval, then writes with that epoch if it still leads with it, as real work does; a write \
                whose epoch is stale (with --unchecked-writes, a test option, it does not ask) is refused by the \
                fencing check and reported.

                With --partitions N, the candidate stands in N elections, <election>.p0 to <election>.p<N-1>, one \
                per partition, each with its own epoch (and, with --fenced-writes, its own fenced resource, \
                ledger.p<k>); every event names its partition. While it leads partition 0 it balances the \
                partitions over the candidates standing in all of them, by setting each partition's preferred \
                master (a balanced event lists what it moved); a leader hands over once its partition's preferred \
                master has stood for --hold-down-ms.
                """)

        @Option(help: "This candidate's id.") var id: String
        @Option(name: .customLong("address"), help: "An address this candidate serves on (repeatable).") var addresses: [String] = []
        @OptionGroup var store: CoordinationOptions
        @Option(help: "Unhealthy while this file exists (drain a node by touching it).") var unhealthyIfExists: String?
        @Option(help: "SQLite file for fenced writes while leading.") var fencedWrites: String?
        @Option(help: "Interval between fenced writes (ms).") var writeIntervalMs = 100
        @Flag(help: "A test option: write without first asking whether this candidate still leads, so that the fence alone refuses a stale write.")
        var uncheckedWrites = false
        @Option(help: "Stand in this many partition elections (1-\(Self.maxPartitions)) and balance them.") var partitions: Int?
        @Option(help: "Log level for stderr.") var logLevel: Logger.Level = .warning

        static let maxPartitions = 256

        func validate() throws {
            try Candidate.validateOption(id)
            guard writeIntervalMs >= 1 else { throw ValidationError("--write-interval-ms must be at least 1") }
            if let partitions {
                guard (1...Self.maxPartitions).contains(partitions) else {
                    throw ValidationError("--partitions must be 1 to \(Self.maxPartitions), not \(partitions)")
                }
                let problems = store.partition(partitions - 1).settings.problems(naming: CoordinationOptions.option)
                if !problems.isEmpty { throw ValidationError("with --partitions: " + problems.joined(separator: "; ")) }
            }
        }

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
            let logger = Logger(label: "hawser.election")
            var checks: [any HealthCheck] = []
            if let path = unhealthyIfExists { checks.append(FileAbsentHealthCheck(path: path)) }
            let candidate = Candidate(id: id, addresses: addresses)
            let health = HealthChecks(checks)
            guard let partitions else {
                let election = try PauseInRoundBackend.election(store, candidate: candidate, health: health, logger: logger)
                let writer: FencedWriter? = try fencedWrites.map { try FencedWriter(path: $0, id: id, resource: "ledger") }
                try await writer?.prepare()
                let service = CandidateService(election: election, writer: writer, interval: .milliseconds(writeIntervalMs), checked: !uncheckedWrites,
                                               emit: emitEvent)
                return try await runUntilSignalled(service, id: id, logger: logger)
            }
            if !(ProcessInfo.processInfo.environment[PauseInRoundBackend.variable] ?? "").isEmpty {
                throw CLIError("\(PauseInRoundBackend.variable) works without --partitions only")
            }
            var services: [CandidateService] = []
            let shared = try store.settings.partitionConnections()
            for partition in 0..<partitions {
                let election = try store.partition(partition).makeElection(candidate: candidate, health: health, logger: logger, sharing: shared)
                let writer: FencedWriter? = try fencedWrites.map { try FencedWriter(path: $0, id: id, resource: "ledger.p\(partition)") }
                try await writer?.prepare()
                services.append(CandidateService(election: election, writer: writer, interval: .milliseconds(writeIntervalMs),
                                                 checked: !uncheckedWrites) { fields in
                    var fields = fields
                    fields["partition"] = partition
                    emitEvent(fields)
                })
            }
            let balancer = PartitionBalancer(partitions: try (0..<partitions).map { try store.partition($0).makeAdministration(sharing: shared) })
            let service = PartitionedCandidate(partitions: services, balancer: balancer, interval: .milliseconds(store.settings.roundMs), logger: logger)
            do {
                try await runUntilSignalled(service, id: id, logger: logger)
            } catch {
                await shared.close()
                throw error
            }
            await shared.close()
        }
    }
}

/// A candidate in every partition's election; while it leads partition 0, it also balances them.
private struct PartitionedCandidate: Service {
    let partitions: [CandidateService]
    let balancer: PartitionBalancer
    let interval: Duration
    let logger: Logger

    func run() async throws {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for partition in partitions { group.addTask { try await partition.run() } }
                group.addTask { await balance() }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch {
            await closeBalancer()
            throw error
        }
        await closeBalancer()
    }

    private func closeBalancer() async {
        for administration in balancer.partitions { await administration.close() }
    }

    private func balance() async {
        let first = partitions[0].election
        await balancer.run(every: interval, isLeading: { first.status.role.epoch != nil }, logger: logger) { moved in
            emitEvent(["event": "balanced", "id": first.candidate.id,
                       "moved": Dictionary(uniqueKeysWithValues: moved.map { ("\($0.key)", $0.value) })])
        }
    }
}

/// Runs the election and, while leading, the fenced writes; reports every role change.
private struct CandidateService: Service {
    let election: any Election
    let writer: FencedWriter?
    let interval: Duration
    /// Whether a write first asks if this candidate still leads (`--unchecked-writes` clears it).
    let checked: Bool
    let emit: @Sendable ([String: any Sendable]) -> Void

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await election.run() }
                group.addTask { await report() }
                if let writer { group.addTask { await write(writer) } }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
    }

    private func report() async {
        var last: ElectionStatus?
        for await status in election.statuses() where status != last {
            if let event = roleEvent(id: election.candidate.id, status, after: last) { emit(event) }
            last = status
        }
    }

    /// The first write of an epoch goes at once and claims it (so the store learns the new epoch,
    /// and refuses it if another writer claimed it already: then nothing is written under it);
    /// later ones take the epoch, wait, then write, as work that decides first and commits later
    /// does. A write goes only while this candidate still leads with its epoch by the clock
    /// (`leadsNow`): it wrote once more after a switchover or a pause had ended its leadership
    /// (found from outside). The fence still refuses one whose writer was paused between that
    /// check and its commit, and every stale write of `--unchecked-writes`, which the fault tests
    /// use to try the fence.
    private func write(_ writer: FencedWriter) async {
        var registered: Epoch?, claimed: Epoch?
        func leads(_ epoch: Epoch) -> Bool { !checked || (election.status.role.epoch == epoch && election.leadsNow()) }
        while !Task.isCancelled {
            guard let epoch = election.status.role.epoch, leads(epoch) else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            if registered == epoch {
                try? await Task.sleep(for: interval)
                guard leads(epoch) else { continue }
            }
            registered = epoch
            do {
                try await writer.write(epoch: epoch, claiming: claimed != epoch)
                claimed = epoch
                emit(["event": "write", "id": election.candidate.id, "epoch": epoch.value, "accepted": true])
            } catch let error as CoordinationError {
                emit(["event": "write", "id": election.candidate.id, "epoch": epoch.value, "accepted": false, "error": error.code])
            } catch is CancellationError {
                break  // stopping: not a refusal (the file says whether it committed)
            } catch {
                emit(["event": "write", "id": election.candidate.id, "epoch": epoch.value, "accepted": false, "error": "\(error)"])
            }
        }
    }
}

/// A SQLite file of fenced writes: a row per accepted write, in commit order.
struct FencedWriter: Sendable {
    let store: SQLiteLeaseBackend
    let id: String
    /// The fenced resource, and what each row names as its own.
    let resource: String

    init(path: String, id: String, resource: String) throws {
        store = try SQLiteLeaseBackend(path: path, busyTimeout: .seconds(2))
        self.id = id
        self.resource = resource
    }

    func prepare() async throws {
        try await store.prepare()
        try await store.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS writes (seq INTEGER PRIMARY KEY, writer TEXT NOT NULL, epoch INTEGER NOT NULL,
                    t INTEGER NOT NULL, resource TEXT NOT NULL)
                """)
        }
    }

    func write(epoch: Epoch, claiming: Bool) async throws {
        let (id, resource) = (self.id, self.resource)
        try await store.fencedWrite(resource: resource, epoch: epoch, claiming: claiming) { db in
            try db.execute(sql: "INSERT INTO writes (writer, epoch, t, resource) VALUES (?, ?, ?, ?)",
                           arguments: [id, Int64(epoch.value), Moment.now().nanoseconds, resource])
        }
    }
}
