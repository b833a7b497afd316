import ArgumentParser
import Foundation
import HawserClient
import HawserNode

extension FlowCommand {
    /// How `hawser flow` and `hawser vault` reach a node and log in. Each setting is taken from
    /// its option, else from the environment, else from the node directory `hawser node run`
    /// made in the current directory (docs/node.md).
    struct Connection: ParsableArguments {
        @Option(name: .customLong("node"), help: """
            A node's RPC base URL, repeatable for failover (default: $HAWSER_NODE, comma-separated, else the listen address \
            in \(NodeCommand.defaultDirectory)/node.json, else \(Connection.defaultURL)).
            """)
        var nodes: [String] = []
        @Option(help: "RPC user name (default: $HAWSER_USER, else admin).")
        var user: String?
        @Option(help: "RPC password (default: $HAWSER_PASSWORD, else the one `hawser node run` made in \(NodeCommand.defaultDirectory)/\(NodeCommand.passwordFile)).")
        var password: String?

        static let defaultURL = "http://127.0.0.1:8090"

        /// Runs `body` with a client, shutting it down afterwards whatever happens.
        func withClient(_ body: (NodeClient) async throws -> Void) async throws {
            let environment = ProcessInfo.processInfo.environment
            let stored = (try? String(contentsOfFile: NodeCommand.defaultDirectory + "/" + NodeCommand.passwordFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let password = password ?? environment["HAWSER_PASSWORD"] ?? stored else {
                throw ValidationError("give --password, set HAWSER_PASSWORD, or run from the directory holding \(NodeCommand.defaultDirectory)/")
            }
            let urls = try Self.urls(given: nodes, environment: environment, configuration: NodeCommand.defaultDirectory + "/node.json")
            for url in urls where (try? NotaryClient.baseURL(url)) == nil {
                throw ValidationError("--node (or HAWSER_NODE) `\(url.prefix(200))` is not an http:// or https:// base URL such as \(Self.defaultURL)")
            }
            let client = NodeClient(urls: urls, username: user ?? environment["HAWSER_USER"] ?? "admin", password: password)
            do {
                try await body(client)
            } catch {
                try? await client.shutdown()
                throw CLIError("\(error)")
            }
            try await client.shutdown()
        }

        /// The node URLs: `given`, else `HAWSER_NODE` (comma-separated), else the listen address
        /// of the node configuration at `configuration` (if it exists and names a fixed port),
        /// else `defaultURL`.
        static func urls(given: [String], environment: [String: String], configuration: String) throws -> [String] {
            if !given.isEmpty { return given }
            if let text = environment["HAWSER_NODE"] {
                let urls = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                if !urls.isEmpty { return urls }
            }
            // A file that is there but unreadable is said, not passed over for the default address
            // (which some other node, or none, may answer).
            var listen: NotaryConfiguration.Listen?
            if FileManager.default.fileExists(atPath: configuration) {
                do { listen = try NodeConfiguration.load(configuration).listen } catch {
                    throw ValidationError("\(configuration) names no node to reach (\(error)); give --node or set HAWSER_NODE")
                }
            }
            if let listen, listen.port != 0 {
                // A node listening on every address is reached on loopback from here.
                let host = switch listen.host {
                case "0.0.0.0": "127.0.0.1"
                case "::": "[::1]"
                case let host where host.contains(":"): "[\(host)]"
                default: listen.host
                }
                return ["http://\(host):\(listen.port)"]
            }
            return [defaultURL]
        }
    }
}
