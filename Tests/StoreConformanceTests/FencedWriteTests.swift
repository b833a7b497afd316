import Coordination
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Notary
import Testing
import Uniqueness
import Vault

/// Two processes on one database, as a deposed master and its successor are, on every back end:
/// every write of the one holding the older epoch, or none, is refused as a whole.
@Suite(PostgresTrait(ifAvailable: true), .timeLimit(.minutes(2)))
struct FencedWriteTests {
    func start(_ id: String) -> FlowWrite {
        .start(FlowRecord(id: FlowID(id), clientRequestId: nil, flowName: "F", arguments: [], attempts: 0,
                          createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1)))
    }

    @Test(arguments: Backend.available) func aDeposedMastersWritesAreRefusedAndChangeNothing(_ backend: Backend) async throws {
        var ids = Ids(seed: 7)
        try await StoreDatabase.with(backend) { database in
            let oldFence = WriteFence(resource: "node/0"), newFence = WriteFence(resource: "node/0")
            let old = try await database.node(fence: oldFence)
            let new = try await database.node(fence: newFence)
            let ref = ids.ref()
            let produce = VaultUpdate(txId: ref.txId, consumed: [],
                                      produced: [VaultState(ref: ref, type: "token", owner: "O=Alice", data: Array("{}".utf8))])

            oldFence.hold(Epoch(1))
            _ = try await old.flows.commit([start("a"), .journal(FlowID("a"), JournalEntry(sequence: 0, kind: EffectKind.record, descriptor: "p",
                                                                                           result: []), [.vault(produce)])])
            newFence.hold(Epoch(2))
            _ = try await new.flows.commit([start("b")])

            // The old master still believes it leads: its flow commit and its soft locks all fail.
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/0", presented: Epoch(1), current: Epoch(2))) {
                _ = try await old.flows.commit([start("c"), .state(FlowID("a"), FlowState(status: .completed, attempts: 0,
                                                                                            updatedAt: Instant(microsecondsSinceEpoch: 2)), [])])
            }
            await #expect(throws: CoordinationError.self) { try await old.vault.reserve([ref], for: "a") }
            await #expect(throws: CoordinationError.self) {
                _ = try await old.vault.reserve(choosing: VaultQuery(), for: "a", from: 0) { _, _ in .takeAndStop }
            }
            await #expect(throws: CoordinationError.self) { try await old.vault.release(holder: "a") }
            #expect(try await new.flows.record(FlowID("c")) == nil)
            #expect(try await new.flows.record(FlowID("a"))?.status == .running)
            #expect(try await new.vault.states([ref]).first?.lockedBy == nil)

            // A process that holds no epoch (a standby, or a master that resigned) writes nothing.
            newFence.release()
            await #expect(throws: CoordinationError.notOwner(resource: "node/0")) { _ = try await new.flows.commit([start("d")]) }
            await #expect(throws: CoordinationError.notOwner(resource: "node/0")) { try await new.vault.release(holder: "a") }
            newFence.hold(Epoch(3))
            _ = try await new.flows.commit([start("d")])
            #expect(try await new.flows.record(FlowID("d")) != nil)

            // A new owner's claiming write, a commit of nothing, records its epoch all the same.
            let claimingFence = WriteFence(resource: "node/0")
            claimingFence.hold(Epoch(4))
            _ = try await database.node(fence: claimingFence).flows.commit([])
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/0", presented: Epoch(3), current: Epoch(4))) {
                _ = try await new.flows.commit([start("e")])
            }
        }
    }

    /// A term begins with a claim, which must raise the epoch: the same epoch from another
    /// election (two elections' epochs meet: a process misconfigured, or an election moved) is
    /// refused, so two processes never both begin a term on one epoch. (A claim used to be a
    /// fenced commit of nothing, which an equal epoch passes: both then ran the shard's flows.)
    @Test(arguments: Backend.available) func aClaimMustRaiseTheEpoch(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let first = WriteFence(resource: "node/p3", epoch: Epoch(1)), other = WriteFence(resource: "node/p3", epoch: Epoch(1))
            let owner = try await database.node(fence: first)
            try await owner.flows.claim()
            _ = try await owner.flows.commit([start("a")])
            let stranger = try await database.node(fence: other)
            _ = try await stranger.flows.commit([])  // the claim before: an equal epoch passes the check
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/p3", presented: Epoch(1), current: Epoch(1))) {
                try await stranger.flows.claim()
            }
            _ = try await owner.flows.commit([start("b")])  // the owner goes on
            other.hold(Epoch(2))
            try await stranger.flows.claim()
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/p3", presented: Epoch(1), current: Epoch(2))) {
                _ = try await owner.flows.commit([start("c")])
            }
            // An unfenced store has nothing to claim.
            try await database.node().flows.claim()
        }
    }

    /// A hot-cold process holds its epoch for life and hears of a successor only from the
    /// database: its check passes while its epoch is the highest recorded (equal included), and
    /// fails once a newer owner has claimed, without writing anything.
    @Test(arguments: Backend.available) func aClaimCheckFailsOnceANewerOwnerHasClaimed(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let owner = try await database.node(fence: WriteFence(resource: "node/0", epoch: Epoch(5)))
            // Nothing recorded yet (the claim has not been made): nothing newer either.
            try await owner.flows.checkClaim()
            try await owner.flows.claim()
            try await owner.flows.checkClaim()
            try await database.node(fence: WriteFence(resource: "node/0", epoch: Epoch(6))).flows.claim()
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/0", presented: Epoch(5), current: Epoch(6))) {
                try await owner.flows.checkClaim()
            }
            // Another resource's epochs are not this one's; an unfenced store has nothing to check.
            try await database.node(fence: WriteFence(resource: "node/1", epoch: Epoch(1))).flows.checkClaim()
            try await database.node().flows.checkClaim()
        }
    }

    /// A term that steps down releases its fence before its engine stops; the engine's last
    /// write, clearing the replay markers of the flows it stopped, is unfenced: the database takes
    /// it also once a newer owner has claimed (a term that lost its shard without dying clears its
    /// markers for the next owner, which waits for that before it parks a flow as poison), while
    /// every other write of the term is refused.
    @Test(arguments: Backend.available) func aSteppedDownTermClearsItsMarkersEvenAfterANewerOwnerClaims(_ backend: Backend) async throws {
        try await StoreDatabase.with(backend) { database in
            let fence = WriteFence(resource: "node/0")
            let term = try await database.node(fence: fence)
            fence.hold(Epoch(1))
            _ = try await term.flows.commit([start("a"), start("b"), .replayMarker(FlowID("a"), true), .replayMarker(FlowID("b"), true)])
            fence.release()
            await #expect(throws: CoordinationError.notOwner(resource: "node/0")) {
                _ = try await term.flows.commit([.replayMarker(FlowID("a"), false)])
            }
            try await term.flows.clearReplayMarkers([FlowID("a")])
            #expect(try await term.flows.replayMarkers() == [FlowID("b")])

            _ = try await database.node(fence: WriteFence(resource: "node/0", epoch: Epoch(2))).flows.commit([])
            fence.hold(Epoch(1))  // as a paused former owner still believes it leads
            await #expect(throws: CoordinationError.staleEpoch(resource: "node/0", presented: Epoch(1), current: Epoch(2))) {
                _ = try await term.flows.commit([.replayMarker(FlowID("b"), false)])
            }
            fence.release()
            try await term.flows.clearReplayMarkers([FlowID("b")])
            #expect(try await term.flows.replayMarkers().isEmpty)
        }
    }

    @Test(arguments: Backend.available) func aDeposedNotarysBatchIsRefusedAndChangesNothing(_ backend: Backend) async throws {
        var ids = Ids(seed: 8)
        try await StoreDatabase.with(backend) { database in
            let oldFence = WriteFence(resource: "notary/0"), newFence = WriteFence(resource: "notary/0")
            let old = try await database.notaryStore(fence: oldFence)
            let new = try await database.notaryStore(fence: newFence)
            let (ref, txId) = (ids.ref(), ids.hash())
            oldFence.hold(Epoch(4))
            newFence.hold(Epoch(5))
            _ = try await new.apply(refs: [], txIds: [], decide: { _ in NotaryStoreCases.batch([], position: 1) })
            await #expect(throws: CoordinationError.staleEpoch(resource: "notary/0", presented: Epoch(4), current: Epoch(5))) {
                _ = try await old.apply(refs: [ref], txIds: [txId], decide: { _ in NotaryStoreCases.batch([(ref, txId)], position: 2) })
            }
            #expect(try await new.head().position == 1)
            #expect(try await new.outcome(of: txId) == nil)
            newFence.release()
            await #expect(throws: CoordinationError.notOwner(resource: "notary/0")) {
                _ = try await new.apply(refs: [], txIds: [], decide: { _ in NotaryStoreCases.batch([], position: 2) })
            }
        }
    }
}
