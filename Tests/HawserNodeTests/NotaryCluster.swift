import AsyncHTTPClient
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import JetStream
import NIOCore
import Notary
import Synchronization

/// Replicas of one notary (one key) as `hawser notary run` child processes, on a 3-server
/// JetStream cluster, all on loopback in a temporary directory. Each replica keeps its port across
/// restarts, so clients given the three addresses find it again.
final class NotaryCluster: Sendable {
    let nats: NATSCluster
    let root: String
    let ports: [Int]
    private let processes: Mutex<[HawserProcess?]>
    let http = HTTPClient(eventLoopGroupProvider: .singleton)

    var urls: [String] { ports.map { "http://127.0.0.1:\($0)" } }
    func config(_ replica: Int) -> String { "\(root)/r\(replica)/hawser.json" }
    func storePath(_ replica: Int) -> String { "\(root)/r\(replica)/data/notary.sqlite" }

    private init(nats: NATSCluster, root: String, ports: [Int]) {
        self.nats = nats
        self.root = root
        self.ports = ports
        processes = Mutex(Array(repeating: nil, count: ports.count))
    }

    /// Starts the NATS cluster, configures `size` replicas, starts the first `running` of them and
    /// returns once they listen.
    static func start(size: Int = 3, running: Int? = nil,
                      _ adjust: @escaping (inout NotaryConfiguration) -> Void = { _ in }) async throws -> NotaryCluster {
        let nats = try await startNATS()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hawser-cluster-\(UUID().uuidString)").path
        let cluster = NotaryCluster(nats: nats, root: root, ports: try FreePorts.take(size))
        do {
            for replica in 0..<size {
                let dir = "\(root)/r\(replica)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try writeNotaryFiles(in: dir, port: cluster.ports[replica]) { c in
                    c.log.kind = .jetstream
                    c.log.servers = nats.urls
                    c.log.stream = "NOTARY"
                    c.log.members = (0..<size).map { "r\($0)" }
                    c.log.replicaId = "r\(replica)"
                    adjust(&c)
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for replica in 0..<(running ?? size) { group.addTask { try await cluster.restart(replica) } }
                try await group.waitForAll()
            }
            return cluster
        } catch {
            await cluster.stop()
            throw error
        }
    }

    /// A port handed out as free can be taken before a server binds it; a new start fixes that.
    private static func startNATS() async throws -> NATSCluster {
        var attempt = 0
        while true {
            attempt += 1
            do { return try await NATSCluster.start() } catch TestClusterError.notReady(let reason) where attempt < 3 && reason.contains("exited") {}
        }
    }

    /// Starts (or starts again) replica `replica` with its configuration and data.
    func restart(_ replica: Int) async throws {
        let (process, _) = try await HawserProcess.notary(config: config(replica))
        processes.withLock { $0[replica] = process }
    }

    func kill(_ replica: Int) { take(replica)?.kill() }
    func pause(_ replica: Int) { processes.withLock { $0[replica] }?.pause() }
    func resume(_ replica: Int) { processes.withLock { $0[replica] }?.resume() }

    /// Deletes the replica's store (it must be stopped); on restart it replays the log.
    func deleteStore(_ replica: Int) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath(replica) + suffix) }
    }

    private func take(_ replica: Int) -> HawserProcess? {
        processes.withLock { all in
            defer { all[replica] = nil }
            return all[replica]
        }
    }

    /// The replica's applied position and committed-state digest (`GET /v1/digest`).
    func digest(_ replica: Int) async throws -> (position: UInt64, digest: String) {
        struct Body: Decodable { var appliedPosition: UInt64; var digest: String }
        let response = try await http.execute(HTTPClientRequest(url: urls[replica] + "/v1/digest"), timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 16)
        guard response.status == .ok else { throw ProcessError(message: "digest: \(response.status) \(String(buffer: bytes))") }
        let body = try JSONDecoder().decode(Body.self, from: Data(buffer: bytes))
        return (body.appliedPosition, body.digest)
    }

    /// The replica's status (`GET /v1/replica`): `ready`, `log_diverged`, ..., its applied
    /// position, and the whole answer (a stopped replica's evidence).
    func status(_ replica: Int) async throws -> (status: String, applied: UInt64, body: String) {
        struct Head: Decodable { var position: UInt64 }
        struct Body: Decodable { var status: String; var applied: Head }
        let response = try await http.execute(HTTPClientRequest(url: urls[replica] + "/v1/replica"), timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else { throw ProcessError(message: "status: \(response.status) \(String(buffer: bytes))") }
        let body = try JSONDecoder().decode(Body.self, from: Data(buffer: bytes))
        return (body.status, body.applied.position, String(buffer: bytes))
    }

    /// The replica's snapshot (`GET /v1/snapshot`) as bytes, with its `Hawser-Applied-Position`.
    func snapshot(_ replica: Int) async throws -> (position: UInt64, bytes: ByteBuffer) {
        var request = HTTPClientRequest(url: urls[replica] + "/v1/snapshot")
        request.headers.add(name: "Authorization", value: SnapshotCredential(notaryKey: notaryKey).header(at: Int64(Date().timeIntervalSince1970)))
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 30)
        guard response.status == .ok, let position = response.headers.first(name: "Hawser-Applied-Position").flatMap(UInt64.init) else {
            throw ProcessError(message: "snapshot: \(response.status)")
        }
        return (position, bytes)
    }

    /// The server currently leading the notary's stream.
    func streamLeader() async throws -> NATSCluster.Server? {
        let name = try await NATSClient.withConnection(NATSOptions(servers: nats.urls)) { client in
            try await JetStreamContext(client: client).streamInfo("NOTARY").cluster?.leader
        }
        return nats.servers.first { $0.name == name }
    }

    /// Stops every replica and server and deletes the directory.
    func stop() async {
        for replica in ports.indices {
            if let process = take(replica) {
                process.resume()
                process.kill()
            }
        }
        nats.stop()
        try? await http.shutdown()
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Runs `body` with a started cluster and always stops it afterwards.
func withNotaryCluster<T>(size: Int = 3, running: Int? = nil, _ adjust: @escaping (inout NotaryConfiguration) -> Void = { _ in },
                          _ body: (NotaryCluster) async throws -> T) async throws -> T {
    let cluster = try await NotaryCluster.start(size: size, running: running, adjust)
    do {
        let result = try await body(cluster)
        await cluster.stop()
        return result
    } catch {
        await cluster.stop()
        throw error
    }
}
