#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ServiceLifecycle
import Synchronization

/// Exclusive use of a data directory by one process: an advisory `flock` on `hawser.lock` inside
/// it, taken before any database in it is opened and held until `release()` (or until the value
/// is freed). Two processes appending to one log, or a restore replacing a store under a running
/// replica, corrupt it; the second one is refused instead. The kernel drops the lock when the
/// holder's process ends, however it ends (kill -9 too), so a stale lock file never blocks a start.
/// The holder writes its pid and command (e.g. `hawser node run`) into the file, for the refusal's message.
public final class DataDirectoryLock: Sendable {
    public static let fileName = "hawser.lock"
    public let directory: String
    private let descriptor: Mutex<Int32?>

    /// Takes the lock on `directory` (created if missing), or throws `DataDirectoryInUse` at once
    /// if another process (or another lock in this one) holds it. A `shared` lock is held by the
    /// processes of one hot-warm node together, which share the directory's database under a
    /// write fence; it still excludes every exclusive holder (a single node, a notary, a restore,
    /// the offline flow tool), and they exclude it.
    public init(directory: String, shared: Bool = false) throws {
        self.directory = directory
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw DataDirectoryInUse(directory: directory, holder: nil, reason: "\(directory) is a file, not a directory: give dataDirectory a directory")
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            // Foundation's error names a domain and a number; the system's reason is beneath it,
            // or else (under /proc) only in its sentence.
            let posix = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { String(cString: strerror(Int32($0.code))) }
            throw DataDirectoryInUse(directory: directory, holder: nil, reason: "cannot create it: \(posix ?? (error as NSError).localizedDescription)")
        }
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataDirectoryInUse(directory: directory, holder: nil, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 else {
            let failure = errno
            let holder = Self.holder(fd)
            close(fd)
            guard failure == EWOULDBLOCK else {
                throw DataDirectoryInUse(directory: directory, holder: nil, reason: "cannot lock \(path): \(String(cString: strerror(failure)))")
            }
            throw DataDirectoryInUse(directory: directory, holder: holder, reason: nil)
        }
        let command = CommandLine.arguments.prefix(3).enumerated()
            .map { $0.offset == 0 ? URL(fileURLWithPath: $0.element).lastPathComponent : $0.element }.joined(separator: " ")
        let text = "\(getpid()) \(command)\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        descriptor = Mutex(fd)
    }

    /// Gives the directory up (closing the file drops the lock). Safe to call more than once.
    public func release() {
        guard let fd = descriptor.withLock({ fd in defer { fd = nil }; return fd }) else { return }
        close(fd)
    }

    deinit { release() }

    /// What the holder wrote: `<pid> <command>`.
    private static func holder(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

/// The data directory is locked by another process (or could not be locked at all).
public struct DataDirectoryInUse: Error, CustomStringConvertible {
    public var directory: String
    /// `<pid> <command>` of the holder, when it wrote them.
    public var holder: String?
    /// Set when the lock file itself could not be opened or locked.
    public var reason: String?

    public var description: String {
        if let reason { return "cannot take the lock on the data directory \(directory): \(reason)" }
        let who: String
        if let holder, let space = holder.firstIndex(of: " ") {
            who = "process \(holder[..<space]) (\(holder[holder.index(after: space)...]))"
        } else {
            who = "another process"
        }
        return "the data directory \(directory) is in use by \(who); stop it first, or give this one another dataDirectory"
    }
}

/// Holds a data directory's lock for a service group: listed first, it is shut down last, after
/// every service that writes to the directory has stopped.
struct DataDirectoryHold: Service {
    let lock: DataDirectoryLock

    func run() async throws {
        try? await gracefulShutdown()
        lock.release()
    }
}
