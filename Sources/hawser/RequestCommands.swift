import ArgumentParser
import HawserClient
import HawserCore
import HawserNode
import HawserWire
import Notary

struct RequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request", abstract: "Make notarisation requests by hand.", subcommands: [Sign.self])

    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a notarisation request and print it as the API's JSON.",
            discussion: """
                Pipe the output to the notary, e.g.
                  hawser request sign --key alice.key --notary-key <base64> --input <txid>:0 \\
                    | curl -sS -H 'Content-Type: application/json' --data @- http://127.0.0.1:8080/v1/notarise
                """)

        @Option(help: "The requesting party's key file (from `hawser party new`).") var key: String
        @Option(help: "The notary's public key (base64), which the signature names.") var notaryKey: String
        @Option(help: "The transaction id (64 hex digits); random if omitted.") var txId: String?
        @Option(name: .customLong("input"), help: "A state ref to spend, <txid hex>:<index>; repeatable.")
        var inputs: [String] = []
        @Option(name: .customLong("reference"), help: "A state ref to check unspent, <txid hex>:<index>; repeatable.")
        var references: [String] = []
        @Option(help: "Time window start (RFC 3339, inclusive).") var from: String?
        @Option(help: "Time window end (RFC 3339, exclusive).") var until: String?

        /// Bad option values are usage errors (exit 64), as every command's are; so is a request
        /// any notary would refuse (none of --input, --reference, --from and --until is nothing
        /// to notarise): the notary's own checks run here, on the request signed with a throwaway key.
        func validate() throws {
            guard let notary = PublicKey(base64: notaryKey) else {
                throw ValidationError("--notary-key is not a base64 Ed25519 public key")
            }
            do {
                let trial = try draft().signed(requesterName: "O=Trial", key: SigningKey(), notary: notary)
                try RequestValidator(notary: notary, authorisedParties: nil, maxStateRefs: NotarisationRequest.defaultMaxStateRefs)
                    .check(trial)
            } catch {
                throw ValidationError("a notary would refuse this request (\(error.code.rawValue)): \(error.message)")
            }
        }

        func run() async throws {
            let party: (name: String, key: SigningKey)
            do { party = try KeyFile.load(key) } catch { throw CLIError("\(error)") }
            print(try draft().signed(requesterName: party.name, key: party.key, notary: PublicKey(base64: notaryKey)!).jsonText)
        }

        private func draft() throws(APIError) -> RequestDraft {
            try RequestDraft(txIdHex: txId, inputs: inputs, references: references, from: from, until: until)
        }
    }
}
