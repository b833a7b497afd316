import ArgumentParser
import Foundation
import HawserCore
import HawserNode

struct PartyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "party", abstract: "Manage the keys of parties that ask a notary to notarise.",
        subcommands: [New.self])

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new Ed25519 key for a party.",
            discussion: "Writes {\"name\": ..., \"seed\": <base64>} readable by its owner only (mode 0600), "
                + "then prints the name and the public key to add to the notary's list of parties.")

        @Option(help: "The party's name.") var name: String
        @Option(help: "The key file to write; an existing file is never overwritten.") var out: String

        func validate() throws {
            // A node and a notary refuse a blank party name; a key made for one would be useless.
            if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--name must not be empty or blank") }
            if out.isEmpty { throw ValidationError("--out must name a file") }
            // A usage error, as node init's and notary init's refusals of a file there are (it was
            // exit 1, "invalid configuration"); `save` refuses too, should one appear meanwhile.
            if FileManager.default.fileExists(atPath: out) { throw ValidationError("--out \(out) already exists; an existing key file is never overwritten") }
        }

        func run() async throws {
            let key = SigningKey()
            do { try KeyFile(name: name, key: key).save(out) } catch { throw CLIError("\(error)") }
            print("name: \(name)")
            print("publicKey: \(key.publicKey.base64)")
        }
    }
}
