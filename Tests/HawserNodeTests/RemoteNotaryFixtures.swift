import Embedded
import Flows
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Synchronization
import TokenSample

/// Bob's key, as `writeNodeFiles` writes it.
let bob = SigningKey(seed: [UInt8](repeating: 2, count: 32))!

/// A `hawser notary run` child process authorising Alice and Bob, signing with `key`, with its
/// embedded log, in a temporary directory removed with it. It keeps its port across restarts, so
/// a node given its URL finds it again.
final class StandaloneNotary: Sendable {
    let root: String
    let port: Int
    /// The gRPC service's port, if it serves one.
    let grpcPort: Int?
    private let process = Mutex<HawserProcess?>(nil)

    var url: String { "http://127.0.0.1:\(port)" }
    var grpcURL: String? { grpcPort.map { "grpc://127.0.0.1:\($0)" } }
    var config: String { root + "/hawser.json" }

    private init(root: String, port: Int, grpcPort: Int?) {
        self.root = root
        self.port = port
        self.grpcPort = grpcPort
    }

    deinit {
        _ = process.withLock { $0.take() }  // the last reference: `HawserProcess` kills a running child
        try? FileManager.default.removeItem(atPath: root)
    }

    /// With `grpc`, it serves its gRPC service too.
    static func start(key: SigningKey = notaryKey, grpc: Bool = false) async throws -> StandaloneNotary {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-notary-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let ports = try FreePorts.take(2)
        let notary = StandaloneNotary(root: root, port: ports[0], grpcPort: grpc ? ports[1] : nil)
        try KeyFile(name: "O=Notary", key: key).save(root + "/notary.key")
        var configuration = NotaryConfiguration()
        configuration.name = "O=Notary"
        configuration.listen.port = notary.port
        if let grpcPort = notary.grpcPort {
            configuration.grpc = GRPCConfiguration()
            configuration.grpc?.port = grpcPort
        }
        configuration.authorisedParties = [.init(name: "O=Alice", publicKey: alice.publicKey.base64),
                                           .init(name: "O=Bob", publicKey: bob.publicKey.base64)]
        try configuration.save(notary.config)
        try await notary.restart()
        return notary
    }

    /// Starts the notary (again) and returns once it listens.
    func restart() async throws {
        let (child, _) = try await HawserProcess.notary(config: config)
        process.withLock { $0 = child }
    }

    /// SIGKILL, as in a power cut of the notary's process.
    func kill() { process.withLock { $0.take() }?.kill() }

    /// SIGTERM and wait.
    func stop() async { _ = await process.withLock { $0.take() }?.terminate() }

    /// The notary's store, to read once it is stopped.
    func store() throws -> SQLiteNotaryStore { try SQLiteNotaryStore(path: root + "/data/notary.sqlite") }
}

/// An address where nothing listens: a port handed out as free and left unbound.
func closedURL(scheme: String = "http") throws -> String { "\(scheme)://127.0.0.1:\(try FreePorts.take(1)[0])" }

/// Writes the files of `writeNodeFiles`, but for a node that uses the remote notary at `urls`
/// (pinned to `key`): no notary key, no embedded notary options. Transient failures are retried
/// quickly and for long, so a test's outage never parks a flow.
func writeRemoteNodeFiles(in directory: String, urls: [String], key: PublicKey = notaryKey.publicKey,
                          _ adjust: (inout NodeConfiguration) -> Void = { _ in }) throws {
    try writeNodeFiles(in: directory)
    try FileManager.default.removeItem(atPath: directory + "/notary.key")
    var configuration = try NodeConfiguration.load(directory + "/node.json")
    configuration.notaryName = nil
    configuration.notaryKeyFile = nil
    configuration.notary = .remote(urls: urls, publicKey: key.base64, name: "O=Notary")
    configuration.hospital.initialDelayMillis = 20
    configuration.hospital.maxDelayMillis = 500
    configuration.hospital.maxAttempts = 1_000
    adjust(&configuration)
    try configuration.save(directory + "/node.json")
}

/// Runs an in-process node that uses the remote notary at `urls` for the duration of `body`.
func withRemoteNode<T: Sendable>(urls: [String], key: PublicKey = notaryKey.publicKey,
                                 _ adjust: (inout NodeConfiguration) -> Void = { _ in },
                                 _ body: @Sendable (any TestClientProtocol, Node.Parts, String) async throws -> T) async throws -> T {
    let dir = try TemporaryDirectory()
    try writeRemoteNodeFiles(in: dir.path, urls: urls, key: key, adjust)
    let configuration = try NodeConfiguration.load(dir.path + "/node.json")
    let path = dir.path
    let (app, parts) = try await Node.application(configuration: configuration, baseDirectory: path, logger: quietLogger)
    return try await app.test(.router) { client in try await body(client, parts, path) }
}

extension FlowEngine {
    /// Starts `flow` and waits for its end (or for it to be parked).
    func run<F: Flow>(_ flow: F, clientRequestId: String? = nil) async throws -> FlowRecord {
        try await waitForEnd(try await start(flow, clientRequestId: clientRequestId).id)
    }

    /// Returns once the flow has been hospitalised at least once (it is then waiting for a retry).
    func waitUntilHospitalised(_ id: FlowID) async throws {
        for await event in try await events(of: id) where event.status == .hospitalised { return }
        throw ProcessError(message: "flow \(id) ended without being hospitalised")
    }
}

/// Unconsumed tokens per owner, as the node's vault holds them.
func balances(_ parts: Node.Parts) async throws -> [String: Int128] {
    try await TokenSample.balances(parts.database.vault)
}

/// The transaction id a token flow completed with.
func txId(_ record: FlowRecord) throws -> SecureHash {
    let object = record.result.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) } as? [String: Any]
    guard let hex = object?["txId"] as? String, let id = SecureHash(hex: hex) else {
        throw ProcessError(message: "flow \(record.id) has no transaction id: \(record.status) \(record.error ?? "")")
    }
    return id
}
