// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "hawser",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hawser", targets: ["hawser"]),
        .library(name: "HawserClient", targets: ["HawserClient"]),
        .library(name: "JetStream", targets: ["JetStream"]),
        .library(name: "ZooKeeper", targets: ["ZooKeeper"]),
        .library(name: "Coordination", targets: ["Coordination"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.28.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.21.0"),
    ],
    targets: [
        // Ledger types, canonical encoding, signatures, Merkle trees. No I/O.
        .target(name: "HawserCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // Protobuf wire messages for the binary API and log entries, and the notary's gRPC service
        // (generated code is committed).
        .target(name: "HawserWire", dependencies: [
            "HawserCore", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        ]),
        // The deterministic uniqueness state machine. No I/O.
        .target(name: "Uniqueness", dependencies: ["HawserCore"]),
        // Notary front (validate, verify, append) and replica (consume the log, apply, answer).
        .target(name: "Notary", dependencies: [
            "HawserCore", "HawserWire", "Uniqueness", "Coordination",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Election, leases, fencing epochs, preferred master and health-driven demotion (ports + sans-I/O cores).
        .target(name: "Coordination", dependencies: [
            "HawserCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The flow-session core, sans-I/O: sequencing, dedup, the inbox and link rules.
        .target(name: "Sessions", dependencies: ["HawserCore"]),
        // Durable flows: journal, deterministic replay, hospital, sessions' shell (ports + sans-I/O cores).
        .target(name: "Flows", dependencies: [
            "HawserCore", "Sessions",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The vault: states of notarised transactions, queries and soft locks (port + logic).
        .target(name: "Vault", dependencies: ["HawserCore", "Flows"]),
        // Embedded adapters: the durable SQLite log and the replica's SQLite store.
        .target(name: "Embedded", dependencies: [
            "HawserCore", "Notary", "Uniqueness", "Coordination", "Flows", "Sessions", "Vault",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        // The notary's ReplicatedLog on a JetStream stream.
        .target(name: "JetStreamLog", dependencies: [
            "JetStream", "Notary", "HawserCore", "HawserWire",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Election on ZooKeeper: ephemeral-sequential candidates, fencing epochs, preferred master.
        .target(name: "ZooKeeperElection", dependencies: [
            "Coordination", "ZooKeeper", "HawserCore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // PostgreSQL adapters (PostgresNIO): the lease election and fencing checks.
        .target(name: "Postgres", dependencies: [
            "Coordination", "HawserCore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The node's and the notary's stores on PostgreSQL (PostgresNIO's pooled client): flows,
        // journal, outbox, vault, the notary's log and its store, each write fenced.
        .target(name: "PostgresStores", dependencies: [
            "Postgres", "Coordination", "Flows", "Sessions", "Vault", "Notary", "Uniqueness", "HawserCore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The sample application: issue tokens and move them between parties, notarised.
        .target(name: "TokenSample", dependencies: ["HawserCore", "HawserWire", "Flows", "Sessions", "Vault"]),
        // The flows' notary port, implemented twice: the in-process notary and a remote one through
        // HawserClient; one rule says how notary failures reach flows.
        .target(name: "FlowNotaries", dependencies: ["Flows", "HawserCore", "HawserWire", "Notary", "HawserClient"]),
        // Assembly: configuration, lifecycle, HTTP API, health and metrics.
        .target(name: "HawserNode", dependencies: [
            "HawserCore", "HawserWire", "Notary", "Embedded", "JetStreamLog", "JetStream",
            "Coordination", "ZooKeeperElection", "ZooKeeper", "Postgres", "PostgresStores", "Flows", "Vault", "TokenSample",
            "FlowNotaries", "HawserClient", "Membership", "P2P",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),  // PBKDF2 for RPC passwords
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),  // the request parts the read deadlines see
            .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),  // where HTTP/1 version rules go, before the conversion
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),  // the request frames the gRPC call deadlines see
        ], resources: [
            // A link to docs/node-openapi.json, compiled in: the node serves it at /openapi.json.
            .embedInCode("node-openapi.json"),
        ]),
        // Swift client for the HTTP API: retries, failover, answer verification.
        .target(name: "HawserClient", dependencies: [
            "HawserCore", "HawserWire",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // Native NATS + JetStream client on SwiftNIO; knows nothing of Hawser.
        .target(name: "JetStream", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Native ZooKeeper client on SwiftNIO; knows nothing of Hawser.
        .target(name: "ZooKeeper", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "hawser", dependencies: [
            "HawserCore", "HawserNode", "HawserClient", "HawserWire", "Embedded", "PostgresStores", "Notary", "Uniqueness",
            "Coordination", "ZooKeeperElection", "ZooKeeper", "Postgres", "JetStreamLog", "JetStream",
            "Flows", "Vault", "TokenSample", "Sim", "Membership",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),

        // Helpers shared by the tests (temporary directories, id streams, a seeded generator, watchdogs, a NATS cluster).
        // The seeded simulator: real sans-I/O cores under simulated time, network, stores and faults.
        .target(name: "Sim", dependencies: ["Coordination", "Flows", "HawserCore", "HawserWire", "Notary", "Sessions", "Uniqueness", "ZooKeeper", "ZooKeeperElection"]),
        // The network definition: members, their keys and addresses, the notaries (docs/network.md).
        .target(name: "Membership", dependencies: [
            "HawserCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "MembershipTests", dependencies: ["Membership", "HawserCore"]),
        // Peer-to-peer delivery between member nodes over gRPC, each delivery signed (docs/p2p.md).
        .target(name: "P2P", dependencies: [
            "HawserCore", "HawserWire", "Sessions", "Flows", "Membership",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "P2PTests", dependencies: [
            "P2P", "Flows", "Sessions", "Membership", "Embedded", "HawserCore", "HawserWire", "HawserTestSupport",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HawserTestSupport", dependencies: ["HawserCore", "JetStream", "ZooKeeper", "Sim"], path: "Tests/HawserTestSupport"),
        // One suite of store tests run against every back end (SQLite, PostgreSQL).
        .testTarget(name: "StoreConformanceTests", dependencies: [
            "Embedded", "PostgresStores", "Postgres", "Flows", "Sessions", "Vault", "Notary", "Uniqueness", "Coordination", "HawserCore",
            "HawserTestSupport",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "HawserCoreTests", dependencies: ["HawserCore", "HawserTestSupport"]),
        .testTarget(name: "SimTests", dependencies: ["Sim", "Coordination", "HawserCore", "ZooKeeper"]),
        .testTarget(name: "HawserClientTests", dependencies: ["HawserClient", "HawserCore", "HawserWire", "HawserTestSupport"]),
        .testTarget(name: "UniquenessTests", dependencies: ["Uniqueness", "HawserCore", "HawserTestSupport"]),
        .testTarget(name: "NotaryTests", dependencies: [
            "Notary", "Embedded", "HawserCore", "HawserWire", "HawserTestSupport", "Coordination", "Uniqueness",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "HawserNodeTests", dependencies: [
            "HawserNode", "HawserClient", "Embedded", "PostgresStores", "Notary", "HawserCore", "HawserWire", "HawserTestSupport", "hawser",
            "JetStreamLog", "JetStream", "Flows", "Vault", "TokenSample", "FlowNotaries", "Postgres", "Sim", "Membership", "P2P", "Sessions",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .testTarget(name: "JetStreamTests", dependencies: [
            "JetStream", "HawserTestSupport", .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "ZooKeeperTests", dependencies: [
            "ZooKeeper", "HawserTestSupport", .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "JetStreamLogTests", dependencies: [
            "JetStreamLog", "JetStream", "Coordination", "Notary", "Embedded", "HawserCore", "HawserWire", "HawserTestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "CoordinationTests", dependencies: [
            "Coordination", "ZooKeeperElection", "ZooKeeper", "Postgres", "Embedded", "HawserCore", "HawserTestSupport", "Sim", "hawser",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "FlowsTests", dependencies: [
            "Flows", "Sessions", "Vault", "TokenSample", "FlowNotaries", "Embedded", "Notary", "HawserCore", "HawserTestSupport", "Coordination", "Sim",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
