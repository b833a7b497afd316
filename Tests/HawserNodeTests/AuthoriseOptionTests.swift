import HawserCore
import Testing
@testable import hawser

/// `hawser notary init --authorise NAME=BASE64KEY`: names and keys both contain `=`.
@Suite(.timeLimit(.minutes(10))) struct AuthoriseOptionTests {
    @Test func splitsAnX500NameFromAPaddedKey() throws {
        let key = SigningKey().publicKey.base64
        #expect(key.count == 44 && key.hasSuffix("="))
        let party = try NotaryCommand.authorisedParty("O=Alice, L=London, C=GB=" + key)
        #expect(party.name == "O=Alice, L=London, C=GB")
        #expect(party.publicKey == key)
    }

    @Test func refusesTextWithoutAKey() {
        #expect(throws: (any Error).self) { try NotaryCommand.authorisedParty("O=Alice") }
        #expect(throws: (any Error).self) { try NotaryCommand.authorisedParty("O=Alice" + String(repeating: "A", count: 44)) }
    }
}
