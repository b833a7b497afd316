import Foundation
import Synchronization

/// A task executor with a thread of its own. The notary's replica and appender and the flows'
/// group committer run their loops on one each (`withTaskExecutorPreference`), so that their
/// next step never waits in the cooperative pool's queue behind signature checks and flow code:
/// the OS shares the cores between threads fairly, the pool's queue does not.
public final class DedicatedThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `condition` guards `jobs` and `stopped`; the thread is the only consumer.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    /// `name`: the thread's name in profilers and debuggers (Linux keeps 15 characters).
    public init(name: String) {
        let thread = Thread { [self] in
            Thread.current.name = name  // set from the thread itself, Foundation names the OS thread too
            runJobs()
        }
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread exit once its queue is empty. Jobs enqueued later are never run, so call
    /// this only when nothing runs on the executor any more.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty { condition.unlock(); return }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
