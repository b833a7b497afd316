import Coordination
import Logging
import Synchronization

/// Log lines a test can read: level and text with metadata.
final class LogLines: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var text: String
    }
    private let lines = Mutex<[Line]>([])
    var messages: [Line] { lines.withLock { $0 } }
    func append(_ line: Line) { lines.withLock { $0.append(line) } }
}

/// A log handler that keeps every line in `LogLines`.
struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.append(.init(level: event.level, text: "\(event.message) \(fields)"))
    }
}

extension Logger {
    init(label: String, capturingInto lines: LogLines) {
        self.init(label: label) { _ in CapturingLogHandler(lines: lines) }
    }
}

/// Counts the calls that reach a lease backend (each `prepare` and each transaction).
final class CountingBackend: LeaseBackend {
    let backend: any LeaseBackend
    private let count = Mutex(0)
    init(_ backend: any LeaseBackend) { self.backend = backend }
    var attempts: Int { count.withLock { $0 } }

    func prepare() async throws {
        count.withLock { $0 += 1 }
        try await backend.prepare()
    }

    func close() async { await backend.close() }

    func transaction<T: Sendable>(election: String, _ body: @escaping @Sendable (LeaseState) throws -> (LeaseWrites, T)) async throws -> T {
        count.withLock { $0 += 1 }
        return try await backend.transaction(election: election, body)
    }
}
