import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A ZooKeeper client: one session on an ensemble, kept alive across connection losses and
/// moved to another server when the one it uses fails.
///
/// Create it with `connect(configuration:)`, which returns once the session exists, and end it
/// with `close()` (or use `withZooKeeperClient`). All methods are safe to call from any task.
/// The client starts no tasks: its connection, timers and state machine run on one NIO event loop.
public final class ZooKeeperClient: Sendable {
    let driver: ClientDriver

    private init(driver: ClientDriver) {
        self.driver = driver
    }

    /// A client dropped without `close()` still closes its session (without waiting for it).
    deinit {
        driver.closeAbandoned()
    }

    /// Connects to the ensemble and establishes a session (or resumes `configuration.session`).
    /// Throws `connectionLoss` if no server accepted within `initialConnectTimeout`,
    /// `sessionExpired` when resuming a dead session, and `CancellationError` if cancelled.
    public static func connect(
        configuration: ZooKeeperConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "zookeeper")
    ) async throws -> ZooKeeperClient {
        var servers = configuration.servers
        if servers.isEmpty { throw ZooKeeperError.badArguments }
        if configuration.shuffleServers { servers.shuffle() }
        var core = SessionStateMachine.Configuration(servers: servers)
        core.sessionTimeout = configuration.sessionTimeout
        core.initialConnectTimeout = configuration.initialConnectTimeout
        core.reconnectDelay = configuration.reconnectDelay
        core.maxFrameSize = configuration.maxFrameSize
        core.credentials = configuration.session
        let driver = ClientDriver(eventLoop: eventLoopGroup.next(), configuration: core, logger: logger)
        try await driver.start()
        return ZooKeeperClient(driver: driver)
    }

    // MARK: Session

    /// The session's id and password (nil only before the first connection).
    public var credentials: SessionCredentials? { driver.snapshot.withLockedValue { $0.credentials } }
    /// The session id.
    public var sessionID: Int64 { credentials?.id ?? 0 }
    /// The server the client is connected to right now, if any.
    public var connectedServer: ServerAddress? { driver.snapshot.withLockedValue { $0.server } }
    /// The session timeout the server granted.
    public var negotiatedTimeout: Duration? {
        driver.snapshot.withLockedValue { $0.timeoutMs.map { .milliseconds(Int64($0)) } }
    }
    /// The latest connection state.
    public var state: ZooKeeperConnectionState { driver.snapshot.withLockedValue { $0.state } }

    /// The connection states from now on, starting with the current one. The stream finishes
    /// after `expired` or `closed`.
    public func states() -> AsyncStream<ZooKeeperConnectionState> {
        driver.subscribe()
    }

    /// Closes the session: the server deletes its ephemeral nodes at once. Pending requests fail
    /// with `closed`, watches fail with `closed`. Idempotent.
    public func close() async {
        _ = try? await driver.closeSession()
    }

    /// Adds credentials to the session (e.g. `digest`, `user:password`). They are re-sent after
    /// every reconnect. Throws `authFailed` if the server refuses them.
    public func addAuth(scheme: String, auth: [UInt8]) async throws {
        _ = try await driver.perform { driver, id in driver.core.addAuth(scheme: scheme, auth: auth, id: id) }
    }

    /// `addAuth(scheme: "digest", auth: "user:password")`.
    public func addDigestAuth(user: String, password: String) async throws {
        try await addAuth(scheme: "digest", auth: Array("\(user):\(password)".utf8))
    }

    // MARK: Operations

    /// Creates a node and returns its path (with the sequence suffix for sequential modes).
    @discardableResult
    public func create(_ path: String, data: [UInt8] = [], acl: [ACL] = .openUnsafe, mode: CreateMode = .persistent) async throws -> String {
        try await createWithStat(path, data: data, acl: acl, mode: mode).path
    }

    /// Creates a node and returns its path and metadata.
    public func createWithStat(_ path: String, data: [UInt8] = [], acl: [ACL] = .openUnsafe, mode: CreateMode = .persistent) async throws -> (path: String, stat: Stat?) {
        guard case .created(let created, let stat) = try await request(.create(path: path, data: data, acl: acl, mode: mode)) else {
            throw ZooKeeperError.protocolError("unexpected reply to create")
        }
        return (created, stat)
    }

    /// Deletes a node if its version is `version` (-1: any version).
    public func delete(_ path: String, version: Int32 = -1) async throws {
        _ = try await request(.delete(path: path, version: version))
    }

    /// The node's metadata, or nil if it does not exist.
    public func exists(_ path: String) async throws -> Stat? {
        try Self.stat(of: try await request(.exists(path: path, watch: false)))
    }

    /// As `exists`, and leaves a watch that fires when the node is created, changed or deleted.
    public func existsAndWatch(_ path: String) async throws -> (stat: Stat?, watch: ZooKeeperWatch) {
        let (response, watch) = try await watchingRequest(.exists(path: path, watch: true), path: path)
        return (try Self.stat(of: response), watch)
    }

    /// The node's data and metadata. Throws `noNode` if it does not exist.
    public func getData(_ path: String) async throws -> (data: [UInt8], stat: Stat) {
        guard case .data(let data, let stat) = try await request(.getData(path: path, watch: false)) else {
            throw ZooKeeperError.protocolError("unexpected reply to getData")
        }
        return (data, stat)
    }

    /// As `getData`, and leaves a watch that fires when the data changes or the node is deleted.
    public func getDataAndWatch(_ path: String) async throws -> (data: [UInt8], stat: Stat, watch: ZooKeeperWatch) {
        let (response, watch) = try await watchingRequest(.getData(path: path, watch: true), path: path)
        guard case .data(let data, let stat) = response else { throw ZooKeeperError.protocolError("unexpected reply to getData") }
        return (data, stat, watch)
    }

    /// Sets the node's data if its version is `version` (-1: any version); returns the new metadata.
    @discardableResult
    public func setData(_ path: String, data: [UInt8], version: Int32 = -1) async throws -> Stat {
        try Self.stat(of: try await request(.setData(path: path, data: data, version: version)))!
    }

    /// The node's children (names, unordered) and its metadata.
    public func getChildren(_ path: String) async throws -> (children: [String], stat: Stat) {
        guard case .children(let children, let stat) = try await request(.getChildren(path: path, watch: false)) else {
            throw ZooKeeperError.protocolError("unexpected reply to getChildren")
        }
        return (children, stat)
    }

    /// As `getChildren`, and leaves a watch that fires when a child is added or removed, or the node is deleted.
    public func getChildrenAndWatch(_ path: String) async throws -> (children: [String], stat: Stat, watch: ZooKeeperWatch) {
        let (response, watch) = try await watchingRequest(.getChildren(path: path, watch: true), path: path)
        guard case .children(let children, let stat) = response else { throw ZooKeeperError.protocolError("unexpected reply to getChildren") }
        return (children, stat, watch)
    }

    /// The node's ACL and metadata.
    public func getACL(_ path: String) async throws -> (acl: [ACL], stat: Stat) {
        guard case .acl(let acl, let stat) = try await request(.getACL(path: path)) else {
            throw ZooKeeperError.protocolError("unexpected reply to getACL")
        }
        return (acl, stat)
    }

    /// Replaces the node's ACL if its ACL version is `version` (-1: any); needs the `admin`
    /// permission on the node. Returns the new metadata.
    @discardableResult
    public func setACL(_ path: String, acl: [ACL], version: Int32 = -1) async throws -> Stat {
        try Self.stat(of: try await request(.setACL(path: path, acl: acl, version: version)))!
    }

    /// Applies all operations atomically, or none. On failure throws
    /// `ZooKeeperError.multiFailed(index:error:results:)` naming the operation that failed.
    @discardableResult
    public func multi(_ operations: [ZooKeeperOperation]) async throws -> [MultiResult] {
        guard case .multi(let results) = try await request(.multi(operations)) else {
            throw ZooKeeperError.protocolError("unexpected reply to multi")
        }
        return results
    }

    /// Waits until the connected server has caught up with the leader (for reads after writes
    /// made through other sessions).
    public func sync(_ path: String) async throws {
        _ = try await request(.sync(path: path))
    }

    // MARK: Internals

    private func request(_ request: Request) async throws -> Response {
        try await driver.perform { driver, id in driver.core.submit(request, id: id) }
    }

    private func watchingRequest(_ request: Request, path: String) async throws -> (Response, ZooKeeperWatch) {
        let box = WatchBox()
        let response = try await driver.perform { driver, id in
            driver.submit(request, id: id, watch: box)
        }
        return (response, ZooKeeperWatch(path: path, box: box))
    }

    private static func stat(of response: Response) throws -> Stat? {
        switch response {
        case .stat(let stat): return stat
        case .noStat: return nil
        default: throw ZooKeeperError.protocolError("unexpected reply \(response)")
        }
    }
}

/// Runs `body` with a connected client and closes it afterwards, also when `body` throws.
public func withZooKeeperClient<Result: Sendable>(
    configuration: ZooKeeperConfiguration,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    logger: Logger = Logger(label: "zookeeper"),
    _ body: (ZooKeeperClient) async throws -> Result
) async throws -> Result {
    let client = try await ZooKeeperClient.connect(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}
