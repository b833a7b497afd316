import Foundation
import Synchronization

/// A task executor with a thread of its own. The notary's replica and appender and the flows'
/// group committer run their loops on one each (`withTaskExecutorPreference`), so that their
/// next step never waits in the cooperative pool's queue behind signature checks and flow code:
/// the OS shares the cores between threads fairly, the pool's queue does not.
public final class DedicatedThread: TaskExecutor, @unchecked Sendable {
    // @unchecked: `condition` guards `jobs`, `stopped` and `users`; the thread is the only consumer.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    /// The loops that run on the thread and have not called `stop` yet.
    private var users: Int

    /// `name`: the thread's name in profilers and debuggers (Linux keeps 15 characters).
    /// `users`: how many loops share the thread; it exits once each of them has called `stop`.
    public init(name: String, users: Int = 1) {
        self.users = users
        let thread = Thread { [self] in
            // The OS thread's name, as profilers show it (Foundation's `name` does not always
            // reach the OS: tests saw the creating thread's name kept).
            #if os(Linux)
            try? String(name.utf8.prefix(15))?.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            #endif
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

    /// One user is done with the thread. Once every user is, the thread exits when its queue is
    /// empty; jobs enqueued later are never run, so a user calls this only when nothing of its
    /// own runs on the executor any more.
    public func stop() {
        condition.lock()
        users -= 1
        if users <= 0 {
            stopped = true
            condition.signal()
        }
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
