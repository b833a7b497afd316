import Logging
import Synchronization

/// The level the process logs at, changed at run time (`log.level`): `ProcessLogHandler` reads it
/// at every message, so every logger of the process follows it.
public final class ProcessLogLevel: Sendable {
    public static let shared = ProcessLogLevel()
    private let state = Mutex<(startUp: Logger.Level, set: Logger.Level?)>((.info, nil))

    /// The level at start-up (`--log-level`), used while no run-time value is set.
    public func start(at level: Logger.Level) { state.withLock { $0.startUp = level } }
    /// The run-time value (nil: back to the start-up level).
    func set(_ level: Logger.Level?) { state.withLock { $0.set = level } }
    public var current: Logger.Level { state.withLock { $0.set ?? $0.startUp } }
}

/// A log handler at the process's level (`ProcessLogLevel`), unless a logger pins its own.
public struct ProcessLogHandler: LogHandler {
    private var inner: StreamLogHandler
    private var pinned: Logger.Level?

    public init(_ inner: StreamLogHandler) { self.inner = inner }

    public var logLevel: Logger.Level {
        get { pinned ?? ProcessLogLevel.shared.current }
        set { pinned = newValue }
    }
    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }
    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) { inner.log(event: event) }
}
