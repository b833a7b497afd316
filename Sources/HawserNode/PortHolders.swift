import Foundation

/// Which processes hold a TCP port, as Linux's /proc tells (empty elsewhere, or where this
/// process may not look): named in the start-up error about a taken port, which an operator
/// would otherwise chase with `ss -ltnp`.
enum PortHolders {
    /// "pid 123 (nats-server)" for each process with a socket bound to `port`, in pid order.
    static func describe(_ port: Int) -> [String] {
        let inodes = socketInodes(port)
        guard !inodes.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var holders: [(Int, String)] = []
        for pid in pids.compactMap(Int.init) {
            let fds = "/proc/\(pid)/fd"
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: fds) else { continue }
            let holds = entries.contains { entry in
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + entry),
                      target.hasPrefix("socket:[") else { return false }
                return inodes.contains(String(target.dropFirst(8).dropLast()))
            }
            guard holds else { continue }
            let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            holders.append((pid, name))
        }
        return holders.sorted { $0.0 < $1.0 }.map { "pid \($0.0) (\($0.1))" }
    }

    /// The inodes of the sockets bound to `port` (a socket in TIME_WAIT has none).
    private static func socketInodes(_ port: Int) -> Set<String> {
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let columns = line.split(separator: " ")
                guard columns.count > 9, let local = columns[1].split(separator: ":").last,
                      Int(local, radix: 16) == port, columns[9] != "0" else { continue }
                inodes.insert(String(columns[9]))
            }
        }
        return inodes
    }
}
