import HawserClient
import HawserCore
import HawserTestSupport
import Synchronization

/// Steady load on a cluster: callers each with their own `NotaryClient` given every replica's
/// address (rotated, so the load spreads and every replica has callers to fail over). Requests
/// spend a fresh state; a quarter also spend one of a few contested states (double-spend
/// attempts); one in ten repeats an earlier request (a client retry).
final class ClusterLoad: Sendable {
    private struct Source {
        var ids: Ids
        var random: SeededGenerator
        var contested: [StateRef] = []
        var sent: [NotarisationRequest] = []
    }
    private let source: Mutex<Source>
    private let stopped = Mutex(false)
    let history = ClusterHistory()

    init(seed: UInt64 = 77) {
        var s = Source(ids: Ids(seed: seed), random: SeededGenerator(seed: seed))
        s.contested = (0..<40).map { _ in s.ids.ref() }
        source = Mutex(s)
    }

    private func next() -> NotarisationRequest {
        source.withLock { s in
            if !s.sent.isEmpty, Int.random(in: 0..<10, using: &s.random) == 0 {
                return s.sent[Int.random(in: 0..<s.sent.count, using: &s.random)]
            }
            var inputs = [s.ids.ref()]
            if Int.random(in: 0..<4, using: &s.random) == 0 { inputs.append(s.contested.randomElement(using: &s.random)!) }
            let request = signed(s.ids.hash(), inputs: inputs)
            s.sent.append(request)
            return request
        }
    }

    /// Runs `callers` loops against `urls` until `stop()`.
    func run(urls: [String], callers: Int) async throws {
        let policy = RetryPolicy(maxAttempts: 40, baseBackoff: .milliseconds(50), maxBackoff: .milliseconds(500),
                                 attemptTimeout: .seconds(3), deadline: .seconds(60))
        let clients = try (0..<callers).map { i in
            try NotaryClient(urls: Array(urls[(i % urls.count)...] + urls[..<(i % urls.count)]),
                             notaryKey: notaryKey.publicKey, retryPolicy: policy)
        }
        await withTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    while !self.stopped.withLock({ $0 }) {
                        let request = self.next()
                        do {
                            self.history.record(request, try await client.notarise(request).outcome)
                        } catch {
                            self.history.recordError(error)
                        }
                    }
                }
            }
        }
        for client in clients { try await client.shutdown() }
    }

    /// Lets every caller finish its current request and stop.
    func stop() { stopped.withLock { $0 = true } }
}
