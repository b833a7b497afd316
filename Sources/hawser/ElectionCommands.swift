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
                waits the interval, then writes with that epoch, as real work does; a write whose epoch is stale is \
                refused by the fencing check and reported.
                """)

        @Option(help: "This candidate's id.") var id: String
        @Option(name: .customLong("address"), help: "An address this candidate serves on (repeatable).") var addresses: [String] = []
        @OptionGroup var store: CoordinationOptions
        @Option(help: "Unhealthy while this file exists (drain a node by touching it).") var unhealthyIfExists: String?
        @Option(help: "SQLite file for fenced writes while leading.") var fencedWrites: String?
        @Option(help: "Interval between fenced writes (ms).") var writeIntervalMs = 100
        @Option(help: "Log level for stderr.") var logLevel: Logger.Level = .warning

        func validate() throws {
            try Candidate.validate(id: id)
            guard writeIntervalMs >= 1 else { throw ValidationError("--write-interval-ms must be at least 1") }
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
            let election = try PauseInRoundBackend.election(store, candidate: Candidate(id: id, addresses: addresses),
                                                            health: HealthChecks(checks), logger: logger)
            let writer: FencedWriter? = try fencedWrites.map { try FencedWriter(path: $0, id: id) }
            try await writer?.prepare()
            let service = CandidateService(election: election, writer: writer, interval: .milliseconds(writeIntervalMs), emit: emitEvent)
            try await runUntilSignalled(service, id: id, logger: logger)
        }
    }
}

/// Runs the election and, while leading, the fenced writes; reports every role change.
private struct CandidateService: Service {
    let election: any Election
    let writer: FencedWriter?
    let interval: Duration
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

    /// The first write of an epoch goes at once (so the store learns the new epoch); later ones
    /// take the epoch, wait, then write, as work that decides first and commits later does.
    private func write(_ writer: FencedWriter) async {
        var registered: Epoch?
        while !Task.isCancelled {
            guard let epoch = election.status.role.epoch else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            if registered == epoch { try? await Task.sleep(for: interval) }
            registered = epoch
            do {
                try await writer.write(epoch: epoch)
                emit(["event": "write", "id": election.candidate.id, "epoch": epoch.value, "accepted": true])
            } catch let error as CoordinationError {
                emit(["event": "write", "id": election.candidate.id, "epoch": epoch.value, "accepted": false, "error": error.code])
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

    init(path: String, id: String) throws {
        store = try SQLiteLeaseBackend(path: path, busyTimeout: .seconds(2))
        self.id = id
    }

    func prepare() async throws {
        try await store.prepare()
        try await store.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS writes (seq INTEGER PRIMARY KEY, writer TEXT NOT NULL, epoch INTEGER NOT NULL, t INTEGER NOT NULL)")
        }
    }

    func write(epoch: Epoch) async throws {
        let id = self.id
        try await store.fencedWrite(resource: "ledger", epoch: epoch) { db in
            try db.execute(sql: "INSERT INTO writes (writer, epoch, t) VALUES (?, ?, ?)",
                           arguments: [id, Int64(epoch.value), Moment.now().nanoseconds])
        }
    }
}
