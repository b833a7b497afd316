import ArgumentParser
import Foundation
import HawserNode
import Logging

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Set up and run the all-in-one node (its notary, embedded or remote; flows, vault, RPC API).",
        subcommands: [Init.self, Run.self, Status.self, HashPassword.self, Repartition.self])

    static let defaultDirectory = "hawser-node"

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create keys and a node configuration file (docs/node.md).")

        @Option(help: "Directory to create the keys, configuration and data in.")
        var dir = NodeCommand.defaultDirectory
        @Option(help: "RPC port to listen on (0 picks a free one).")
        var port = 8090
        @Option(name: .customLong("party"), help: "A party the node hosts, with a new key (repeatable; default O=Alice and O=Bob unless --party-key is given).")
        var parties: [String] = []
        @Option(help: "The RPC user to create with every permission.")
        var user = "admin"
        @Option(help: "Its password (default: a random one, written to <dir>/\(NodeCommand.passwordFile)).")
        var password: String?
        @Option(name: .customLong("party-key"), help: "An existing party key file (name and seed) the node hosts too, e.g. one a notary already authorises (repeatable).")
        var partyKeys: [String] = []
        @Option(name: .customLong("notary-url"), help: "Use the remote notary at this base URL instead of an embedded one (repeatable: every replica or front end of one notary).")
        var notaryURLs: [String] = []
        @Option(help: "The remote notary's Ed25519 public key, base64 (its answers are checked against it).")
        var notaryKey: String?
        @Option(help: "The remote notary's name (default: \(NodeConfiguration.defaultNotaryName)).")
        var notaryName: String?

        /// Options that cannot make a valid node directory are usage errors (exit 64) naming the
        /// option, as `notary init`'s are: the configuration `init` would write is checked first.
        func validate() throws {
            if password?.isEmpty == true { throw ValidationError("--password must not be empty (leave it out for a random one)") }
            if notaryURLs.isEmpty != (notaryKey == nil) { throw ValidationError("--notary-url and --notary-key go together") }
            if notaryURLs.isEmpty, notaryName != nil { throw ValidationError("--notary-name names a remote notary: give --notary-url and --notary-key too") }
            do {
                // One iteration: the hash is only checked for its form here.
                _ = try Node.initialConfiguration(directory: dir, port: port, parties: NodeCommand.hostedParties(parties, partyKeys),
                                                  partyKeyFiles: partyKeys, username: user,
                                                  passwordHash: PasswordHash.make("unchecked", iterations: 1), notary: notary)
            } catch let error as ConfigurationError {
                throw ValidationError(error.problems.map(Self.namingOptions).joined(separator: "; "))
            }
        }

        /// A problem with the configuration `init` would write, told by the options that set it.
        static func namingOptions(_ problem: String) -> String {
            var text = problem
            for (field, option) in [("listen.port", "--port"), ("parties:", "--party:"), ("rpcUsers:", "--user:"),
                                    ("notary.urls", "--notary-url"), ("notary.publicKey", "--notary-key"), ("notary.name", "--notary-name"),
                                    ("cannot read key file", "--party-key: cannot read key file")] {
                text = text.replacingOccurrences(of: field, with: option)
            }
            return text
        }

        private var notary: NodeNotaryConfiguration {
            notaryKey.map { NodeNotaryConfiguration.remote(urls: notaryURLs, publicKey: $0, name: notaryName) } ?? NodeNotaryConfiguration()
        }

        func run() async throws {
            print(try NodeCommand.initialise(directory: dir, port: port, parties: parties, partyKeys: partyKeys, user: user,
                                             password: password, notary: notary))
        }
    }

    /// Where a generated RPC password is kept, readable only by its owner; `hawser flow` reads it
    /// when given no password.
    static let passwordFile = "rpc-password"

    /// The parties `init` makes keys for: O=Alice and O=Bob unless any is named.
    static func hostedParties(_ parties: [String], _ partyKeys: [String]) -> [String] {
        parties.isEmpty && partyKeys.isEmpty ? ["O=Alice", "O=Bob"] : parties
    }

    /// Creates a node directory (see `Node.initialise`); without `password` makes a random one and
    /// stores it in the directory. Returns what it did, for people.
    static func initialise(directory: String, port: Int, parties: [String], partyKeys: [String] = [], user: String, password: String?,
                           notary: NodeNotaryConfiguration = NodeNotaryConfiguration()) throws -> String {
        let chosen = password ?? (0..<24).map { _ in String("abcdefghijkmnpqrstuvwxyz23456789".randomElement()!) }.joined()
        // A refused start leaves nothing behind: a directory this call made is removed again.
        let existed = FileManager.default.fileExists(atPath: directory)
        var lines: String
        do {
            lines = try Node.initialise(directory: directory, port: port, parties: hostedParties(parties, partyKeys),
                                        partyKeyFiles: partyKeys, username: user, password: chosen, notary: notary)
        } catch {
            if !existed { try? FileManager.default.removeItem(atPath: directory) }
            throw error
        }
        if password == nil {
            let path = directory + "/" + passwordFile
            guard FileManager.default.createFile(atPath: path, contents: Data((chosen + "\n").utf8),
                                                 attributes: [.posixPermissions: 0o600]) else {
                throw CLIError("could not write \(path)")
            }
            lines += "\nthe password of `\(user)` is in \(path) (`hawser flow` reads it from there)"
        }
        return lines
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the node until SIGTERM or SIGINT.",
            discussion: """
                Without --config it uses \(NodeCommand.defaultDirectory)/node.json, creating it on first run (parties O=Alice and \
                O=Bob, RPC user admin with a random password kept in \(NodeCommand.defaultDirectory)/\(NodeCommand.passwordFile)). \
                Prints {"event":"listening",...,"port":N} on standard output once the RPC API accepts connections; a \
                hot-hot node also prints {"event":"serving","partition":K,"t":...} once it runs partition K's flows and \
                {"event":"released","partition":K,"t":...} when it stops (t: CLOCK_MONOTONIC nanoseconds).
                """)

        @Option(help: "The configuration file.")
        var config: String?
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .info

        func run() async throws {
            NodeCommand.bootstrapLogging(at: logLevel)
            let config = self.config ?? NodeCommand.defaultDirectory + "/node.json"
            if self.config == nil, !FileManager.default.fileExists(atPath: config) {
                FileHandle.standardError.write(Data((try NodeCommand.initialise(
                    directory: NodeCommand.defaultDirectory, port: 8090, parties: [], user: "admin", password: nil) + "\n").utf8))
            }
            let configuration = try NodeConfiguration.load(config)
            if let problem = OpenFileLimit.raise(toFit: configuration.connectionCaps) { throw CLIError(problem) }
            let base = URL(fileURLWithPath: config).deletingLastPathComponent().path
            guard let app = try await stoppableBySignals({
                try await Node.application(configuration: configuration, baseDirectory: base,
                                           logger: Logger(label: "hawser.node"), onListening: { port in
                    let line = "{\"event\":\"listening\",\"host\":\"\(configuration.listen.host)\",\"port\":\(port)}\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                }, onPartition: { partition, serving in
                    emitEvent(["event": serving ? "serving" : "released", "partition": partition])
                }).app
            }) else { return }
            try await runNamingElectionCodes(app)
        }
    }

    /// Logs to standard error at `level` until `hawser admin config set log.level` changes it
    /// (docs/node.md): the node's processes (`node run`, `worker run`).
    static func bootstrapLogging(at level: Logger.Level) {
        ProcessLogLevel.shared.start(at: level)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace  // the level is ProcessLogHandler's
            return ProcessLogHandler(handler)
        }
    }

    /// Runs `body` with the configuration `config` names, the directory its relative paths
    /// resolve against, and a logger of errors only; its failures are the CLI's errors.
    static func using<T>(_ config: String, _ body: (NodeConfiguration, String, Logger) async throws -> T) async throws -> T {
        var logger = Logger(label: "hawser.node")
        logger.logLevel = .error
        do {
            return try await body(try NodeConfiguration.load(config), URL(fileURLWithPath: config).deletingLastPathComponent().path, logger)
        } catch {
            throw CLIError("\(error)")
        }
    }

    struct Repartition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Split a stopped hot-hot node's flows into the configuration's ha.partitions.",
            discussion: """
                A hot-hot node's database records how many partitions its flows are split into, and a process whose \
                ha.partitions differs refuses to start. With every process of the node stopped, this records the count of \
                the configuration given; start every process with that count afterwards. Refused while any process stands in \
                a partition election of the old count or the new one, or holds the data directory's lock on this machine.
                """)

        @Option(help: "The node's configuration file (ha.mode hot-hot), with the new ha.partitions.")
        var config = NodeCommand.defaultDirectory + "/node.json"

        func run() async throws {
            print(try await NodeCommand.using(config) { try await NodeRepartition.apply(configuration: $0, baseDirectory: $1, logger: $2) })
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a running hot-hot node's workers, partitions, epochs and lag as JSON.",
            discussion: """
                Reads the node's partition elections (ha.election) and its database while the node runs: `workers` (each \
                standing process, its addresses and the partitions it leads) and `partition` (for each: its leader, the epoch \
                it leads under, its preferred master, and its lag: its unfinished flows, those in the hospital, and how long \
                the oldest has waited since its last write). See docs/node.md, "Hot-hot".
                """)

        @Option(help: "The configuration file of one of the node's processes (ha.mode hot-hot).")
        var config = NodeCommand.defaultDirectory + "/node.json"

        func run() async throws {
            let status = try await NodeCommand.using(config) { try await HotHotStatus.read(configuration: $0, baseDirectory: $1, logger: $2) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
        }
    }

    struct HashPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hash-password", abstract: "Print the passwordHash of an RPC user for node.json.")

        @Argument(help: "The password.")
        var password: String

        func validate() throws {
            if password.isEmpty { throw ValidationError("the password must not be empty") }
        }

        func run() async throws {
            print(PasswordHash.make(password))
        }
    }
}
