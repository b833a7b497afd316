import Foundation
import HawserCore
import Testing

@Suite struct DedicatedThreadTests {
    @Test func jobsRunOnTheThread() async {
        let thread = DedicatedThread(name: "test-thread")
        defer { thread.stop() }
        #expect(await Task(executorPreference: thread) { currentThreadName() }.value == "test-thread")
    }

    /// Were the first `stop` to end the thread, the job enqueued after it would never run.
    @Test(.timeLimit(.minutes(1))) func aSharedThreadRunsJobsUntilItsLastUserStops() async {
        let thread = DedicatedThread(name: "test-shared", users: 2)
        thread.stop()
        let ran = await Task(executorPreference: thread) { true }.value
        #expect(ran)
        thread.stop()
    }
}

/// Read in a synchronous function: async code may not ask for the current thread.
private func currentThreadName() -> String? { Thread.current.name }
