import HawserCore
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(10))) struct DeadlinesTests {
    /// The order in which scheduled actions ran, and a way to wait for the n-th.
    final class Runs: Sendable {
        private let state = Mutex<(order: [String], waiters: [(Int, CheckedContinuation<Void, Never>)])>(([], []))

        func ran(_ name: String) {
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.order.append(name)
                let count = state.order.count
                let ready = state.waiters.filter { $0.0 <= count }.map(\.1)
                state.waiters.removeAll { $0.0 <= count }
                return ready
            }
            for continuation in ready { continuation.resume() }
        }

        func waitFor(_ count: Int) async {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.order.count >= count { return true }
                    state.waiters.append((count, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }

        var order: [String] { state.withLock { $0.order } }
    }

    @Test func actionsRunInDeadlineOrderWhateverOrderTheyCame() async {
        let deadlines = Deadlines()
        let runs = Runs()
        deadlines.schedule(after: .milliseconds(60)) { runs.ran("late") }
        deadlines.schedule(after: .milliseconds(20)) { runs.ran("early") }
        deadlines.schedule(after: .milliseconds(40)) { runs.ran("middle") }
        await runs.waitFor(3)
        #expect(runs.order == ["early", "middle", "late"])
        #expect(deadlines.count == 0)
    }

    @Test func aCancelledActionNeverRuns() async {
        let deadlines = Deadlines()
        let runs = Runs()
        let cancelled = deadlines.schedule(after: .milliseconds(10)) { runs.ran("cancelled") }
        deadlines.schedule(after: .milliseconds(30)) { runs.ran("kept") }
        deadlines.cancel(cancelled)
        #expect(deadlines.count == 1)
        // The kept action is due after the cancelled one: had that run, it would come first.
        await runs.waitFor(1)
        #expect(runs.order == ["kept"])
    }

    @Test func manyCancelledActionsArePurgedAndTheLiveOneStillRuns() async {
        let deadlines = Deadlines()
        let runs = Runs()
        let cancelled = (0..<2_000).map { _ in deadlines.schedule(after: .milliseconds(10)) { runs.ran("cancelled") } }
        deadlines.schedule(after: .milliseconds(30)) { runs.ran("kept") }
        for handle in cancelled { deadlines.cancel(handle) }
        await runs.waitFor(1)
        #expect(runs.order == ["kept"])
        #expect(deadlines.count == 0)
    }

    @Test func anEarlierDeadlineWakesASleeperSetForALaterOne() async {
        let deadlines = Deadlines()
        let runs = Runs()
        let far = deadlines.schedule(after: .seconds(3_600)) { runs.ran("far") }
        deadlines.schedule(after: .milliseconds(5)) { runs.ran("near") }
        await runs.waitFor(1)
        #expect(runs.order == ["near"])
        deadlines.cancel(far)
        #expect(deadlines.count == 0)
    }
}
