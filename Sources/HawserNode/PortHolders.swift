import Foundation

/// Which processes hold a TCP port, as Linux's /proc tells (empty elsewhere, or where this
/// process may not look): named in the start-up error about a taken port, which an operator
/// would otherwise chase with `ss -ltnp`.
enum PortHolders {
    /// "pid 123 (nats-server)" for each process with a socket bound to `port`, in pid order.
    static func describe(_ port: Int) -> [String] {
        let inodes = socketInodes(port)
        guard !inodes.isEmpty else { return [] }
        var holders: [(Int, String)] = []
        for pid in entries("/proc").compactMap(Int.init) {
            guard holdsSocket(pid, inodes) else { continue }
            let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            holders.append((pid, name))
        }
        return holders.sorted { $0.0 < $1.0 }.map { "pid \($0.0) (\($0.1))" }
    }

    /// Whether process `pid` has one of the sockets `inodes` open.
    private static func holdsSocket(_ pid: Int, _ inodes: Set<String>) -> Bool {
        let fds = "/proc/\(pid)/fd"
        var target = [CChar](repeating: 0, count: 256)
        return entries(fds).contains { name in
            let length = readlink(fds + "/" + name, &target, target.count - 1)
            guard length > 0 else { return false }
            let link = String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return link.hasPrefix("socket:[") && inodes.contains(String(link.dropFirst(8).dropLast()))
        }
    }

    /// The names in a directory, read with readdir: Foundation's listing gave up on the whole of
    /// /proc when a process it listed exited while it read (the holder was then not named, now and
    /// then, in tests that started processes alongside). An entry gone meanwhile is skipped.
    private static func entries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names
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
