import AsyncHTTPClient
import Embedded
import Foundation
import HawserClient
import HawserCore
import HawserNode
import Synchronization
import HawserTestSupport
import Testing

/// kill -9 the notary process under load, several times, restarting it each time: every
/// acknowledged outcome still holds and no state is ever spent by two transactions.
@Suite(.serialized) struct CrashRecoveryTests {
    /// What clients were told, by transaction id, and a way to await the count reaching a mark.
    final class History: Sendable {
        private struct State {
            var acknowledged: [SecureHash: (inputs: [StateRef], outcome: NotarisationOutcome)] = [:]
            var changed: [SecureHash] = []
            var mark: (count: Int, continuation: CheckedContinuation<Void, Never>)?
        }
        private let state = Mutex(State())

        func record(_ request: NotarisationRequest, _ outcome: NotarisationOutcome) {
            let reached = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let prior = s.acknowledged[request.txId], prior.outcome != outcome { s.changed.append(request.txId) }
                s.acknowledged[request.txId] = (request.inputs, outcome)
                guard let mark = s.mark, s.acknowledged.count >= mark.count else { return nil }
                s.mark = nil
                return mark.continuation
            }
            reached?.resume()
        }

        func waitUntil(count: Int) async {
            await withCheckedContinuation { continuation in
                let now = state.withLock { s -> Bool in
                    if s.acknowledged.count >= count { return true }
                    s.mark = (count, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        }

        /// Ends a pending `waitUntil` early (the load finished before reaching its mark).
        func release() {
            state.withLock { s -> CheckedContinuation<Void, Never>? in defer { s.mark = nil }; return s.mark?.continuation }?.resume()
        }

        var all: [SecureHash: (inputs: [StateRef], outcome: NotarisationOutcome)] { state.withLock { $0.acknowledged } }
        var count: Int { state.withLock { $0.acknowledged.count } }
        /// Transactions that were acknowledged twice with different outcomes.
        var changed: [SecureHash] { state.withLock { $0.changed } }
    }

    @Test func acknowledgedOutcomesSurviveKillNineAndNothingIsSpentTwice() async throws {
        let dir = try TemporaryDirectory()
        try writeNotaryFiles(in: dir.path)
        let config = dir.path + "/hawser.json"
        let history = History()
        var ids = Ids(seed: 42)
        let contested = (0..<50).map { _ in ids.ref() }
        let rounds = 3, perRound = 500

        for round in 0..<rounds {
            // Each round: fresh inputs, plus one contested input per request so that double spends are attempted.
            let requests = (0..<perRound).map { i in signed(ids.hash(), inputs: [ids.ref(), contested[(round * perRound + i) % 50]]) }
            let (notary, port) = try await HawserProcess.notary(config: config)
            let client = try NotaryClient(urls: ["http://127.0.0.1:\(port)"], notaryKey: notaryKey.publicKey,
                                      retryPolicy: RetryPolicy(maxAttempts: 1))
            let killAfter = history.count + perRound / 3
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
                    history.release()
                }
                group.addTask {
                    // Kill once a third of this round is acknowledged, while requests are in flight.
                    await history.waitUntil(count: killAfter)
                    notary.kill()
                }
                try await group.waitForAll()
            }
            try await client.shutdown()
        }

        // Restart once more and ask about every acknowledged transaction.
        let (notary, port) = try await HawserProcess.notary(config: config)
        let client = try NotaryClient(urls: ["http://127.0.0.1:\(port)"], notaryKey: notaryKey.publicKey)
        let acknowledged = history.all
        #expect(acknowledged.count >= rounds * perRound / 3, "the load reached the notary before each kill")
        #expect(history.changed.isEmpty, "a retried request got a different outcome")
        for (txId, record) in acknowledged {
            #expect(try await client.answer(for: txId).outcome == record.outcome, "\(txId) lost its acknowledged outcome")
        }
        try await client.shutdown()
        #expect(notary.terminate() == 0, "SIGTERM shuts the notary down cleanly")

        // No state was spent by two acknowledged transactions, and the store agrees with every commit.
        var spentBy = [StateRef: SecureHash]()
        let store = try SQLiteNotaryStore(path: dir.path + "/data/notary.sqlite")
        for (txId, record) in acknowledged where record.outcome == .committed {
            for input in record.inputs {
                #expect(spentBy.updateValue(txId, forKey: input) == nil, "\(input) acknowledged as spent twice")
                #expect(try await store.consumer(of: input) == txId)
            }
        }
    }
}

extension ArraySlice {
    /// Every `step`-th element from the start of the slice.
    func striding(by step: Int) -> [Element] { stride(from: startIndex, to: endIndex, by: step).map { self[$0] } }
}
