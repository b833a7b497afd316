import Foundation
import HawserCore
import HawserTestSupport
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(2)))
struct ChildProcessesTests {
    /// Short children started from several threads at once beside long-lived ones: each short
    /// one's exit is seen while the long ones still run, and each long one ends when its own
    /// input closes. Started with a bare `Process.run()`, a child now and then took another's
    /// exit socket or pipe with it: that exit went unseen, or that input never ended, until the
    /// taker ended (the suite's hangs).
    @Test func everyExitIsSeenWhileChildrenStartedBesideItRunOn() async throws {
        let long = Mutex<[(Process, Pipe)]>([])
        let short = Mutex<[Process]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 {
                do {
                    // `cat` runs until its input closes; `true` ends at once, its output a pipe.
                    let cat = Process()
                    cat.executableURL = URL(fileURLWithPath: "/bin/cat")
                    cat.standardOutput = FileHandle.nullDevice
                    let input = try ChildProcesses.start {
                        let input = Pipe()
                        cat.standardInput = input
                        try cat.run()
                        return input
                    }
                    long.withLock { $0.append((cat, input)) }
                    let quick = Process()
                    quick.executableURL = URL(fileURLWithPath: "/bin/true")
                    try ChildProcesses.start {
                        quick.standardOutput = Pipe()
                        try quick.run()
                    }
                    short.withLock { $0.append(quick) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        // Killed, not ended by closing their input: a `cat` that took another's pipe never sees
        // its input end (the test hung there before the fix).
        defer {
            for (cat, _) in long.withLock({ $0 }) {
                kill(cat.processIdentifier, SIGKILL)
                _ = cat.waitUntilGone()
            }
        }
        #expect(failures.withLock { $0 } == [])
        let quick = short.withLock { $0 }
        #expect(quick.count == 200)
        try await eventually("every short child's exit seen", timeout: .seconds(20)) { quick.allSatisfy { !$0.isRunning } }
        #expect(long.withLock { $0.allSatisfy { $0.0.isRunning } }, "the long children still run")
        // Each `cat` ends when its own input closes: none holds another's pipe.
        let cats = long.withLock { $0 }
        for (_, input) in cats { try input.fileHandleForWriting.close() }
        try await eventually("every long child's end", timeout: .seconds(20)) { cats.allSatisfy { !$0.0.isRunning } }
    }
}
