import ArgumentParser
import Foundation
import HawserClient
import HawserCore
import HawserNode

extension NotaryCommand {
    /// `hawser notary identity`: the notary's public key, which `hawser request sign --notary-key`
    /// and clients that pin the notary need, printed on its own so that scripts take it as is.
    struct Identity: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the notary's public key (base64): the one requests are signed over and answers are checked with.",
            discussion: """
                Reads the key file the configuration names, so the notary need not run. With --url it asks a running \
                notary instead (GET /v1/identity). Use it as: NOTARY_KEY=$(hawser notary identity)
                """)

        @Option(help: "The configuration file (default: \(NotaryCommand.defaultDirectory)/hawser.json).") var config: String?
        @Option(help: "Ask this running notary instead, e.g. http://127.0.0.1:8080.") var url: String?
        @Flag(help: "Print {\"name\":...,\"publicKey\":...} instead of the key alone.") var json = false

        func validate() throws {
            if config != nil, url != nil { throw ValidationError("give --config or --url, not both") }
        }

        func run() async throws {
            let identity: Party
            if let url {
                let client: NotaryClient
                do { client = try NotaryClient(urls: [url], retryPolicy: .none) } catch { throw CLIError("--url: \(error)") }
                do {
                    identity = try await client.identity()
                } catch {
                    try? await client.shutdown()
                    throw CLIError("cannot ask \(url) who it is: \(error)")
                }
                try await client.shutdown()
            } else {
                let path = config ?? NotaryCommand.defaultDirectory + "/hawser.json"
                guard FileManager.default.fileExists(atPath: path) else {
                    throw CLIError("\(path) does not exist: run `hawser notary run` (or `hawser notary init`) first, or give --config or --url")
                }
                let configuration = try NotaryConfiguration.load(path)
                let base = URL(fileURLWithPath: path).deletingLastPathComponent()
                let keyFile = configuration.keyFile.hasPrefix("/") ? configuration.keyFile : base.appendingPathComponent(configuration.keyFile).path
                identity = Party(name: configuration.name, publicKey: try KeyFile.load(keyFile).key.publicKey)
            }
            if json {
                let object = ["name": identity.name, "publicKey": identity.publicKey.base64]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
                             as: UTF8.self))
            } else {
                print(identity.publicKey.base64)
            }
        }
    }
}
