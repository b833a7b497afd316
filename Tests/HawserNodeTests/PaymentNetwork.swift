import Foundation
import HawserClient
@testable import HawserNode
import HawserTestSupport

/// A network of separate processes on loopback, as `scripts/network.sh` starts one: a notary (one
/// process) and nodes made by `hawser network init`, each node's P2P service at the address the
/// network definition gives it. Every process is stopped by `stop()` (or killed when the test's
/// last reference goes).
final class PaymentNetwork: @unchecked Sendable {
    let path: String
    let base: Int
    let names: [String]
    let notary: HawserProcess
    private var nodes: [String: HawserProcess] = [:]
    /// RPC addresses of nodes that are not at the network's default one (an HA pair's).
    private var rpcURLs: [String: [String]] = [:]
    private let lock = NSLock()

    /// Makes and starts a network of `nodes` (lower-case directory names) in `path`; `adjust`
    /// changes each node's configuration first, and `prepare` gets the network's directory before
    /// any process starts. Only the nodes in `starting` are started (default: all).
    static func start(in path: String, nodes: [String] = ["alice", "bob"], starting: [String]? = nil,
                      adjust: (String, inout NodeConfiguration) -> Void = { _, _ in },
                      prepare: (String) throws -> Void = { _ in }) async throws -> PaymentNetwork {
        let base = try freeBase()
        let capitalised = nodes.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: ",")
        let made = try await HawserProcess.run(["network", "init", path + "/net", "--nodes", capitalised, "--notary", "single",
                                                "--base-port", "\(base)"])
        guard made.status == 0 else { throw SetUpFailed("network init failed: \(made.output)") }
        for node in nodes {
            var configuration = try NodeConfiguration.load(path + "/net/\(node)/node.json")
            adjust(node, &configuration)
            try configuration.save(path + "/net/\(node)/node.json")
        }
        try prepare(path + "/net")
        let (notary, _) = try await HawserProcess.notary(config: path + "/net/notary/hawser.json")
        let network = PaymentNetwork(path: path + "/net", base: base, names: nodes, notary: notary)
        for node in starting ?? nodes { try await network.startNode(node) }
        return network
    }

    private init(path: String, base: Int, names: [String], notary: HawserProcess) {
        self.path = path
        self.base = base
        self.names = names
        self.notary = notary
    }

    /// A base port whose ports for two nodes and the notary are free now.
    static func freeBase() throws -> Int {
        for _ in 0..<50 {
            let base = Int.random(in: 20_000...59_000)
            let ports = [0, 1, 10, 11, 12, 20, 21, 22].map { base + $0 }
            if ports.allSatisfy({ (try? ListenCheck.ensureBindable(host: "127.0.0.1", port: $0, section: "test")) != nil }) { return base }
        }
        throw SetUpFailed("no free range of ports for a network")
    }

    /// Starts the node process `name` with the configuration `config` in the node's directory
    /// (default: `node`'s `node.json`, and its name); with `log`, its errors are appended to that file.
    func startNode(_ node: String, config: String = "node.json", as name: String? = nil, log: String? = nil) async throws {
        let config = path + "/\(node)/\(config)"
        let (process, _) = if let log { try await HawserProcess.node(config: config, logLevel: "error", log: log) }
                           else { try await HawserProcess.node(config: config) }
        lock.withLock { nodes[name ?? node] = process }
    }

    /// Starts `hawser worker run --roles ROLES --config` the node's file `config`, as process `name`.
    func startWorker(_ node: String, roles: String, config: String, as name: String) async throws {
        let (process, _) = try await HawserProcess.worker(["--roles", roles, "--config", path + "/\(node)/\(config)"])
        lock.withLock { nodes[name] = process }
    }

    /// kill -9 of the node's process.
    func kill(_ node: String) { lock.withLock { nodes.removeValue(forKey: node) }?.kill() }

    func process(_ node: String) -> HawserProcess? { lock.withLock { nodes[node] } }

    /// `node` is served at `urls` (an HA pair): its clients try each.
    func serve(_ node: String, at urls: [String]) { lock.withLock { rpcURLs[node] = urls } }

    /// The node's party, as `hawser network init` names it.
    func party(_ node: String) -> String { "O=\(node.prefix(1).uppercased() + node.dropFirst()), L=London, C=GB" }

    /// A client of the node's RPC API that retries for long (the node may be down meanwhile).
    func client(_ node: String) throws -> NodeClient {
        let index = names.firstIndex(of: node)!
        let password = try String(contentsOfFile: path + "/\(node)/rpc-password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let urls = lock.withLock { rpcURLs[node] } ?? ["http://127.0.0.1:\(base + 10 + index)"]
        return NodeClient(urls: urls, username: "admin", password: password,
                          retryPolicy: RetryPolicy(maxAttempts: 10_000, baseBackoff: .milliseconds(50), maxBackoff: .milliseconds(500),
                                                   attemptTimeout: .seconds(30), deadline: .seconds(300)))
    }

    /// The sum of `node`'s unconsumed tokens by owner.
    func balances(_ node: String) async throws -> [String: Int64] {
        let client = try client(node)
        let states: [NodeVaultState]
        do { states = try await client.vault(type: "token", limit: 1_000) } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        var out = [String: Int64]()
        for state in states {
            let object = try JSONSerialization.jsonObject(with: state.json) as? [String: Any]
            let data = object?["data"] as? [String: Any]
            out[state.owner, default: 0] += (data?["amount"] as? NSNumber)?.int64Value ?? 0
        }
        return out
    }

    /// The tests' clean-up, once they have checked what they check: SIGKILL every process.
    func stop() {
        for process in lock.withLock({ Array(nodes.values) }) { process.kill() }
        notary.kill()
    }
}

struct SetUpFailed: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
