import AsyncHTTPClient
import Embedded
import Foundation
import HawserClient
import HawserCore
import HawserNode
import HawserTestSupport
import Testing

/// kill -9 the notary process under load, several times, restarting it each time: every
/// acknowledged outcome still holds and no state is ever spent by two transactions, by the
/// history rules (docs/history.md) and by the store.
@Suite(.serialized, .timeLimit(.minutes(10))) struct CrashRecoveryTests {
    @Test func acknowledgedOutcomesSurviveKillNineAndNothingIsSpentTwice() async throws {
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path)
        let config = dir.path + "/hawser.json"
        let history = ClusterHistory()
        var ids = Ids(seed: 42)
        let contested = (0..<50).map { _ in ids.ref() }
        let rounds = 3, perRound = 500

        for round in 0..<rounds {
            // Each round: fresh inputs, plus one contested input per request so that double spends are attempted.
            let requests = (0..<perRound).map { i in signed(ids.hash(), inputs: [ids.ref(), contested[(round * perRound + i) % 50]]) }
            let (notary, port) = try await HawserProcess.notary(config: config)
            let client = try NotaryClient(urls: ["http://127.0.0.1:\(port)"], notaryKey: notaryKey.publicKey,
                                      retryPolicy: RetryPolicy(maxAttempts: 1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    await withTaskGroup(of: Void.self) { workers in
                        for worker in 0..<16 {
                            workers.addTask {
                                for request in requests[worker...].striding(by: 16) {
                                    guard let answer = try? await client.notarise(request) else { continue }
                                    history.record(request, answer.outcome)
                                }
                            }
                        }
                    }
                }
                group.addTask {
                    // Kill once a third of this round is answered, while requests are in flight.
                    #expect(await history.awaitAnswers(perRound / 3, within: .seconds(120)), "the notary answered before the kill")
                    notary.kill()
                }
                try await group.waitForAll()
            }
            try await client.shutdown()
        }

        // Restart once more and ask about every acknowledged transaction: its answer now goes
        // into the history too, where a lost or changed outcome breaks a rule.
        let (notary, port) = try await HawserProcess.notary(config: config)
        let client = try NotaryClient(urls: ["http://127.0.0.1:\(port)"], notaryKey: notaryKey.publicKey)
        let acknowledged = history.answers
        for (txId, record) in acknowledged {
            let answer = try await client.answer(for: txId)
            history.record(signed(txId, inputs: record.inputs), answer.outcome)
        }
        let violations = try history.violations()
        #expect(violations.isEmpty, "\(violations.count) violations of the history rules: \(violations.prefix(10))")
        try await client.shutdown()
        #expect(await notary.terminate() == 0, "SIGTERM shuts the notary down cleanly")

        // The store agrees with every acknowledged commit.
        let store = try SQLiteNotaryStore(path: dir.path + "/data/notary.sqlite")
        for (txId, record) in acknowledged where record.outcome == .committed {
            for input in record.inputs { #expect(try await store.consumer(of: input) == txId) }
        }
    }
}

extension ArraySlice {
    /// Every `step`-th element from the start of the slice.
    func striding(by step: Int) -> [Element] { stride(from: startIndex, to: endIndex, by: step).map { self[$0] } }
}
