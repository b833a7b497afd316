import HawserCore
import HawserTestSupport
import HawserWire
import Notary
import Testing

@Suite(.timeLimit(.minutes(10))) struct AnswerWaitersTests {
    var ids = Ids(seed: 31)

    func answer(_ txId: SecureHash) -> NotarisationAnswer {
        NotarisationAnswer(txId: txId, outcome: .committed, proof: MerkleProof(leafIndex: 0, leafCount: 1, path: []), signature: [])
    }

    @Test mutating func answeredSlotsGetTheirAnswerAndUnansweredOnesTimeOutAndAreRemoved() async {
        let waiters = AnswerWaiters()
        let (answered, unanswered) = (ids.hash(), ids.hash())
        let slots = [waiters.register(answered), waiters.register(unanswered)]
        waiters.fulfil(answer(answered))
        let results = await waiters.results(of: slots, within: .milliseconds(20))
        #expect((try? results[0].get())?.txId == answered)
        #expect(results[1].errorCode == .timeout)
        #expect(!waiters.isWaiting(for: unanswered), "a timed-out slot leaves the table")
    }

    @Test mutating func cancellationAnswersShuttingDown() async {
        let waiters = AnswerWaiters()
        let txId = ids.hash()
        let slot = waiters.register(txId)
        let waiting = Task { await waiters.results(of: [slot], within: .seconds(60)) }
        waiting.cancel()
        #expect(await waiting.value[0].errorCode == .shuttingDown)
        #expect(!waiters.isWaiting(for: txId))
    }

    @Test mutating func oneAnswerServesEveryWaiterOfATransaction() async {
        let waiters = AnswerWaiters()
        let txId = ids.hash()
        let slots = [waiters.register(txId), waiters.register(txId)]
        waiters.fulfil(answer(txId))
        let results = await waiters.results(of: slots, within: .seconds(60))
        #expect(results.allSatisfy { (try? $0.get().txId) == txId })
    }
}

extension Result where Failure == APIError {
    var errorCode: ErrorCode? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}
