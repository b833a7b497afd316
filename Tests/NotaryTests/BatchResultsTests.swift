import Embedded
import HawserCore
import HawserTestSupport
import HawserWire
import Metrics
import Notary
import Testing

/// `Notary.notarise(batch:each:)`, the path that requests arriving together take (the gRPC
/// stream): one validation pass and one append, and each result handed on as soon as it is known.
@Suite(.timeLimit(.minutes(10))) struct BatchResultsTests {
    @Test(.timeLimit(.minutes(2))) func aRefusedRequestIsAnsweredWithoutWaitingForItsNeighboursAppend() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 41)
        let assembly = NotaryAssembly(name: "O=Test Notary", signer: notaryKey, authorisedParties: parties, limits: NotaryLimits(),
                                      log: try SQLiteLog(path: dir.path + "/log.sqlite"),
                                      store: try SQLiteNotaryStore(path: dir.path + "/notary.sqlite"),
                                      metrics: NotaryMetrics(factory: NOOPMetricsHandler.instance), logger: quietLogger)
        let good = request(ids.hash(), inputs: [ids.ref()])
        // Signed by Alice's key, but for another notary: the signature does not verify here.
        let forged = NotarisationRequest.signed(txId: ids.hash(), inputs: [ids.ref()], requesterName: "O=Alice", key: alice,
                                                notary: bob.publicKey)
        let results = Mailbox<(Int, Result<NotarisationAnswer, APIError>)>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await assembly.replica.run() }
            group.addTask { await assembly.notary.notarise(batch: [good, forged]) { results.post(($0, $1)) } }
            // The appender is not running: the good request's append cannot complete, yet the
            // forged one has its answer.
            let first = try #require(await results.takeAll())
            #expect(first.count == 1 && first[0].0 == 1 && first[0].1.errorCode == .invalidSignature)
            group.addTask { try await assembly.appender.run() }
            let second = try #require(await results.takeAll())
            #expect(second.count == 1 && second[0].0 == 0 && (try? second[0].1.get().outcome) == .committed)
            await #expect { try await assembly.notary.answer(for: forged.txId) } throws: {
                ($0 as? APIError)?.code == .transactionNotFound  // a refused request is not decided
            }
            group.cancelAll()
        }
    }
}
