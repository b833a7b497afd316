import Coordination
import Testing

/// The fence a process's writes carry: the epoch held now for its work's writes, and after a
/// release the epoch of the term that is ending for that term's cleanup, until a new term.
@Suite(.timeLimit(.minutes(10))) struct WriteFenceTests {
    @Test func aReleasedFenceRefusesWritesButKeepsTheEndingTermsEpochForItsCleanup() throws {
        let fence = WriteFence(resource: "node/0")
        #expect(throws: CoordinationError.notOwner(resource: "node/0")) { try fence.epochForCleanup() }

        fence.hold(Epoch(3))
        #expect(try fence.epochForWrite() == Epoch(3))
        fence.release()
        #expect(fence.epoch == nil)
        #expect(throws: CoordinationError.notOwner(resource: "node/0")) { try fence.epochForWrite() }
        #expect(try fence.epochForCleanup() == Epoch(3))

        fence.hold(Epoch(5))
        #expect(try fence.epochForCleanup() == Epoch(5))
        #expect(try WriteFence(resource: "node/0", epoch: Epoch(7)).epochForCleanup() == Epoch(7))
    }
}
