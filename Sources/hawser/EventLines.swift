import Coordination
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

// The event lines of `hawser election run` and `hawser watchdog`, one JSON object per line on
// standard output, which tests and operators read.

/// Prints one event as a JSON line on standard output, with "t": CLOCK_MONOTONIC in nanoseconds
/// (comparable across processes on one machine).
@Sendable func emitEvent(_ fields: [String: any Sendable]) {
    var fields = fields
    fields["t"] = Moment.now().nanoseconds
    let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

/// The event line for a new election status (nil when it says nothing new): leader, follower
/// (when the leader seen changed), not-standing. `hawser election run` and `hawser watchdog` print it.
func roleEvent(id: String, _ status: ElectionStatus, after last: ElectionStatus?) -> [String: any Sendable]? {
    switch status.role {
    case .leader(let epoch):
        return ["event": "leader", "id": id, "epoch": epoch.value]
    case .follower:
        guard last?.role != .follower || last?.leader != status.leader else { return nil }
        return ["event": "follower", "id": id, "leader": status.leader ?? NSNull()]
    case .notStanding:
        return ["event": "not-standing", "id": id]
    }
}

/// Runs a standing candidate's service until SIGTERM or SIGINT, between its `started` and
/// `stopped` lines; an election that gives up prints `failed` with its code and fails the command.
func runUntilSignalled(_ service: some Service, id: String, logger: Logger) async throws {
    emitEvent(["event": "started", "id": id, "pid": Int(getpid())])
    let group = ServiceGroup(configuration: .init(services: [.init(service: service)],
                                                  gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
    } catch let error as CoordinationError {
        emitEvent(["event": "failed", "id": id, "code": error.code, "error": error.description])
        throw CLIError(error)
    }
    emitEvent(["event": "stopped", "id": id])
}

/// Runs a node's or notary's services; an election that gives up (`duplicate_candidate`) fails
/// the command with its code before its sentence, as `hawser election run` says it.
func runNamingElectionCodes(_ app: some ApplicationProtocol) async throws {
    try await runNamingElectionCodes([app], logger: app.logger)
}

/// Runs `services` (a worker's roles) as one group until SIGTERM or SIGINT, which stops each
/// gracefully; one that ends or fails stops the others gracefully too (`GracefulApplication`
/// says why). Errors as above.
func runNamingElectionCodes(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(services: services.map { .stoppingGroupGracefully($0) },
                                                  gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    do {
        try await group.run()
    } catch let error as CoordinationError {
        throw CLIError(error)
    }
}

extension CLIError {
    /// A coordination error as the command line says it: its code, then its sentence.
    init(_ error: CoordinationError) { self.init("\(error.code): \(error)") }
}

/// Runs a process's set-up (it may wait for its database for as long as that is down) so that
/// SIGTERM or SIGINT stops it as they stop the running process: nil then, and the command exits 0.
/// The service group that runs the process traps the signals from then on.
func stoppableBySignals<T: Sendable>(_ setUp: @escaping @Sendable () async throws -> T) async throws -> T? {
    let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
    let work = Task { try await setUp() }
    let watcher = Task {
        for await _ in signals {
            work.cancel()
            return
        }
    }
    defer { watcher.cancel() }
    do {
        return try await work.value
    } catch is CancellationError where work.isCancelled {
        return nil
    }
}
