import ArgumentParser
import HawserClient
import HawserCore
import HawserNode
import HawserWire

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

        func run() async throws {
            guard let notary = PublicKey(base64: notaryKey) else {
                throw ValidationError("--notary-key is not a base64 Ed25519 public key")
            }
            let party: (name: String, key: SigningKey)
            do { party = try KeyFile.load(key) } catch { throw CLIError("\(error)") }
            let draft: RequestDraft
            do {
                draft = try RequestDraft(txIdHex: txId, inputs: inputs, references: references, from: from, until: until)
            } catch { throw CLIError(error.message) }
            print(draft.signed(requesterName: party.name, key: party.key, notary: notary).jsonText)
        }
    }
}
