import Flows
import HawserCore
import Sessions
import Vault

/// Answers `MoveTokens` from another node: takes the payment, checks it whole
/// (`TokenChecks.payment`) before it records anything, records the transaction (the outputs of
/// the parties this node hosts) and acknowledges. Any failed check fails the flow, which the
/// sender hears as `counterparty_failed` with the reason; nothing is recorded then.
public struct ReceiveTokens: ResponderFlow {
    public static let flowName = "ReceiveTokens"
    public var session: FlowSession

    public init(session: FlowSession) { self.session = session }

    public func run(_ context: FlowContext) async throws -> TokenReceipt {
        let payload = try await context.receive(on: session)
        let directory = try context.partyDirectory()
        let notary = try context.notaryVerifier()
        let tx: TokenTransaction
        do {
            tx = try TokenChecks.payment(payload, from: session.counterparty, to: session.ourParty,
                                         directory: directory.party(named:), notary: notary)
            // Patched: a flow journaled before the check existed replays without it.
            if try await context.patched(TokenChecks.ownInputsPatch) {
                try TokenChecks.spendsNoneButTheSender(try await context.vault.states(tx.inputs), sender: session.counterparty)
            }
        } catch let error as TokenRefusal where error.waitsForTheDefinition {
            // Retried (replaying the payment received) until a definition gives the sender that
            // key, then parked for an operator; nothing is recorded meanwhile. No patch marker:
            // this path ended the flow for good before, so no journal replays through it.
            throw TransientFlowError("cannot take the payment from \(session.counterparty) yet: \(error.reason); "
                                     + "waiting for a network definition that gives it that key")
        } catch let error as TokenRefusal {
            throw FlowFailure("refused the payment from \(session.counterparty): \(error.reason)")
        }
        try await context.progress("checked")
        let receipt = try await TokenNotarisation.record(tx, context)
        try await context.send(try FlowCoding.encode(TokenAcknowledgement(recorded: tx.id)), on: session)
        return receipt
    }
}
