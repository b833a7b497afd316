import ArgumentParser

/// The `hawser` command. Each subcommand group lives in its own file; adding one is one line here.
@main
struct Hawser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hawser",
        abstract: "Hawser: a highly available notary.",
        subcommands: [
            NotaryCommand.self,
            PartyCommand.self,
            RequestCommand.self,
            BenchCommand.self,
            ElectionCommand.self,
            AdminCommand.self,
            WatchdogCommand.self,
            NodeCommand.self,
            FlowCommand.self,
            VaultCommand.self,
            SimCommand.self,
            CheckCommand.self,
            NetworkCommand.self,
            WorkerCommand.self,
        ])
}

/// A failure of a command at run time: printed as `Error: <message>`, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
