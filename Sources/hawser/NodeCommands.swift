import ArgumentParser
import Foundation
import HawserNode
import Logging

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Set up and run the all-in-one node (embedded notary, flows, vault, RPC API).",
        subcommands: [Init.self, Run.self, HashPassword.self])

    static let defaultDirectory = "hawser-node"

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create keys and a node configuration file (docs/node.md).")

        @Option(help: "Directory to create the keys, configuration and data in.")
        var dir = NodeCommand.defaultDirectory
        @Option(help: "RPC port to listen on (0 picks a free one).")
        var port = 8090
        @Option(name: .customLong("party"), help: "A party the node hosts (repeatable; default O=Alice and O=Bob).")
        var parties: [String] = []
        @Option(help: "The RPC user to create with every permission.")
        var user = "admin"
        @Option(help: "Its password.")
        var password: String

        func run() async throws {
            print(try Node.initialise(directory: dir, port: port, parties: parties.isEmpty ? ["O=Alice", "O=Bob"] : parties,
                                      username: user, password: password))
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the node until SIGTERM or SIGINT.",
            discussion: "Prints {\"event\":\"listening\",...,\"port\":N} on standard output once the RPC API accepts connections.")

        @Option(help: "The configuration file.")
        var config = NodeCommand.defaultDirectory + "/node.json"
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .info

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
            let configuration = try NodeConfiguration.load(config)
            let base = URL(fileURLWithPath: config).deletingLastPathComponent().path
            let (app, _) = try Node.application(configuration: configuration, baseDirectory: base,
                                                logger: Logger(label: "hawser.node"), onListening: { port in
                let line = "{\"event\":\"listening\",\"host\":\"\(configuration.listen.host)\",\"port\":\(port)}\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            })
            try await app.runService()
        }
    }

    struct HashPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hash-password", abstract: "Print the passwordHash of an RPC user for node.json.")

        @Argument(help: "The password.")
        var password: String

        func run() async throws {
            print(PasswordHash.make(password))
        }
    }
}
