import Foundation
import HawserCore

/// Kills server processes a test started if the test process dies without stopping them: a shell
/// reads a pipe that only this process holds, and `kill -9`s the processes when the pipe closes.
public final class ProcessWatchdog: Sendable {
    private let shell = Process()
    private let pipe: Pipe

    public init(killing pids: [Int32]) throws {
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "read _; kill -9 \(pids.map(String.init).joined(separator: " ")) 2>/dev/null; exit 0"]
        shell.standardOutput = FileHandle.nullDevice
        shell.standardError = FileHandle.nullDevice
        pipe = try ChildProcesses.start { [shell] in
            let pipe = Pipe()
            shell.standardInput = pipe
            try shell.run()
            return pipe
        }
    }

    /// Ends the watchdog without letting it kill anything (the pids may be reused later).
    public func stop() {
        if shell.isRunning {
            kill(shell.processIdentifier, SIGKILL)
            shell.waitUntilExit()
        }
        try? pipe.fileHandleForWriting.close()
    }
}
