import ArgumentParser
import Foundation
import HawserNode

/// `hawser admin config`: the node's run-time settings (the configuration service,
/// docs/node.md "Run-time settings"), recorded in its database and applied by every process.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or change a node's run-time settings (applied by every process of the node within a second).",
        subcommands: [Show.self, Set.self, Unset.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every run-time setting and the value recorded (null: each process's start-up value), as JSON.")
        @Option(help: "The configuration file of one of the node's processes.") var config = NodeCommand.defaultDirectory + "/node.json"

        func run() async throws {
            let values = try await NodeCommand.using(config) { try await RuntimeSettingsStore.show(configuration: $0, baseDirectory: $1, logger: $2) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(values.mapValues { $0.map(JSONNull.value) ?? .null }), as: UTF8.self))
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a run-time setting; a bad name or value is refused and nothing changes.")
        @Argument(help: "The setting, e.g. log.level.") var name: String
        @Argument(help: "Its value.") var value: String
        @Option(help: "The configuration file of one of the node's processes.") var config = NodeCommand.defaultDirectory + "/node.json"

        func run() async throws {
            let recorded = try await NodeCommand.using(config) { try await RuntimeSettingsStore.set(name, value, configuration: $0, baseDirectory: $1, logger: $2) }
            print("\(name) is \(recorded ?? value): every process of the node applies it within a second")
        }
    }

    struct Unset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a run-time setting: each process returns to its start-up value.")
        @Argument(help: "The setting, e.g. log.level.") var name: String
        @Option(help: "The configuration file of one of the node's processes.") var config = NodeCommand.defaultDirectory + "/node.json"

        func run() async throws {
            _ = try await NodeCommand.using(config) { try await RuntimeSettingsStore.set(name, nil, configuration: $0, baseDirectory: $1, logger: $2) }
            print("\(name) is unset: every process of the node returns to its start-up value within a second")
        }
    }

    /// A JSON string or null.
    enum JSONNull: Encodable {
        case value(String), null
        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .value(let text): try c.encode(text)
            case .null: try c.encodeNil()
            }
        }
    }
}
