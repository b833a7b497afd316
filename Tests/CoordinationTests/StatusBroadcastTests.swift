import Coordination
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(10))) struct StatusBroadcastTests {
    @Test func aWatcherHearsTheCurrentStatusThenEveryChangeOnce() async {
        let broadcast = StatusBroadcast()
        broadcast.update { $0.role = .follower }
        let stream = broadcast.stream()
        broadcast.update { $0.role = .follower }  // no change: not repeated
        broadcast.update { $0 = ElectionStatus(role: .leader(Epoch(3)), leader: "A") }
        broadcast.finish()
        var seen: [ElectionStatus] = []
        for await status in stream { seen.append(status) }
        #expect(seen == [ElectionStatus(role: .follower, leader: nil), ElectionStatus(role: .leader(Epoch(3)), leader: "A")])
        // After the end, a new watcher gets the last status and the end.
        var late: [ElectionStatus] = []
        for await status in broadcast.stream() { late.append(status) }
        #expect(late.map(\.role) == [.leader(Epoch(3))])
    }

    @Test func aDeadlineBoundsAStoreCall() async throws {
        await #expect(throws: CoordinationError.self) {
            try await withDeadline(.milliseconds(20), "a call that hangs") {
                try await Task.sleep(for: .seconds(60))
            }
        }
        #expect(try await withDeadline(.seconds(5), "a quick call") { 42 } == 42)
    }

    /// A store call that does not notice cancellation (a read from a server that stopped
    /// answering) is bounded too. Before `within`, the deadline waited for it (a task group
    /// waits for its children), and this test hung until its time limit.
    @Test(.timeLimit(.minutes(1))) func aDeadlineBoundsACallThatIgnoresCancellation() async throws {
        let parked = Mutex<CheckedContinuation<Void, Never>?>(nil)
        defer { parked.withLock { $0?.resume() } }
        await #expect(throws: CoordinationError.self) {
            try await withDeadline(.milliseconds(20), "a call that ignores cancellation") {
                await withCheckedContinuation { continuation in parked.withLock { $0 = continuation } }
            }
        }
    }
}
