import Flows
import Foundation
import HawserCore
import Testing
import TokenSample

/// The receiving side's checks (`TokenChecks`) alone: no node, no notary, no session. Each
/// forged input is the honest one with one thing changed, and must be refused for that thing.
@Suite(.timeLimit(.minutes(10))) struct TokenNetworkChecksTests {
    let alice = sampleKeys.signingKey(of: "O=Alice")!
    let bob = sampleKeys.signingKey(of: "O=Bob")!
    let directory = tokenDirectory

    /// A committed answer for `txId`, signed by `signer`, in a batch of one.
    func answer(_ txId: SecureHash, _ outcome: NotarisationOutcome = .committed, signer: SigningKey = notaryKey) -> NotarisationAnswer {
        let tree = MerkleTree(leaves: [NotarisationAnswer.leafHash(txId: txId, outcome: outcome)])
        return NotarisationAnswer(txId: txId, outcome: outcome, proof: tree.proof(forLeaf: 0),
                                  signature: signer.sign(NotarisationAnswer.batchSigningPayload(root: tree.root)))
    }

    var move: TokenTransaction {
        TokenTransaction(command: "move", inputs: [StateRef(txId: .sha256([1]), index: 0)],
                         outputs: [Token(owner: "O=Bob", amount: 30), Token(owner: "O=Alice", amount: 70)], nonce: 7)
    }

    func request(_ tx: TokenTransaction, key: SigningKey? = nil) -> NotarisationRequest {
        NotarisationRequest.signed(txId: tx.id, inputs: tx.inputs, requesterName: "O=Alice", key: key ?? alice,
                                   notary: notaryKey.publicKey)
    }

    func check(_ payment: TokenPayment, from sender: String = "O=Alice") throws(TokenRefusal) -> TokenTransaction {
        try TokenChecks.payment(try! FlowCoding.encode(payment), from: sender, to: "O=Bob", directory: directory.party(named:),
                                notary: AnswerVerifier(notaryKey: notaryKey.publicKey))
    }

    func refusal(_ payment: TokenPayment, from sender: String = "O=Alice") -> String? {
        do { _ = try check(payment, from: sender) } catch { return error.reason }
        return nil
    }

    @Test func anHonestPaymentPasses() throws {
        let tx = move
        #expect(try check(TokenPayment(transaction: tx, request: request(tx), answer: answer(tx.id))) == tx)
    }

    @Test func eachForgeryIsRefusedForWhatWasForged() {
        let tx = move, other = TokenTransaction(command: "move", inputs: move.inputs, outputs: move.outputs, nonce: 8)
        var wrongInputs = request(tx)
        wrongInputs.inputs = []
        wrongInputs.signature = alice.sign(wrongInputs.signingPayload(notary: notaryKey.publicKey))
        let badBytes = TokenPayment(transactionBytes: Array(tx.canonicalBytes.dropLast()), request: request(tx), answer: answer(tx.id))
        let toCarol = TokenTransaction(command: "move", inputs: move.inputs, outputs: [Token(owner: "O=Carol", amount: 30)], nonce: 7)
        let skim = TokenTransaction(command: "move", inputs: move.inputs,
                                    outputs: [Token(owner: "O=Bob", amount: 30), Token(owner: "O=Carol", amount: 70)], nonce: 7)
        let issue = TokenTransaction(command: "issue", inputs: [], outputs: [Token(owner: "O=Bob", amount: 30)], nonce: 7)
        let cases: [(TokenPayment, String, String)] = [
            (badBytes, "O=Alice", "the transaction does not decode: truncated: wanted 8 bytes"),
            (TokenPayment(transaction: other, request: request(tx), answer: answer(tx.id)), "O=Alice",
             "the notarisation request is for transaction \(tx.id.hex), not \(other.id.hex)"),
            (TokenPayment(transaction: tx, request: wrongInputs, answer: answer(tx.id)), "O=Alice",
             "the notarisation request does not spend exactly the transaction's inputs"),
            (TokenPayment(transaction: tx, request: request(tx), answer: answer(tx.id)), "O=Carol",
             "the notarisation request is O=Alice's, not O=Carol's, who sent it"),
            (TokenPayment(transaction: tx, request: forgedSignature(tx), answer: answer(tx.id)), "O=Alice",
             "the notarisation request is not signed with O=Alice's key"),
            (TokenPayment(transaction: tx, request: request(tx), answer: answer(tx.id, signer: carolKey)), "O=Alice",
             "the notary's answer does not verify: the signature over the batch root does not verify under the notary key"),
            (TokenPayment(transaction: tx, request: request(tx), answer: answer(other.id)), "O=Alice",
             "the notary's answer does not verify: the answer is for transaction \(other.id.hex)"),
            (TokenPayment(transaction: tx, request: request(tx), answer: answer(tx.id, .conflict([])) ), "O=Alice",
             "the notary did not commit transaction \(tx.id.hex): conflict"),
            (TokenPayment(transaction: toCarol, request: request(toCarol), answer: answer(toCarol.id)), "O=Alice",
             "the transaction's first output does not pay O=Bob"),
            (TokenPayment(transaction: skim, request: request(skim), answer: answer(skim.id)), "O=Alice",
             "the transaction has an output for O=Carol that is not O=Alice's change"),
            (TokenPayment(transaction: issue, request: request(issue), answer: answer(issue.id)), "O=Alice",
             "the transaction's command is `issue`, not `move`"),
        ]
        for (payment, sender, reason) in cases {
            #expect(refusal(payment, from: sender) == reason)
        }
        // A sender outside the network: its request names it, and the directory does not.
        let zed = SigningKey(seed: [UInt8](repeating: 26, count: 32))!
        let fromZed = NotarisationRequest.signed(txId: tx.id, inputs: tx.inputs, requesterName: "O=Zed", key: zed,
                                                 notary: notaryKey.publicKey)
        #expect(refusal(TokenPayment(transaction: tx, request: fromZed, answer: answer(tx.id)), from: "O=Zed")
                == "O=Zed is not a party of the network")
        #expect(refusal(payload: Array("nope".utf8))?.hasPrefix("the payment does not decode: ") == true)
    }

    /// A request naming Alice's key, signed by another.
    func forgedSignature(_ tx: TokenTransaction) -> NotarisationRequest {
        var forged = request(tx)
        forged.signature = carolKey.sign(forged.signingPayload(notary: notaryKey.publicKey))
        return forged
    }

    /// A committed transaction whose request another key signed, and named, than the one the
    /// directory gives the sender: the notary took that key, so the tokens are spent; the
    /// receiver waits for a definition that settles the key, it does not refuse for good. It
    /// refused for good, and a definition edit undone lost a payment's tokens (found from outside).
    /// Not committed, the same request is refused for good.
    @Test func aCommittedPaymentSignedWithAKeyTheDefinitionDoesNotGiveWaitsForTheDefinition() {
        let tx = move
        let payment = TokenPayment(transaction: tx, request: request(tx, key: carolKey), answer: answer(tx.id))
        do {
            _ = try check(payment)
            Issue.record("taken")
        } catch {
            #expect(error.waitsForTheDefinition, "\(error)")
            #expect(error.reason.hasPrefix("the notarisation request is signed with a key the network definition in use does not give O=Alice"))
        }
        do {
            _ = try check(TokenPayment(transaction: tx, request: request(tx, key: carolKey), answer: answer(tx.id, .conflict([]))))
            Issue.record("taken")
        } catch {
            #expect(!error.waitsForTheDefinition && error.reason.hasPrefix("the notary did not commit"), "\(error)")
        }
    }

    func refusal(payload: [UInt8]) -> String? {
        do {
            _ = try TokenChecks.payment(payload, from: "O=Alice", to: "O=Bob", directory: directory.party(named:), notary: AnswerVerifier(notaryKey: notaryKey.publicKey))
        } catch { return error.reason }
        return nil
    }

    @Test func anAcknowledgementMustNameTheTransaction() throws {
        let ack = try FlowCoding.encode(TokenAcknowledgement(recorded: move.id))
        try TokenChecks.acknowledgement(ack, of: move.id)
        #expect(throws: TokenRefusal.self) { try TokenChecks.acknowledgement(ack, of: .sha256([2])) }
    }

    // MARK: Swaps

    var terms: SwapTerms {
        try! TokenChecks.swapProposal(try! FlowCoding.encode(SwapProposal(give: 30, want: 20, inputs: [StateRef(txId: .sha256([1]), index: 0)], change: 70)),
                                      from: "O=Alice", to: "O=Bob")
    }

    func offer(_ tx: TokenTransaction, signer: SigningKey? = nil) -> [UInt8] {
        try! FlowCoding.encode(SwapOffer(transaction: tx, signature: (signer ?? bob).sign(TokenChecks.agreementPayload(tx.id))))
    }

    @Test func aSwapOfferMustBeTheProposedLayoutSignedByTheAcceptor() throws {
        let bobs = [StateRef(txId: .sha256([2]), index: 1)]
        let tx = TokenChecks.swapTransaction(terms, acceptorInputs: bobs, acceptorChange: 5, nonce: 3)
        #expect(tx.outputs == [Token(owner: "O=Bob", amount: 30), Token(owner: "O=Alice", amount: 20),
                               Token(owner: "O=Alice", amount: 70), Token(owner: "O=Bob", amount: 5)])
        #expect(tx.inputs == terms.offererInputs + bobs)
        #expect(try TokenChecks.swapOffer(offer(tx), for: terms, directory: directory.party(named:)).0 == tx)

        var greedy = tx
        greedy.outputs[0].amount = 31  // Bob takes more than was offered
        var short = tx
        short.outputs[1].amount = 19  // Alice gets less than she wants
        var reused = tx
        reused.inputs.append(terms.offererInputs[0])  // "Bob's" inputs include one of Alice's
        var noneOfBobs = tx
        noneOfBobs.inputs = terms.offererInputs
        for forged in [greedy, short, reused, noneOfBobs] {
            #expect(throws: TokenRefusal("the swap transaction is not the one proposed")) {
                _ = try TokenChecks.swapOffer(offer(forged), for: terms, directory: directory.party(named:))
            }
        }
        #expect(throws: TokenRefusal("the swap transaction is not signed with O=Bob's key")) {
            _ = try TokenChecks.swapOffer(offer(tx, signer: carolKey), for: terms, directory: directory.party(named:))
        }
    }

    @Test func aSwapsFinalMessageMustCarryTheOfferersAgreementAndTheNotarisation() throws {
        let tx = TokenChecks.swapTransaction(terms, acceptorInputs: [StateRef(txId: .sha256([2]), index: 1)], acceptorChange: 0, nonce: 3)
        func closing(agreement signer: SigningKey, answer: NotarisationAnswer) -> [UInt8] {
            try! FlowCoding.encode(SwapFinal(signature: signer.sign(TokenChecks.agreementPayload(tx.id)), request: request(tx), answer: answer))
        }
        try TokenChecks.swapFinal(closing(agreement: alice, answer: answer(tx.id)), offered: tx, terms: terms,
                                  directory: directory.party(named:), notary: AnswerVerifier(notaryKey: notaryKey.publicKey))
        #expect(throws: TokenRefusal("the swap transaction is not signed with O=Alice's key")) {
            try TokenChecks.swapFinal(closing(agreement: carolKey, answer: answer(tx.id)), offered: tx, terms: terms,
                                      directory: directory.party(named:), notary: AnswerVerifier(notaryKey: notaryKey.publicKey))
        }
        #expect(throws: TokenRefusal("the notary did not commit transaction \(tx.id.hex): conflict")) {
            try TokenChecks.swapFinal(closing(agreement: alice, answer: answer(tx.id, .conflict([]))), offered: tx, terms: terms,
                                      directory: directory.party(named:), notary: AnswerVerifier(notaryKey: notaryKey.publicKey))
        }
    }
}
