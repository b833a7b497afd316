import ArgumentParser
import Foundation
import HawserClient

/// `hawser vault`: the node's vault through its RPC API (`GET /v1/vault`).
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault", abstract: "Query a node's vault through its RPC API.", subcommands: [Query.self])

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the states of the vault, one JSON line each, in the order they were recorded.")

        @OptionGroup var connection: FlowCommand.Connection
        @Option(help: "Only states of this type, e.g. token.") var type: String?
        @Option(help: "Only states owned by this party, e.g. O=Alice.") var owner: String?
        @Option(help: "unconsumed (the default), consumed or all.") var consumption: String?
        @Option(help: "Most states to print, 1 to 1000 (default 100).") var limit: Int?

        func validate() throws {
            if let consumption, !["unconsumed", "consumed", "all"].contains(consumption) {
                throw ValidationError("--consumption must be unconsumed, consumed or all, not \(consumption)")
            }
            if let limit, !(1...1_000).contains(limit) { throw ValidationError("--limit must be 1 to 1000") }
        }

        func run() async throws {
            try await connection.withClient { client in
                for state in try await client.vault(type: type, owner: owner, consumption: consumption, limit: limit) {
                    print(String(decoding: state.json, as: UTF8.self))
                }
            }
        }
    }
}
