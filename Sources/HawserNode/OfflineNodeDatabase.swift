import Foundation
import Logging

extension NodeDatabase {
    /// Runs `body` on the database of a stopped node (`hawser flow offline`, `hawser node
    /// repartition`), unfenced: it takes the data directory's lock first, so it is refused while a
    /// node on this machine holds it; a node on PostgreSQL that runs on another machine must be
    /// stopped by the operator (or found running by the caller).
    static func offline<T: Sendable>(_ configuration: NodeConfiguration, baseDirectory: String, logger: Logger,
                                     _ body: @escaping @Sendable (NodeDatabase) async throws -> T) async throws -> T {
        try await using(configuration, baseDirectory: baseDirectory, locking: true, logger: logger, body)
    }

    /// Runs `body` on the database of a node that may be running (`hawser node status`, `hawser
    /// admin config`): no lock is taken, so `body` reads, or writes only what running processes
    /// share (the run-time settings).
    static func reading<T: Sendable>(_ configuration: NodeConfiguration, baseDirectory: String, logger: Logger,
                                     _ body: @escaping @Sendable (NodeDatabase) async throws -> T) async throws -> T {
        try await using(configuration, baseDirectory: baseDirectory, locking: false, logger: logger, body)
    }

    private static func using<T: Sendable>(_ configuration: NodeConfiguration, baseDirectory: String, locking: Bool, logger: Logger,
                                           _ body: @escaping @Sendable (NodeDatabase) async throws -> T) async throws -> T {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).path
        }
        let data = resolve(configuration.dataDirectory)
        if configuration.database.kind == .sqlite, !FileManager.default.fileExists(atPath: data + "/node.sqlite") {
            throw ConfigurationError(["\(data)/node.sqlite does not exist: the node has never run with this configuration"])
        }
        let lock = locking ? try DataDirectoryLock(directory: data) : nil
        defer { lock?.release() }
        let database = try await NodeDatabase.open(configuration.database, data: data, fence: nil, resolve: resolve, logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            for service in database.services { group.addTask { try await service.run(); return nil } }
            group.addTask { try await body(database) }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }
}
