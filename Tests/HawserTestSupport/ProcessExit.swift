import Foundation

extension Process {
    /// Waits until the child has exited, at most `bound`; true if it has. A child killed under
    /// load is sometimes never reaped by Foundation: it stays a zombie, `isRunning` stays true and
    /// `waitUntilExit()` spins for ever (a full run hung on one, at 80% CPU). The kernel's view
    /// counts too: a zombie has exited, its sockets and ports are closed.
    public func waitUntilGone(within bound: Duration = .seconds(60)) -> Bool {
        let deadline = ContinuousClock.now + bound
        while isRunning, !isZombie, ContinuousClock.now < deadline { usleep(20_000) }  // no exit event to wait on with a bound
        return !isRunning || isZombie
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

    private var isZombie: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}
