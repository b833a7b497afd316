import Flows
import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import TokenSample
import Testing
import Vault

/// A remote notary failing under a node's flows: killed and restarted, and one replica of the
/// JetStream cluster killed. No flow fails for a notary outage, and each ends exactly once.
@Suite(.serialized) struct RemoteNotaryFaultTests {
    /// kill -9 the notary while 30 flows run, start 10 more while it is down (each of them reaches
    /// the hospital), then restart it: every flow completes once, with its own transaction, and the
    /// notary's record agrees with the vault.
    @Test(.timeLimit(.minutes(3))) func flowsCompleteExactlyOnceAcrossANotaryKilledMidRun() async throws {
        let notary = try await StandaloneNotary.start()
        // The client gives up quickly, so that the outage reaches the flows' hospital.
        try await withRemoteNode(urls: [notary.url], { $0.notary.maxAttempts = 2; $0.notary.timeoutMillis = 2_000 }) { _, parts, _ in
            let engine = parts.engine
            for _ in 0..<20 { #expect(try await engine.run(IssueTokens(owner: "O=Alice", amount: 10)).status == .completed) }
            // Issues of 7 to Bob and moves of 2 from Alice to Bob, alternately.
            @Sendable func start(_ i: Int) async throws -> FlowID {
                i % 2 == 0
                    ? try await engine.start(IssueTokens(owner: "O=Bob", amount: 7), clientRequestId: "load-\(i)").id
                    : try await engine.start(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 2), clientRequestId: "load-\(i)").id
            }
            var inFlight = [FlowID]()
            for i in 0..<30 { inFlight.append(try await start(i)) }
            notary.kill()
            var interrupted = 0
            for id in inFlight where try await engine.record(id)?.status != .completed { interrupted += 1 }
            #expect(interrupted > 0, "the kill should have caught flows in flight")
            var duringOutage = [FlowID]()
            for i in 30..<40 { duringOutage.append(try await start(i)) }
            for id in duringOutage { try await engine.waitUntilHospitalised(id) }
            try await notary.restart()

            var txIds = Set<SecureHash>()
            for id in inFlight + duringOutage {
                let record = try await engine.waitForEnd(id)
                #expect(record.status == .completed, "\(id): \(record.status) \(record.error ?? "")")
                #expect(txIds.insert(try txId(record)).inserted, "two flows completed with one transaction")
            }
            for id in duringOutage { #expect(try await engine.record(id)?.attempts ?? 0 > 0, "retried by the hospital") }
            #expect(txIds.count == 40)
            #expect(try await parts.database.flows.counts() == [.completed: 60])
            #expect(try await balances(parts) == ["O=Alice": 160, "O=Bob": 180])

            // The notary agrees with the vault: each consumed state was spent by the transaction the
            // vault says, no unconsumed one was spent, and every transaction is committed.
            await notary.stop()
            let store = try notary.store()
            for state in try await parts.database.vault.query(VaultQuery(type: Token.stateType, consumption: .all, limit: 100_000)) {
                #expect(try await store.consumer(of: state.ref) == state.consumedBy, "\(state.ref)")
                #expect(try await store.outcome(of: state.ref.txId) == .committed)
            }
        }
    }

    /// The node given the three replicas of the JetStream cluster: flows complete before and after
    /// the first replica (the preferred sequencer, and the first URL) is killed.
    @Test(.timeLimit(.minutes(2))) func flowsCompleteThroughTheNotaryClusterAcrossAReplicaKill() async throws {
        try await withNotaryCluster({ $0.authorisedParties.append(.init(name: "O=Bob", publicKey: bob.publicKey.base64)) }) { cluster in
            try await withRemoteNode(urls: cluster.urls) { _, parts, _ in
                let engine = parts.engine
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            let issue = try await engine.run(IssueTokens(owner: "O=Alice", amount: 10))
                            #expect(issue.status == .completed, "\(issue.error ?? "")")
                        }
                    }
                    try await group.waitForAll()
                }
                cluster.kill(0)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            let move = try await engine.run(MoveTokens(owner: "O=Alice", newOwner: "O=Bob", amount: 5))
                            #expect(move.status == .completed, "\(move.error ?? "")")
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await balances(parts) == ["O=Alice": 40, "O=Bob": 40])
            }
        }
    }
}
