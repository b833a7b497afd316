import Foundation
import HawserTestSupport
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// `hawser admin verify-cluster` against replicas that answer as scripted (one server, a path
/// prefix for each): its verdict and exit status for chains that agree, a replica that stopped
/// signing, and one still starting.
@Suite(.timeLimit(.minutes(2))) struct VerifyClusterTests {
    /// Each replica's `/v1/replica` status and applied position; every head at a position is equal.
    final class Replicas: Sendable {
        let state = Mutex<[String: (status: String, applied: Int)]>([:])
        /// Replicas that remember no position below 5 (`position_not_remembered`).
        let forgetful = Mutex<Set<String>>([])
    }

    func withReplicas(_ replicas: Replicas, _ body: @Sendable (Int) async throws -> Void) async throws {
        let router = Router()
        let head = #""entryHash":"aa","stateHash":"bb""#
        router.get("/:id/v1/replica") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let (status, applied) = replicas.state.withLock({ $0[id] }) else { throw HTTPError(.notFound) }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: """
                {"replica":"\(id)","members":["r0","r1","r2"],"status":"\(status)","applied":{"position":\(applied),\(head)},"confirmed":\(applied),"disagreements":[]}
                """)))
        }
        router.get("/:id/v1/replica/heads/:position") { _, context in
            let position = Int(context.parameters.get("position") ?? "") ?? 0
            if position < 5, replicas.forgetful.withLock({ $0.contains(context.parameters.get("id") ?? "") }) {
                return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"position_not_remembered","message":"too old"}}"#)))
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: """
                {"position":\(context.parameters.get("position") ?? "0"),\(head)}
                """)))
        }
        try await Application(router: router).test(.live) { client in try await body(try #require(client.port)) }
    }

    @Test func theVerdictNamesAStoppedReplicaAndWaitsForAStartingOne() async throws {
        let replicas = Replicas()
        try await withReplicas(replicas) { port in
            let verify = ["admin", "verify-cluster"] + ["r0", "r1", "r2"].flatMap { ["--url", "http://127.0.0.1:\(port)/\($0)"] }
            func set(_ r2: (String, Int)) { replicas.state.withLock { $0 = ["r0": ("ready", 5), "r1": ("ready", 6), "r2": r2] } }

            set(("ready", 5))
            let agree = try await HawserProcess.run(verify)
            #expect(agree.status == 0 && agree.output.contains(#""verdict" : "agree""#), "\(agree.output)")
            // Chains that agree, but a replica stopped signing (it said "agree", exit 0: found from outside).
            set(("log_diverged", 5))
            let stopped = try await HawserProcess.run(verify)
            #expect(stopped.status == 2 && stopped.output.contains(#""verdict" : "stopped""#), "\(stopped.output)")
            // A stopped replica behind the others, at a position they no longer remember: no chain
            // was compared, so nothing is known to agree (it said "stopped", found from outside).
            replicas.forgetful.withLock { $0 = ["r0", "r1"] }
            set(("duplicate_replica", 2))
            let unknown = try await HawserProcess.run(verify)
            #expect(unknown.status == 3 && unknown.output.contains(#""verdict" : "incomplete""#), "\(unknown.output)")
            replicas.forgetful.withLock { $0 = [] }
            // A replica that has not read its store reports position 0: compared there, every other
            // replica had forgotten it (exit 3, position_not_remembered, found from outside).
            set(("starting", 0))
            let starting = try await HawserProcess.run(verify)
            #expect(starting.status == 3 && starting.output.contains(#""position" : 5"#)
                    && starting.output.contains("the replica is starting"), "\(starting.output)")
        }
    }

    /// Every member the replicas name must be compared, each once: given one replica's URL, or
    /// one twice, it said `agree`, exit 0 (found from outside).
    @Test func aComparisonThatLeavesAMemberOutIsIncomplete() async throws {
        let replicas = Replicas()
        replicas.state.withLock { $0 = ["r0": ("ready", 5), "r1": ("ready", 5), "r2": ("ready", 5)] }
        try await withReplicas(replicas) { port in
            func url(_ id: String) -> [String] { ["--url", "http://127.0.0.1:\(port)/\(id)"] }
            let one = try await HawserProcess.run(["admin", "verify-cluster"] + url("r0"))
            #expect(one.status == 3 && one.output.contains(#""verdict" : "incomplete""#), "\(one.output)")
            #expect(one.output.contains(#""missing" : ["#) && one.output.contains(#""r1""#) && one.output.contains(#""r2""#), "\(one.output)")
            let twice = try await HawserProcess.run(["admin", "verify-cluster"] + url("r0") + url("r0") + url("r1"))
            #expect(twice.status == 3 && twice.output.contains("give each replica once"), "\(twice.output)")
            let all = try await HawserProcess.run(["admin", "verify-cluster"] + url("r0") + url("r1") + url("r2"))
            #expect(all.status == 0 && !all.output.contains("missing"), "\(all.output)")
        }
    }
}
