import Foundation
import HawserCore
import HawserTestSupport
import HawserWire
@testable import Notary
import Testing

/// Three replicas on a bus that loses and forks what it acknowledged (`MemoryBus`): whatever the
/// bus does, no two replicas sign contradicting outcomes, and a replica that can no longer prove
/// its history stops signing and says why.
@Suite(.timeLimit(.minutes(10))) struct ClusterIntegrityTests {
    let codec = ReplicaCodec(notaryKey: notaryKey)

    @Test func replicasForwardToOneSequencerAndAgree() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 21)
        let contested = ids.ref()
        let requests = (0..<30).map { i in request(ids.hash(), inputs: i % 3 == 0 ? [ids.ref(), contested] : [ids.ref()]) }
        // r0 stays the sequencer however slowly the machine runs its heartbeats.
        try await MemoryCluster.with(directory: dir.path, liveness: .seconds(120)) { cluster in
            let answers = try await withThrowingTaskGroup(of: NotarisationAnswer.self) { group in
                for (i, r) in requests.enumerated() { group.addTask { try await cluster.replicas[i % 3].notary.notarise(r) } }
                return try await group.reduce(into: [NotarisationAnswer]()) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.isValid(notary: Verifier(notaryKey.publicKey)) })
            #expect(answers.filter { $0.outcome == .committed }.count == 21, "one of the ten requests spending `contested` commits")
            let end = cluster.bus.end
            for position in 1...end {
                #expect(codec.batch(fromEntry: cluster.bus.entry(at: position))?.sequencer == "r0", "r0 appends every entry")
            }
            var digests = Set<SecureHash>()
            for (replica, store) in zip(cluster.replicas, cluster.stores) {
                try await replica.replica.waitUntilApplied(end)
                digests.insert(try await store.digest())
            }
            #expect(digests.count == 1)
        }
    }

    /// The failure the black-box runs found: the bus loses an entry replicas had applied and a
    /// replica that had not seen it gets the same position for another spend of the same state.
    /// Before the verified log, that replica signed `committed` for the second spend too.
    /// A log that does not answer (JetStream while its servers have no majority) fails every
    /// request with `timeout` within the append time-out, counted from when it was queued:
    /// requests to the sequencer waited for minutes, each group behind the one before (found by
    /// an operator following docs/cluster.md). Then the cluster serves again.
    @Test func aLogThatDoesNotAnswerTimesEveryRequestOutAndTheClusterServesAgainAfter() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 23)
        try await MemoryCluster.with(directory: dir.path, requestTimeout: .milliseconds(500), liveness: .seconds(120)) { cluster in
            // Caught up: the appender knows the log's end, so each group goes straight to an append.
            _ = try await cluster.replicas[0].notary.notarise(request(ids.hash(), inputs: [ids.ref()]))
            cluster.bus.fallSilent()
            let requests = (0..<6).map { _ in request(ids.hash(), inputs: [ids.ref()]) }
            let codes = try await withTimeout(.seconds(60)) {
                try await withThrowingTaskGroup(of: String.self) { group in
                    for r in requests {
                        group.addTask {
                            do {
                                _ = try await cluster.replicas[0].notary.notarise(r)
                                return "answered"
                            } catch let error as APIError {
                                return error.code.rawValue
                            }
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
            }
            #expect(codes == Array(repeating: "timeout", count: 6), "\(codes)")
            cluster.bus.answer()
            #expect(try await cluster.replicas[0].notary.notarise(request(ids.hash(), inputs: [ids.ref()])).outcome == .committed)
        }
    }

    /// A replica that learns the log's end (before its first append) while another replica
    /// appends: a change of sequencer, or one replica given the members in another order, which
    /// makes two sequencers (found from outside). The end answered is the end when asked; the
    /// replica compared it with its head after the answer came, by when it had applied the other's
    /// entry, and stopped with a false `truncated` ("the log lost entries"); so did a correctly
    /// configured replica beside it. An end is now compared with the head it was asked against.
    @Test func anEndLearnedWhileAnotherReplicaAppendsIsNoTruncation() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 24)
        try await MemoryCluster.with(directory: dir.path, liveness: .seconds(120)) { cluster in
            _ = try await answered(cluster, 0, request(ids.hash(), inputs: [ids.ref()]))
            try await cluster.replicas[1].replica.waitUntilApplied(cluster.bus.end)
            cluster.bus.holdEnds()
            // A batch forwarded to r1 (by a replica that takes r1 for the sequencer): r1 appends
            // it, and asks where the log ends first.
            let forwarded = request(ids.hash(), inputs: [ids.ref()])
            let reply = Task { [codec] in try await cluster.link.endpoint.forward(codec.forwarded([forwarded]), to: "r1", timeout: .seconds(60)) }
            try await cluster.bus.waitUntilEndsAsked(1)
            // Meanwhile r0 appends, and r1 applies that entry.
            _ = try await answered(cluster, 0, request(ids.hash(), inputs: [ids.ref()]))
            try await cluster.replicas[1].replica.waitUntilApplied(cluster.bus.end)
            cluster.bus.releaseEnds()
            let refusal = codec.forwardRefusal(try await reply.value)
            #expect(refusal == nil, "\(String(describing: refusal))")
            if case .diverged(let evidence) = cluster.replicas[1].quorum.health { Issue.record("r1 stopped: \(evidence)") }
            #expect(try await answered(cluster, 1, forwarded).outcome == .committed)
        }
    }

    @Test func anEntryTheBusLostIsNeverReplacedByASignedContradiction() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 22)
        let state = ids.ref()
        let first = request(ids.hash(), inputs: [state]), second = request(ids.hash(), inputs: [state])
        try await MemoryCluster.with(directory: dir.path, requestTimeout: .seconds(2)) { cluster in
            _ = try await answered(cluster, 0, request(ids.hash(), inputs: [ids.ref()]))
            try await cluster.replicas[2].replica.waitUntilApplied(cluster.bus.end)
            cluster.bus.hold("r2", at: cluster.bus.end)
            let answer = try await answered(cluster, 0, first)
            #expect(answer.outcome == .committed && answer.isValid(notary: Verifier(notaryKey.publicKey)))

            cluster.bus.truncate(to: cluster.bus.end - 1)
            cluster.bus.release("r2")
            do {
                let contradiction = try await cluster.replicas[2].notary.notarise(second)
                Issue.record("the second spend was answered: \(contradiction.outcome)")
            } catch let error as APIError {
                #expect([.logDiverged, .noQuorum, .timeout].contains(error.code), "\(error)")
            }
            // r2 decided the second spend alone; it must not sign it when asked again.
            await #expect(throws: APIError.self) { try await cluster.replicas[2].notary.answer(for: second.txId) }
            // Every replica learns of the divergence and stops serving: r2 from its own check, r0
            // and r1 when they next append (resync finds the log shorter than what they applied).
            // r2's request, forwarded, usually makes them append; on a loaded machine it may time
            // out before it reaches them, so each replica not yet stopped is asked for a new one.
            let probes = (0..<3).map { _ in request(ids.hash(), inputs: [ids.ref()]) }
            func diverged(_ replica: Int) -> Bool {
                if case .diverged = cluster.replicas[replica].quorum.health { true } else { false }
            }
            try await eventually("every replica diverged") {
                for replica in 0..<3 where !diverged(replica) {
                    _ = try? await cluster.replicas[replica].notary.notarise(probes[replica])
                }
                return (0..<3).allSatisfy(diverged)
            }
            // What was signed before the loss still holds where it was decided.
            #expect(try await cluster.replicas[1].notary.answer(for: first.txId).outcome == .committed)
        }
    }

    /// The bus shows one replica another (authentic, well-chained) entry at a position: that
    /// replica is outvoted and stops; the others go on serving.
    @Test func aReplicaShownAForkedEntryIsOutvotedAndTheOthersServe() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 23)
        let state = ids.ref()
        let honest = request(ids.hash(), inputs: [state]), forged = request(ids.hash(), inputs: [state])
        try await MemoryCluster.with(directory: dir.path, requestTimeout: .seconds(2)) { cluster in
            _ = try await answered(cluster, 0, request(ids.hash(), inputs: [ids.ref()]))
            let end = cluster.bus.end
            try await cluster.replicas[2].replica.waitUntilApplied(end)
            cluster.bus.hold("r2", at: end)
            let other = codec.entry([forged], time: Instant(microsecondsSinceEpoch: 1), position: end + 1,
                                    previous: .sha256(cluster.bus.entry(at: end)), sequencer: "r1")
            cluster.bus.fork("r2", at: end + 1, other)
            #expect(try await answered(cluster, 0, honest).outcome == .committed)
            cluster.bus.release("r2")

            // r2 applies the forked entry, finds r0 and r1 disagree, and refuses from then on.
            let more = request(ids.hash(), inputs: [ids.ref()])
            #expect(try await answered(cluster, 1, more).outcome == .committed)
            // It stops at the next entry, which follows the honest one; reports tell it the others disagree.
            try await cluster.replicas[2].replica.waitUntilApplied(end + 1)
            try await cluster.replicas[2].quorum.waitUntil { $0.disagreements.count == 2 }
            await #expect(throws: APIError.self) { try await cluster.replicas[2].notary.answer(for: forged.txId) }
            await #expect(throws: APIError.self) { try await cluster.replicas[2].notary.notarise(request(ids.hash(), inputs: [ids.ref()])) }
            guard case .diverged(_, let disagreements) = cluster.replicas[2].quorum.health else {
                Issue.record("r2 still serves: \(cluster.replicas[2].quorum.health)")
                return
            }
            #expect(Set(disagreements.map(\.peer)) == ["r0", "r1"])
            #expect(cluster.replicas[0].quorum.health == .ready && cluster.replicas[1].quorum.health == .ready)
        }
    }

    /// A replica started with another notary key answered valid requests 403 `invalid_signature`
    /// (final for a client) and, were a client to sign for its key, its entries would have stopped
    /// the others. It hears their reports, authenticates none, and takes no requests; they serve.
    @Test func aReplicaWithAnotherKeyTakesNoRequestsAndTheOthersServe() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 29)
        let stranger = SigningKey(seed: [UInt8](repeating: 9, count: 32))!
        try await MemoryCluster.with(directory: dir.path, key: { $0 == "r0" ? stranger : notaryKey }, sequencer: "r1") { cluster in
            let r0 = cluster.replicas[0]
            try await r0.quorum.waitUntil { $0.health == .foreignKey(claimed: "r1") || $0.health == .foreignKey(claimed: "r2") }
            // Until r1 and r2 have heard each other, r0's reports may be all either has heard, and it
            // says none authenticates (the suite saw r1 answer no_quorum so under load).
            for honest in cluster.replicas[1...] { try await honest.quorum.waitUntil { $0.health == .ready } }
            #expect(r0.quorum.sequencer() == nil)
            // Valid for the notary's key, and valid for r0's: refused for what r0 is, not as forged.
            for signer in [notaryKey, stranger] {
                let refused = await #expect(throws: APIError.self) {
                    try await r0.notary.notarise(request(ids.hash(), inputs: [ids.ref()], notary: signer.publicKey))
                }
                #expect(refused?.code == .noQuorum && refused?.message.contains("do not authenticate") == true, "\(String(describing: refused))")
            }
            #expect(try await answered(cluster, 1, request(ids.hash(), inputs: [ids.ref()])).outcome == .committed)
            #expect(try await answered(cluster, 2, request(ids.hash(), inputs: [ids.ref()])).outcome == .committed)
            #expect(cluster.bus.end == 2, "r0 appended nothing")
        }
    }

    /// A replica started with another `log.members` list (here only itself, so a majority of one)
    /// signed on its own: majorities of the two lists need not overlap, so the proof that no two
    /// replicas contradict each other no longer held, and nothing said so. Every replica that hears
    /// another list now takes no requests, and says which replica runs with which list.
    @Test func aReplicaWithAnotherMemberListStopsTheNotaryTakingRequests() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 31)
        try await MemoryCluster.with(directory: dir.path, membersOf: { $0 == "r0" ? ["r0"] : MemoryCluster.members },
                                     sequencer: nil) { cluster in
            for replica in cluster.replicas {
                let noticed = try await within(.seconds(10)) {
                    try await replica.quorum.waitUntil { quorum in
                        if case .otherMembers = quorum.health { true } else { false }
                    }
                }
                #expect(noticed != nil, "\(replica.quorum.membership.me) did not notice the other list")
            }
            for (index, replica) in cluster.replicas.enumerated() {
                let refused = await #expect(throws: APIError.self) {
                    try await replica.notary.notarise(request(ids.hash(), inputs: [ids.ref()]))
                }
                #expect(refused?.code == .noQuorum && refused?.message.contains("runs with the members [") == true,
                        "r\(index): \(String(describing: refused))")
            }
            guard case .otherMembers(let other, let mine) = cluster.replicas[0].quorum.health else { return }
            #expect(other.members == MemoryCluster.members && mine == ["r0"])
            #expect(cluster.bus.end == 0, "nothing was appended")
        }
    }

    /// A replica behind the others answered `transaction_not_found` for a transaction the cluster
    /// had signed: final-looking to a client that lost its answer and asked another replica
    /// (found from outside, 8 of 600 lookups right after commits). "None" is now a replica's
    /// answer only once it has applied the log as it ended when asked; until then it is `timeout`.
    @Test func aReplicaBehindDoesNotSayATransactionSignedElsewhereIsUnknown() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 37)
        try await MemoryCluster.with(directory: dir.path, requestTimeout: .seconds(2)) { cluster in
            let signed = try await signWhileR2IsBehind(cluster, &ids)
            let behind = await #expect(throws: APIError.self) { try await cluster.replicas[2].notary.answer(for: signed.txId) }
            #expect(behind?.code == .timeout, "\(String(describing: behind))")
            cluster.bus.release("r2")
            #expect(try await cluster.replicas[2].notary.answer(for: signed.txId).outcome == .committed)
            // Unknown everywhere: still `transaction_not_found`, once the replica is at the end.
            let unknown = await #expect(throws: APIError.self) { try await cluster.replicas[2].notary.answer(for: ids.hash()) }
            #expect(unknown?.code == .transactionNotFound)
        }
    }

    /// A replica that was behind (or down) while the log lost entries the others had applied
    /// found nothing wrong in the log alone: it served, said `ready`, and answered
    /// `transaction_not_found`, final, for a transaction the others had signed (found from
    /// outside). A log that ends before what a majority of the replicas report having applied
    /// lost entries: the replica stops (`truncated`), and a lookup is refused, not answered "none".
    @Test func aReplicaBehindWhenTheLogLostEntriesDoesNotSayTheyWereNeverSigned() async throws {
        let dir = try TemporaryDirectory()
        var ids = Ids(seed: 38)
        try await MemoryCluster.with(directory: dir.path, requestTimeout: .seconds(2)) { cluster in
            let signed = try await signWhileR2IsBehind(cluster, &ids)
            try await cluster.replicas[1].replica.waitUntilApplied(cluster.bus.end)
            // The log loses the entry r0 and r1 applied; r2 reads on to the (new) end.
            cluster.bus.truncate(to: cluster.bus.end - 1)
            cluster.bus.release("r2")
            try await cluster.replicas[2].quorum.waitUntil { $0.majorityReached > cluster.bus.end }
            let lookup = await #expect(throws: APIError.self) { try await cluster.replicas[2].notary.answer(for: signed.txId) }
            #expect(lookup?.code == .logDiverged, "\(String(describing: lookup))")
            try await eventually("r2 stopped") {
                if case .diverged(let evidence?, _) = cluster.replicas[2].quorum.health { return evidence.kind == .truncated }
                return false
            }
            #expect(cluster.replicas[2].quorum.health.refusal?.message.contains("a majority of the replicas report") == true)
        }
    }

    /// Has r0 sign a transaction while r2 is held one entry behind (r2 applied everything before it).
    func signWhileR2IsBehind(_ cluster: MemoryCluster, _ ids: inout Ids) async throws -> NotarisationRequest {
        _ = try await answered(cluster, 0, request(ids.hash(), inputs: [ids.ref()]))
        try await cluster.replicas[2].replica.waitUntilApplied(cluster.bus.end)
        cluster.bus.hold("r2", at: cluster.bus.end)
        let signed = request(ids.hash(), inputs: [ids.ref()])
        #expect(try await answered(cluster, 0, signed).outcome == .committed)
        return signed
    }

    /// The answer to a request that must be decided, asked again after a timeout as the API tells
    /// a client to (a loaded machine can take longer than the short request timeout these tests
    /// use so that a contradiction is not waited on for long).
    func answered(_ cluster: MemoryCluster, _ replica: Int, _ request: NotarisationRequest) async throws -> NotarisationAnswer {
        for _ in 1..<10 {
            do {
                return try await cluster.replicas[replica].notary.notarise(request)
            } catch let error as APIError where error.code == .timeout {
                continue
            }
        }
        return try await cluster.replicas[replica].notary.notarise(request)
    }
}
