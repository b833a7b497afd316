import Foundation

/// Starts child processes one at a time, each with its pipes.
///
/// Foundation's `Process.run()` (Swift 6.3, Linux) closes in the child only the descriptors that
/// were open when it listed them, then spawns: a pipe, or the socket pair through which
/// Foundation learns that a child exited, made by another thread in between goes to the new child
/// as well. Held open there, the other child's output never ends for its reader, and its exit is
/// never noticed (`waitUntilExit()` spins, a termination handler never runs) until the new child
/// exits too. A test that waited on a process it had killed hung for good while its own server,
/// started at that moment, lived on. Made and started under one lock, no child's pipes or socket
/// pair are ever half-made when another child is spawned.
public enum ChildProcesses {
    private static let lock = NSLock()

    /// Runs `body`, which makes a child's pipes and starts it (`Process.run()`), while no other
    /// thread of this process does the same. `body` must not call this again.
    public static func start<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Starts `process` with a new pipe as its standard output (its standard error too if
    /// `mergingErrors`) and returns the pipe.
    public static func startWithOutputPipe(_ process: Process, mergingErrors: Bool = false) throws -> Pipe {
        try start {
            let pipe = Pipe()
            process.standardOutput = pipe
            if mergingErrors { process.standardError = pipe }
            try process.run()
            return pipe
        }
    }
}
