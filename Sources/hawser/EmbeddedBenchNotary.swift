import Embedded
import Foundation
import HawserCore
import HawserNode
import Logging
import Notary
import Uniqueness

/// An embedded notary inside the bench process, for `hawser bench notary --embedded`: it serves
/// HTTP (and with `grpc` its gRPC service) on free loopback ports, so the load still crosses the
/// real API, and it can be preloaded with millions of spent states to measure a large store.
enum EmbeddedBenchNotary {
    /// Runs `body` with the URL of a notary in `directory` that authorises `party`: its HTTP base
    /// URL, or with `grpc` its `grpc://` address.
    static func with<T: Sendable>(directory: String, party: Party, preload: Int, grpc: Bool = false,
                                  _ body: @Sendable (String) async throws -> T) async throws -> T {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let keyPath = directory + "/notary.key"
        if !FileManager.default.fileExists(atPath: keyPath) { try KeyFile(name: "O=Bench Notary", key: SigningKey()).save(keyPath) }
        var configuration = NotaryConfiguration()
        configuration.name = "O=Bench Notary"
        configuration.listen.port = 0
        configuration.authorisedParties = [.init(name: party.name, publicKey: party.publicKey.base64)]
        configuration.limits.maxBatchRequests = 10_000
        configuration.limits.maxRequestsPerLogEntry = 10_000
        if grpc {
            configuration.grpc = GRPCConfiguration()
            configuration.grpc?.port = 0
        }
        if preload > 0 {
            // Another bench on the same --data-dir would have its store written under it.
            let data = directory + "/" + configuration.dataDirectory
            let lock = try DataDirectoryLock(directory: data)
            try await Self.preload(preload, into: SQLiteNotaryStore(path: data + "/notary.sqlite"))
            lock.release()
        }
        var logger = Logger(label: "hawser.bench.notary")
        logger.logLevel = .warning
        let grpcPorts = AsyncStream.makeStream(of: Int.self)
        return try await InProcessServer.with(logger: logger, make: { onListening in
            try await NotaryNode.application(configuration: configuration, baseDirectory: directory, logger: logger, onListening: onListening,
                                             onGRPCListening: { grpcPorts.continuation.yield($0) }).app
        }) { port in
            guard grpc else { return try await body("http://127.0.0.1:\(port)") }
            var ports = grpcPorts.stream.makeAsyncIterator()
            guard let grpcPort = await ports.next() else { throw CLIError("the gRPC listener did not start") }
            return try await body("grpc://127.0.0.1:\(grpcPort)")
        }
    }

    /// Commits `count` spent states (one per transaction, with its outcome) in sorted key order,
    /// which SQLite's B-trees take fastest. Skips work if the store already holds them.
    static func preload(_ count: Int, into store: SQLiteNotaryStore) async throws {
        let marker = StateRef(txId: SecureHash.sha256(Array("hawser-bench-preload-\(count)".utf8)), index: 0)
        if try await store.consumer(of: marker) != nil {
            FileHandle.standardError.write(Data("store already preloaded with \(count) states\n".utf8))
            return
        }
        let start = ContinuousClock.now
        var spent = (0..<count).map { i in (ref: StateRef(txId: Self.hash("ref", i), index: 0), txId: Self.hash("tx", i)) }
        var outcomes = spent.map { (txId: $0.txId, outcome: NotarisationOutcome.committed) }
        spent.append((marker, Self.hash("tx", count)))
        outcomes.append((Self.hash("tx", count), .committed))
        spent.sort { $0.ref < $1.ref }
        outcomes.sort { $0.txId < $1.txId }
        let chunk = 250_000
        for first in stride(from: 0, to: spent.count, by: chunk) {
            let range = first..<min(first + chunk, spent.count)
            let chunk = BatchDecision(outcomes: [], newOutcomes: Array(outcomes[range]), newlySpent: Array(spent[range]))
            _ = try await store.apply(refs: [], txIds: []) { _ in AppliedBatch(decision: chunk, heads: [.genesis]) }
            FileHandle.standardError.write(Data("preloaded \(range.upperBound)/\(spent.count) states\r".utf8))
        }
        FileHandle.standardError.write(Data("\npreloaded \(count) states in \(ContinuousClock.now - start)\n".utf8))
    }

    private static func hash(_ kind: String, _ i: Int) -> SecureHash {
        SecureHash.sha256(Array("hawser-bench-\(kind)-\(i)".utf8))
    }
}
