import ArgumentParser
import Foundation
import HawserNode
import Logging

extension FlowCommand {
    /// `hawser flow offline kill|park ID`: works on the node's database while the node is stopped.
    struct Offline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kill or park a flow while the node is stopped (e.g. a flow that keeps it from starting).",
            discussion: """
                Works on the database in the node's data directory, not through the RPC API: stop the node first. \
                kill ends the flow (its soft locks are released), unless it has asked the notary (its transaction may be \
                committed): park such a flow. park leaves it in the hospital, where it is not run at start-up, for \
                `POST /v1/flows/{id}/resume` or kill once the node runs. Prints the flow (JSON).
                """,
            subcommands: [Kill.self, Park.self])

        struct Options: ParsableArguments {
            @Option(help: "The node's configuration file.")
            var config = NodeCommand.defaultDirectory + "/node.json"
            @Argument(help: "The flow's id.")
            var id: String

            func apply(_ action: OfflineFlows.Action) async throws {
                let configuration = try NodeConfiguration.load(config)
                var logger = Logger(label: "hawser.flow.offline")
                logger.logLevel = .error
                do {
                    print(try await OfflineFlows.apply(action, to: id, configuration: configuration,
                                                       baseDirectory: URL(fileURLWithPath: config).deletingLastPathComponent().path,
                                                       logger: logger))
                } catch {
                    throw CLIError("\(error)")
                }
            }
        }

        struct Kill: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "End the flow for good (status killed).")
            @OptionGroup var options: Options
            func run() async throws { try await options.apply(.kill) }
        }

        struct Park: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Leave the flow in the hospital for an operator.")
            @OptionGroup var options: Options
            func run() async throws { try await options.apply(.park) }
        }
    }
}
