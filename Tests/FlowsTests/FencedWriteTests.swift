import Coordination
import Embedded
import Flows
import Foundation
import HawserCore
import HawserTestSupport
import Testing
import Vault

/// Two processes on one node database, as a deposed master and its successor are: every write of
/// the one holding the older epoch, or none, is refused as a whole.
@Suite struct FencedWriteTests {
    var ids = Ids(seed: 7)

    func start(_ id: String) -> FlowWrite {
        .start(FlowRecord(id: FlowID(id), clientRequestId: nil, flowName: "F", arguments: [], attempts: 0,
                          createdAt: Instant(microsecondsSinceEpoch: 1), updatedAt: Instant(microsecondsSinceEpoch: 1)))
    }

    @Test mutating func aDeposedMastersWritesAreRefusedAndChangeNothing() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/node.sqlite"
        let oldFence = WriteFence(resource: "node/0"), newFence = WriteFence(resource: "node/0")
        let old = try SQLiteNodeDatabase(path: path, fence: oldFence)
        let new = try SQLiteNodeDatabase(path: path, fence: newFence)
        let ref = ids.ref()
        let produce = VaultUpdate(txId: ref.txId, consumed: [],
                                  produced: [VaultState(ref: ref, type: "token", owner: "O=Alice", data: Array("{}".utf8))])

        oldFence.hold(Epoch(1))
        _ = try await old.flows.commit([start("a"), .journal(FlowID("a"), JournalEntry(sequence: 0, kind: EffectKind.record, descriptor: "p",
                                                                                       result: []), [produce])])
        newFence.hold(Epoch(2))
        _ = try await new.flows.commit([start("b")])

        // The old master still believes it leads: its flow commit and its soft lock both fail.
        await #expect(throws: CoordinationError.staleEpoch(resource: "node/0", presented: Epoch(1), current: Epoch(2))) {
            _ = try await old.flows.commit([start("c"), .state(FlowID("a"), FlowState(status: .completed, attempts: 0,
                                                                                        updatedAt: Instant(microsecondsSinceEpoch: 2)), [])])
        }
        await #expect(throws: CoordinationError.self) { try await old.vault.reserve([ref], for: "a") }
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
    }
}
