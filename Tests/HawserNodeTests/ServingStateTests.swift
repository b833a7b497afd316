import Synchronization
import Testing
@testable import HawserNode

/// A process that owns its shard through an election serves only while the election confirms it,
/// asked at each request: its step-down may come a moment later (a process paused past its lease
/// runs the requests queued meanwhile first).
@Suite struct ServingStateTests {
    @Test func anActiveProcessWhoseLeadershipLapsedAnswersAsAStandby() throws {
        let serving = ServingState<Int>(.active(7))
        #expect(try serving.work(or: NodeAPIError.self) == 7)
        #expect(serving.isActive)
        let leads = Flag(true)
        serving.confirmed { leads.value }
        #expect(serving.isActive)
        leads.value = false
        #expect(!serving.isActive)
        guard case .standby(active: nil) = serving.current else { Issue.record("\(serving.current)"); return }
        #expect(throws: NodeAPIError.self) { try serving.work(or: NodeAPIError.self) }
        serving.set(.takingOver("claiming"))
        guard case .takingOver = serving.current else { Issue.record("\(serving.current)"); return }
    }
}

private final class Flag: Sendable {
    private let state: Mutex<Bool>
    init(_ value: Bool) { state = Mutex(value) }
    var value: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
