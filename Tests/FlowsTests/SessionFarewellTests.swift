import Embedded
@testable import Flows
import HawserCore
import HawserTestSupport
import Sessions
import Testing

/// The messages a flow's end sends on its open sessions (`sessionFarewell`) go out with the end's
/// commit. When that commit fails, the engine asks again for the end it records instead: the
/// counterparty must still be told.
@Suite(.timeLimit(.minutes(10))) struct SessionFarewellTests {
    @Test func askingAgainAfterAFailedEndCommitStillTellsTheCounterparty() throws {
        let directory = try TemporaryDirectory()
        let database = try SQLiteNodeDatabase(path: directory.path + "/node.sqlite")
        let context = FlowContext(flowId: FlowID("f"), journal: [], services: FlowServices(),
                                  committer: GroupCommitter(store: database.flows, maxWritesPerCommit: 1_000)) { _ in }
        context.adopt(FlowSession(id: "s1", ourParty: "O=Bob", counterparty: "O=Alice", isInitiator: false))
        let failed = FlowState(status: .failed, error: "boom", attempts: 0, updatedAt: Instant(microsecondsSinceEpoch: 1))
        let first = context.sessionFarewell(failed), second = context.sessionFarewell(failed)
        #expect(first.count == 1)
        #expect(second.count == 1, "the second ask (the first end's commit failed) still sends the error")
    }
}
