import Coordination
import Testing

/// The fence a process's writes carry: the epoch held now, and the check of a hot-cold process
/// that holds its epoch for life against the epoch the database records.
@Suite(.timeLimit(.minutes(10))) struct WriteFenceTests {
    @Test func aReleasedFenceRefusesWrites() throws {
        let fence = WriteFence(resource: "node/0")
        #expect(throws: CoordinationError.notOwner(resource: "node/0")) { try fence.epochForWrite() }
        fence.hold(Epoch(3))
        #expect(try fence.epochForWrite() == Epoch(3))
        fence.release()
        #expect(fence.epoch == nil)
        #expect(throws: CoordinationError.notOwner(resource: "node/0")) { try fence.epochForWrite() }
        #expect(try WriteFence(resource: "node/0", epoch: Epoch(7)).epochForWrite() == Epoch(7))
    }

    @Test func theClaimHoldsUntilAHigherEpochIsRecorded() throws {
        let fence = WriteFence(resource: "node/0", epoch: Epoch(5))
        try fence.checkRecorded(nil)
        try fence.checkRecorded(Epoch(4))
        try fence.checkRecorded(Epoch(5))
        #expect(throws: CoordinationError.staleEpoch(resource: "node/0", presented: Epoch(5), current: Epoch(6))) {
            try fence.checkRecorded(Epoch(6))
        }
        fence.release()
        #expect(throws: CoordinationError.notOwner(resource: "node/0")) { try fence.checkRecorded(nil) }
    }
}
