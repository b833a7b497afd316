import ArgumentParser
import Foundation
import HawserNode
import Logging
import ServiceLifecycle

/// `hawser worker run`: one binary, its roles chosen at start (docs/node.md, "Roles"), so that the
/// deployments of the worker architecture are configuration: every role in one process, the same
/// set of roles in several (simple HA), or each role scaled on its own (high SLA).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a process with the roles chosen: the node's (rpc, flow, p2p) and the notary's.",
        subcommands: [Run.self])

    /// What a worker process may do: a hot-hot node's roles (`ha.roles`), and running a notary.
    enum Role: String, CaseIterable {
        case rpc, flow, p2p, notary
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the roles given until SIGTERM or SIGINT.",
            discussion: """
                --roles is a comma-separated list of rpc, flow, p2p and notary; all stands for rpc, flow and p2p (the \
                whole node, as hawser node run). The node's roles run the node of --config, in place of its ha.roles: a \
                proper subset of them needs ha.mode hot-hot. notary runs the notary of --notary-config (as hawser notary \
                run) in the same process. Prints each service's listening line with "service":"node" or "notary".
                """)

        @Option(help: "The roles: a comma-separated list of rpc, flow, p2p, notary, or all (rpc, flow and p2p).")
        var roles: String
        @Option(help: "The node's configuration file (node.json), for the roles rpc, flow and p2p.")
        var config: String?
        @Option(help: "The notary's configuration file (hawser.json), for the role notary.")
        var notaryConfig: String?
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .info

        /// The roles `--roles` names, or why it is refused.
        static func parse(_ list: String) throws(ValidationError) -> Set<Role> {
            var roles = Set<Role>()
            for name in list.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
                let these: Set<Role>
                if name == "all" {
                    these = [.rpc, .flow, .p2p]
                } else if let role = Role(rawValue: name) {
                    these = [role]
                } else {
                    throw ValidationError("--roles names \"\(name)\"; the roles are rpc, flow, p2p, notary and all")
                }
                // As ha.roles refuses a role named twice (`rpc,rpc` was taken without a word, found
                // from outside); `all` names rpc, flow and p2p, so `rpc,all` names rpc twice.
                if let twice = these.intersection(roles).map(\.rawValue).sorted().first {
                    throw ValidationError("--roles names \"\(twice)\" twice" + (list.contains("all") ? " (`all` is rpc, flow and p2p)" : ""))
                }
                roles.formUnion(these)
            }
            return roles
        }

        func validate() throws {
            let roles = try Self.parse(roles)
            let node = !roles.isDisjoint(with: [.rpc, .flow, .p2p])
            if node, config == nil { throw ValidationError("the roles rpc, flow and p2p run a node: give its file with --config") }
            if !node, config != nil { throw ValidationError("--config is for the roles rpc, flow and p2p, and --roles names none") }
            if roles.contains(.notary), notaryConfig == nil { throw ValidationError("the role notary runs a notary: give its file with --notary-config") }
            if !roles.contains(.notary), notaryConfig != nil { throw ValidationError("--notary-config is for the role notary, and --roles does not name it") }
        }

        func run() async throws {
            NodeCommand.bootstrapLogging(at: logLevel)
            let roles = try Self.parse(self.roles)
            let nodeConfiguration = try config.map(NodeConfiguration.load)
            let notaryConfiguration = try notaryConfig.map(NotaryConfiguration.load)
            // One process: its listeners share its open files.
            let caps = (nodeConfiguration?.connectionCaps ?? []) + (notaryConfiguration?.connectionCaps ?? [])
            if let problem = OpenFileLimit.raise(toFit: caps) { throw CLIError(problem) }
            var services = [any Service]()
            if let config, var configuration = nodeConfiguration {
                let nodeRoles = Set(roles.compactMap { HAConfiguration.Role(rawValue: $0.rawValue) })
                if nodeRoles != Set(HAConfiguration.Role.allCases) {
                    guard configuration.ha.mode == .hotHot else {
                        throw CLIError("--roles \(self.roles) splits a node's roles, which needs ha.mode hot-hot in \(config) (all runs every role)")
                    }
                    configuration.ha.roles = nodeRoles
                } else {
                    configuration.ha.roles = nil
                }
                let (base, host) = (URL(fileURLWithPath: config).deletingLastPathComponent().path, configuration.listen.host)
                let configured = configuration
                guard let app = try await stoppableBySignals({
                    try await Node.application(configuration: configured, baseDirectory: base, logger: Logger(label: "hawser.node"), onListening: { port in
                        emitEvent(["event": "listening", "service": "node", "host": host, "port": port])
                    }, onPartition: { partition, serving in
                        emitEvent(["event": serving ? "serving" : "released", "partition": partition])
                    }).app
                }) else { return }
                services.append(app)
            }
            if let notaryConfig, let configuration = notaryConfiguration {
                let base = URL(fileURLWithPath: notaryConfig).deletingLastPathComponent().path
                guard let app = try await stoppableBySignals({
                    try await NotaryNode.application(configuration: configuration, baseDirectory: base, logger: Logger(label: "hawser.notary"),
                                                     onListening: { port in
                        emitEvent(["event": "listening", "service": "notary", "host": configuration.listen.host, "port": port])
                    }, onGRPCListening: { port in
                        emitEvent(["event": "grpc_listening", "service": "notary", "host": configuration.grpc?.host ?? "", "port": port])
                    }).app
                }) else { return }
                services.append(app)
            }
            // One group: a signal stops every role gracefully, and a role that fails stops the others.
            try await runNamingElectionCodes(services, logger: Logger(label: "hawser.worker"))
        }
    }
}
