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
        @Option(help: "The page after this cursor (the `next` the previous page printed on standard error).") var after: String?

        func validate() throws {
            if let consumption, !["unconsumed", "consumed", "all"].contains(consumption) {
                throw ValidationError("--consumption must be unconsumed, consumed or all, not \(consumption)")
            }
            if let limit, !(1...1_000).contains(limit) { throw ValidationError("--limit must be 1 to 1000") }
        }

        func run() async throws {
            try await connection.withClient { client in
                let page = try await client.vaultPage(type: type, owner: owner, consumption: consumption, limit: limit, after: after)
                for state in page.states { print(String(decoding: state.json, as: UTF8.self)) }
                // Standard output holds only states; the cursor of the next page goes beside it.
                if let next = page.next {
                    fflush(nil)  // the states first (naming `stdout` is not concurrency-safe)
                    FileHandle.standardError.write(Data("next page: --after \(next)\n".utf8))
                }
            }
        }
    }
}
