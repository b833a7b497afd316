import ArgumentParser
import Foundation
import HawserCore
import HawserNode
import Hummingbird
import Logging

struct NotaryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notary", abstract: "Set up, run and restore a notary replica.",
        subcommands: [Init.self, Run.self, Identity.self, Restore.self])

    static let defaultDirectory = "hawser-data"

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a notary key and a configuration file (docs/configuration.md).")

        @Option(help: "Directory to create the key, configuration and data in.")
        var dir = NotaryCommand.defaultDirectory
        @Option(help: "The notary's legal name.")
        var name = NotaryConfiguration().name
        @Option(help: "HTTP port to listen on (0 picks a free one).")
        var port = 8080
        @Option(help: "Also serve the gRPC service on this port (0 picks a free one); none if omitted.")
        var grpcPort: Int?
        @Option(name: .customLong("authorise"), help: "An authorised party as NAME=BASE64KEY (repeatable).")
        var parties: [String] = []
        @Flag(help: "Also create a demo party key (demo-party.key) and authorise it.")
        var demoParty = false
        @Flag(help: "Accept any party that signs with the key it names (open notary, for demos).")
        var acceptAnyParty = false

        /// Everything that can be wrong is found before anything is written (a usage error, exit 64).
        func validate() throws {
            do {
                _ = try NotaryCommand.configuration(name: name, port: port, parties: parties, demoPartyKey: demoParty ? SigningKey() : nil,
                                                    acceptAnyParty: acceptAnyParty, grpcPort: grpcPort)
            } catch let error as ConfigurationError {
                throw ValidationError(error.problems.map(Self.namingOptions).joined(separator: "; "))
            }
            if FileManager.default.fileExists(atPath: dir + "/hawser.json") { throw ValidationError("\(dir)/hawser.json already exists") }
        }

        /// A problem with the configuration `init` would write, told by the options that set it.
        static func namingOptions(_ problem: String) -> String {
            if problem.hasPrefix("authorisedParties is empty") {
                return "nobody could notarise: give --authorise NAME=BASE64KEY, --demo-party or --accept-any-party"
            }
            var text = problem.hasPrefix("name ") ? "--" + problem : problem
            for (field, option) in [("grpc.port", "--grpc-port"), ("listen.port", "--port")] {
                text = text.replacingOccurrences(of: field, with: option)
            }
            return text.replacingOccurrences(of: #"authorisedParties(\[\d+\]\.name)?"#, with: "--authorise", options: .regularExpression)
        }

        func run() async throws {
            let summary = try NotaryCommand.initialise(directory: dir, name: name, port: port, parties: parties,
                                                       demoParty: demoParty, acceptAnyParty: acceptAnyParty, grpcPort: grpcPort)
            print(summary)
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the notary until SIGTERM or SIGINT.",
            discussion: "Without --config it uses \(NotaryCommand.defaultDirectory)/hawser.json, creating it (with a demo party) on first run.")

        @Option(help: "The configuration file.")
        var config: String?
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .info

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
            let path = config ?? NotaryCommand.defaultDirectory + "/hawser.json"
            if config == nil, !FileManager.default.fileExists(atPath: path) {
                FileHandle.standardError.write(Data((try NotaryCommand.initialise(
                    directory: NotaryCommand.defaultDirectory, name: NotaryConfiguration().name, port: 8080, parties: [],
                    demoParty: true, acceptAnyParty: false) + "\n").utf8))
            }
            let configuration = try NotaryConfiguration.load(path)
            if let problem = OpenFileLimit.raise(toFit: configuration.connectionCaps) { throw CLIError(problem) }
            let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
            let logger = Logger(label: "hawser.notary")
            guard let app = try await stoppableBySignals({
                try await NotaryNode.application(configuration: configuration, baseDirectory: base, logger: logger, onListening: { port in
                    // One JSON line on stdout, for scripts and tests that start the notary on port 0.
                    let line = "{\"event\":\"listening\",\"host\":\"\(configuration.listen.host)\",\"port\":\(port)}\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                }, onGRPCListening: { port in
                    let line = "{\"event\":\"grpc_listening\",\"host\":\"\(configuration.grpc?.host ?? "")\",\"port\":\(port)}\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                }).app
            }) else { return }
            try await runNamingElectionCodes(app)
        }
    }

    /// Writes a key and a configuration into `directory`; returns what it did, for people.
    static func initialise(directory: String, name: String, port: Int, parties: [String], demoParty: Bool,
                           acceptAnyParty: Bool, grpcPort: Int? = nil) throws -> String {
        // The configuration is whole and valid before the directory is made.
        let demoPartyKey = demoParty ? SigningKey() : nil
        let configuration = try configuration(name: name, port: port, parties: parties, demoPartyKey: demoPartyKey,
                                              acceptAnyParty: acceptAnyParty, grpcPort: grpcPort)
        let configPath = directory + "/hawser.json"
        guard !FileManager.default.fileExists(atPath: configPath) else {
            throw ValidationError("\(configPath) already exists")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lines = [String]()
        if let demoPartyKey {
            try KeyFile(name: demoPartyName, key: demoPartyKey).save(directory + "/demo-party.key")
            lines.append("created the demo party key \(directory)/demo-party.key")
        }
        let notaryKey = SigningKey()
        try KeyFile(name: name, key: notaryKey).save(directory + "/notary.key")
        try configuration.save(configPath)
        lines.append("created the notary key \(directory)/notary.key (public key \(notaryKey.publicKey.base64))")
        lines.append("created \(configPath); every option is described in docs/configuration.md")
        return lines.joined(separator: "\n")
    }

    static let demoPartyName = "O=Demo Party, L=London, C=GB"

    /// The configuration `init` writes, or every problem with the options.
    static func configuration(name: String, port: Int, parties: [String], demoPartyKey: SigningKey?, acceptAnyParty: Bool,
                              grpcPort: Int?) throws -> NotaryConfiguration {
        var configuration = NotaryConfiguration()
        configuration.name = name
        configuration.listen.port = port
        configuration.acceptAnyParty = acceptAnyParty
        if let grpcPort {
            configuration.grpc = GRPCConfiguration()
            configuration.grpc?.port = grpcPort
        }
        for text in parties { configuration.authorisedParties.append(try authorisedParty(text)) }
        if let demoPartyKey { configuration.authorisedParties.append(.init(name: demoPartyName, publicKey: demoPartyKey.publicKey.base64)) }
        let problems = configuration.problems
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        return configuration
    }

    /// Splits `--authorise NAME=BASE64KEY`. Both halves may hold `=` (X.500 names such as
    /// "O=Alice, C=GB"; base64 padding), so the key is the last 44 characters: the base64 length of
    /// an Ed25519 public key. A malformed key is then reported by the configuration's own check.
    static func authorisedParty(_ text: String) throws -> NotaryConfiguration.AuthorisedParty {
        let keyLength = 44
        guard text.count > keyLength + 1, text.dropLast(keyLength).last == "=" else {
            throw ValidationError("--authorise wants NAME=BASE64KEY (a 44-character base64 Ed25519 public key), got \(text)")
        }
        return .init(name: String(text.dropLast(keyLength + 1)), publicKey: String(text.suffix(keyLength)))
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {
}
