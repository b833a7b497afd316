import Embedded
import FlowNotaries
import Flows
import HawserCore
import Metrics
import Notary
import TokenSample
import Vault

let notaryKey = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
let sampleKeys = LocalKeys(["O=Alice": SigningKey(seed: [UInt8](repeating: 1, count: 32))!,
                            "O=Bob": SigningKey(seed: [UInt8](repeating: 2, count: 32))!])

/// An embedded notary and a flow engine running the token sample, in one directory, for the
/// duration of `body`.
struct SampleNode {
    let engine: FlowEngine
    let database: SQLiteNodeDatabase
    let notaryStore: SQLiteNotaryStore

    /// `register` adds test flows beside the sample's; they find `hooks` among the services.
    static func with<T: Sendable>(directory: String, hooks: Hooks = Hooks(), register: (inout FlowRegistry) -> Void = { _ in },
                                  _ body: (SampleNode) async throws -> T) async throws -> T {
        let log = try SQLiteLog(path: directory + "/log.sqlite")
        let store = try SQLiteNotaryStore(path: directory + "/notary.sqlite")
        let assembly = NotaryAssembly(name: "O=Notary", signer: notaryKey, authorisedParties: nil, limits: NotaryLimits(),
                                      log: log, store: store, metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance),
                                      logger: quietLogger)
        let notary = assembly.notary, replica = assembly.replica, appender = assembly.appender
        let database = try SQLiteNodeDatabase(path: directory + "/node.sqlite")
        var registry = FlowRegistry()
        TokenSample.register(into: &registry)
        register(&registry)
        var services = FlowServices(notary: EmbeddedNotaryPort(notary), keys: sampleKeys)
        services.add(database.vault, as: (any VaultStore).self)
        services.add(hooks, as: Hooks.self)
        let engine = FlowEngine(store: database.flows, registry: registry, services: services,
                                configuration: .init(endEffects: { [.releaseSoftLocks(holder: $0.rawValue)] }),
                                logger: quietLogger)
        let node = SampleNode(engine: engine, database: database, notaryStore: store)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await replica.run() }
            group.addTask { try await appender.run() }
            defer { group.cancelAll() }
            return try await running(engine) { try await body(node) }
        }
    }
}
