import Embedded
import Flows
@testable import HawserNode
import Prometheus

extension NodeAPI {
    /// A gated (hot-warm) node's API over `engines` and a SQLite node `database`, with one RPC
    /// user `ops` (password `secret`, every permission), for tests that drive the API in process.
    static func gated(_ engines: FlowEngines, database: SQLiteNodeDatabase, registry: FlowRegistry) -> NodeAPI {
        NodeAPI(flows: engines, gated: true,
                database: NodeDatabase(flows: database.flows, vault: database.vault, sessions: database.sessions, services: [],
                                       fenced: { _ in preconditionFailure("not partitioned") }), replica: nil,
                authenticator: RPCAuthenticator(users: [RPCUser(username: "ops", passwordHash: PasswordHash.make("secret", iterations: 100),
                                                                permissions: [.all])]),
                identity: NodeIdentityJSON(name: "O=Alice", notary: "O=Notary", parties: [], flows: registry.names),
                maxBodyBytes: 1 << 20, maxBodyBytesInFlight: 1 << 23, registry: PrometheusCollectorRegistry(),
                openAPI: NodeOpenAPI(registry: registry, parties: { [] }, host: "127.0.0.1", port: 0), network: nil)
    }
}
