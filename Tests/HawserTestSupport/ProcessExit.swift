import Foundation

extension Process {
    /// Waits until the child has exited, at most `bound`; true if it has. A child killed under
    /// load is sometimes never reaped by Foundation: it stays a zombie, `isRunning` stays true and
    /// `waitUntilExit()` spins for ever (a full run hung on one, at 80% CPU). The kernel's view
    /// counts too: a zombie whose threads have all exited has closed its sockets and ports.
    public func waitUntilGone(within bound: Duration = .seconds(60)) -> Bool {
        let deadline = ContinuousClock.now + bound
        while isRunning, !hasExitedWhole, ContinuousClock.now < deadline { usleep(20_000) }  // no exit event to wait on with a bound
        return !isRunning || hasExitedWhole
    }

    /// The exit status as `terminationStatus` gives it (the code, or the signal that ended it),
    /// also for a zombie Foundation has not reaped (read from the kernel); nil while it runs.
    public var exitStatus: Int32? {
        if !isRunning { return terminationStatus }
        // /proc/PID/stat: "pid (name) state ...", field 52 the exit code in waitpid's form.
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.first == "Z", let code = fields.last.flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else { return nil }
        return code & 0x7F != 0 ? code & 0x7F : (code >> 8) & 0xFF
    }

    /// The main thread is a zombie and no other thread is left. (The main thread of a process
    /// killed with SIGKILL can be a zombie while its other threads still exit; the process's
    /// files, its listening sockets among them, close only when the last one has: a restart on
    /// the same port failed with "in use" in that moment.)
    private var hasExitedWhole: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              stat[stat.index(after: close)...].split(separator: " ").first == "Z" else { return false }
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(processIdentifier)/task")) ?? []
        return threads.count <= 1
    }
}
