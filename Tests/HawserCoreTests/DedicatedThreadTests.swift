import Foundation
import HawserCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct DedicatedThreadTests {
    #if os(Linux)
    @Test func jobsRunOnTheNamedThread() async {
        let thread = DedicatedThread(name: "test-thread")
        defer { thread.stop() }
        #expect(await Task(executorPreference: thread) { osThreadName() }.value == "test-thread")
    }
    #endif

    /// Were the first `stop` to end the thread, the job enqueued after it would never run.
    @Test(.timeLimit(.minutes(1))) func aSharedThreadRunsJobsUntilItsLastUserStops() async {
        let thread = DedicatedThread(name: "test-shared", users: 2)
        thread.stop()
        let ran = await Task(executorPreference: thread) { true }.value
        #expect(ran)
        thread.stop()
    }
}

/// The calling thread's name as the OS has it.
private func osThreadName() -> String? {
    (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines)
}
