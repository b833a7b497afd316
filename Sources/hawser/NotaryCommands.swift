import ArgumentParser

struct NotaryCommand: AsyncParsableCommand { static let configuration = CommandConfiguration(commandName: "notary", abstract: "Run and set up a notary.") }
