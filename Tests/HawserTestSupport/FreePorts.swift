import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loopback ports for test servers that run as processes of their own (nats-server, ZooKeeper,
/// a node) and are told their ports. They are drawn below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768 and up by default): a port the kernel hands out for
/// port 0 is one an outgoing connection of any test may take before the server binds it, and a
/// ZooKeeper server of an ensemble never came up that way. Each is checked free by binding it, the
/// sockets held together so that the ports differ. Servers inside the test process bind port 0
/// and read it back instead.
public enum FreePorts {
    public struct Exhausted: Error, CustomStringConvertible {
        public var description: String { "no free loopback ports below the ephemeral range" }
    }

    public static func take(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        let range = 10_000..<max(10_001, min(ephemeralStart(), 65_536))
        var ports: [Int] = []
        var tries = 0
        while ports.count < count {
            tries += 1
            guard tries <= 100 * count + 1_000 else { throw Exhausted() }
            let port = Int.random(in: range)
            if ports.contains(port) { continue }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Exhausted() }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { close(fd); continue }
            sockets.append(fd)
            ports.append(port)
        }
        return ports
    }

    /// The first port of the kernel's ephemeral range (32768 if it cannot be read).
    static func ephemeralStart() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
              let first = text.split(whereSeparator: \.isWhitespace).first, let start = Int(first) else { return 32_768 }
        return start
    }
}
