import ArgumentParser
import Foundation
import Membership

/// `hawser network`: the network definition (docs/network.md).
struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "Work with a network definition: its members, their keys and addresses, its notaries.",
        subcommands: [NetworkInit.self, Check.self])

    /// `hawser network check FILE`: whether a node would take the file. Exit status 0: usable;
    /// 1: a problem, one line each (the node would refuse to start with it, or keep its version).
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a network definition file as a node loads it (docs/network.md).")

        @Argument(help: "The network definition (JSON).")
        var file: String

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            do {
                let definition = try NetworkDefinition.load(data)
                print("version \(definition.version): \(definition.nodes.count) nodes, "
                      + "\(definition.nodes.reduce(0) { $0 + $1.parties.count }) parties, \(definition.notaries.count) notaries")
            } catch {
                switch error {
                case .invalid(let problems): problems.forEach { print($0) }
                default: print(error)
                }
                throw ExitCode(1)
            }
        }
    }
}
