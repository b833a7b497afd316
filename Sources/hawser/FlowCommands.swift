import ArgumentParser
import Foundation
import HawserClient
import HawserCore

struct FlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow", abstract: "Start, follow, list, kill and resume flows on a node through its RPC API, or kill and park them in a stopped node's database.",
        subcommands: [Start.self, Status.self, Watch.self, List.self, Kill.self, Resume.self, Offline.self])

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a flow and print it (JSON); --wait follows it to the end.")

        @OptionGroup var connection: Connection
        @Argument(help: "The flow's name, e.g. IssueTokens or MoveTokens.")
        var flow: String
        @Argument(help: "Its arguments as a JSON object, e.g. '{\"owner\":\"O=Alice\",\"amount\":10}'.")
        var arguments: String
        @Option(help: "Idempotency key: starting again with it returns the same flow (default: a new UUID).")
        var clientRequestId: String?
        @Flag(help: "Follow the flow's progress and print its final state.")
        var wait = false

        func validate() throws {
            // Checked here so that the error speaks of what was typed, not of the request's body.
            let parsed: Any
            do { parsed = try JSONSerialization.jsonObject(with: Data(arguments.utf8), options: .fragmentsAllowed) } catch {
                let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
                throw ValidationError("the arguments are not valid JSON: \(reason) (in \(arguments.prefix(200)))")
            }
            guard parsed is [String: Any] else {
                throw ValidationError("the arguments must be a JSON object of the flow's fields, e.g. '{\"owner\":\"O=Alice\",\"amount\":10}', not \(arguments.prefix(200))")
            }
        }

        func run() async throws {
            var ended: String?
            try await connection.withClient { client in
                let started = try await client.startFlow(flow, arguments: Array(arguments.utf8),
                                                         clientRequestId: clientRequestId ?? UUID().uuidString.lowercased())
                let final = wait ? try await FlowCommand.follow(started.id, client: client) : started
                print(FlowCommand.line(final))
                ended = final.status
            }
            if wait { try FlowCommand.exit(forEnd: ended) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a flow (JSON) by id or by --client-request-id.")

        @OptionGroup var connection: Connection
        @Argument(help: "The flow's id.")
        var id: String?
        @Option(help: "Find the flow by the client request id it was started with.")
        var clientRequestId: String?

        // In `validate`, so that ArgumentParser prints this command's usage with it.
        func validate() throws {
            guard (id == nil) != (clientRequestId == nil) else { throw ValidationError("give one of a flow id and --client-request-id") }
        }

        func run() async throws {
            try await connection.withClient { client in
                if let clientRequestId {
                    guard let flow = try await client.flow(clientRequestId: clientRequestId) else {
                        throw CLIError("no flow was started with client request id \(clientRequestId)")
                    }
                    print(FlowCommand.line(flow))
                } else if let id {
                    print(FlowCommand.line(try await client.flow(id)))
                }
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a flow's progress as it happens (one JSON line per event), reconnecting if needed, then its final state.")

        @OptionGroup var connection: Connection
        @Argument(help: "The flow's id.")
        var id: String

        func run() async throws {
            var ended: String?
            try await connection.withClient { client in
                let final = try await FlowCommand.follow(id, client: client)
                print(FlowCommand.line(final))
                ended = final.status
            }
            try FlowCommand.exit(forEnd: ended)
        }
    }

    /// Prints a flow's events as they come and returns its final state. When the stream told the
    /// end but the final state cannot be read (every node of a pair standing by), the error says
    /// which end was seen, so that "completed, result unknown" is not taken for a failure.
    static func follow(_ id: String, client: NodeClient) async throws -> NodeFlow {
        var seen: String?
        do {
            return try await client.watch(id) { event in
                if let status = event.status { seen = status }
                printNow(line(event))
            }
        } catch {
            guard let seen, ["completed", "failed", "killed", "hospitalised"].contains(seen) else { throw error }
            throw CLIError("flow \(id) is \(seen), but its final state could not be read: \(error)")
        }
    }

    /// A followed flow's end as the exit status, for scripts: 0 completed, 1 any other end
    /// (failed, killed) or a flow parked in the hospital.
    static func exit(forEnd status: String?) throws {
        if status != "completed" { throw ExitCode(1) }
    }

    /// Prints a line of a stream as it comes: into a pipe, standard output is block-buffered, and
    /// a reader (`flow watch ID | jq`) saw nothing until the flow ended.
    static func printNow(_ line: String) {
        print(line)
        fflush(nil)  // every stream (naming `stdout` is not concurrency-safe)
    }

    static func line(_ event: NodeFlowEvent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(event)) ?? Data(), as: UTF8.self)
    }

    /// The flow as one JSON line; numbers in its result are printed exactly as the node sent them.
    static func line(_ flow: NodeFlow) -> String {
        var object: [String: JSONValue] = ["id": .string(flow.id), "flow": .string(flow.flow), "status": .string(flow.status),
                                           "attempts": .number(JSONNumber(flow.attempts))]
        if let id = flow.clientRequestId { object["clientRequestId"] = .string(id) }
        if let createdAt = flow.createdAt { object["createdAt"] = .string(createdAt) }
        if let updatedAt = flow.updatedAt { object["updatedAt"] = .string(updatedAt) }
        if let retryAt = flow.retryAt { object["retryAt"] = .string(retryAt) }
        if let error = flow.error { object["error"] = .string(error) }
        if let result = flow.result, let value = try? JSONValue(parsing: [UInt8](result)) { object["result"] = value }
        return String(decoding: JSONValue.object(object).bytes, as: UTF8.self)
    }
}
