import ArgumentParser
import Foundation
import HawserClient
import HawserCore

extension FlowCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print flows in start order, one JSON line each, filtered by name, status, client request id or start time.",
            discussion: "Pages through the node (GET /v1/flows) until --limit flows are printed or none are left.")

        @OptionGroup var connection: Connection
        @Option(help: "Only flows of this name, e.g. IssueTokens.") var flow: String?
        @Option(help: "Only flows with this status: \(statuses.joined(separator: ", ")).") var status: String?
        @Option(help: "Only the flow started with this client request id.") var clientRequestId: String?
        @Option(help: "Only flows started at or after this time (RFC 3339, e.g. 2026-01-31T09:00:00Z).") var since: String?
        @Option(help: "Only flows started before this time (RFC 3339).") var until: String?
        @Option(help: "Start after the flow with this id (the last one a previous listing printed).") var after: String?
        @Option(help: "Most flows to print.") var limit = 100

        static let statuses = ["running", "completed", "failed", "hospitalised", "killed"]

        func validate() throws {
            if let status, !Self.statuses.contains(status) {
                throw ValidationError("--status must be one of \(Self.statuses.joined(separator: ", ")), not \(status)")
            }
            for (name, value) in [("--since", since), ("--until", until)] {
                if let value, Instant(rfc3339: value) == nil {
                    throw ValidationError("\(name) must be an RFC 3339 time such as 2026-01-31T09:30:00Z, not \(value)")
                }
            }
            guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            try await connection.withClient { client in
                var filter = NodeFlowFilter(status: status, flow: flow, clientRequestId: clientRequestId, since: since, until: until,
                                            after: after)
                var printed = 0
                while printed < limit {
                    let page = min(1_000, limit - printed)
                    filter.limit = page
                    let flows = try await client.flows(matching: filter)
                    for flow in flows { print(FlowCommand.line(flow)) }
                    printed += flows.count
                    guard flows.count == page, let last = flows.last else { break }
                    filter.after = last.id
                }
            }
        }
    }

    struct Kill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Kill a running or hospitalised flow (it stops at its next effect and releases its soft locks); print it.",
            discussion: "Refused (409 flow_notarising) for a flow that has asked the notary, or agreed to a swap its counterparty notarises: its transaction may be committed.")

        @OptionGroup var connection: Connection
        @Argument(help: "The flow's id.") var id: String

        func run() async throws {
            try await connection.withClient { client in print(FlowCommand.line(try await client.kill(id))) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a hospitalised flow again now, replaying its journal (after fixing what parked it); print it.")

        @OptionGroup var connection: Connection
        @Argument(help: "The flow's id.") var id: String

        func run() async throws {
            try await connection.withClient { client in print(FlowCommand.line(try await client.resume(id))) }
        }
    }
}
