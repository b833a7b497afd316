import Foundation
import Glibc
import Synchronization

/// Loopback ports for servers that run as processes of their own and are told their ports: a
/// test's nats-server, ZooKeeper, PostgreSQL or node, a benchmark's workers. They are drawn
/// outside the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768-60999 by default;
/// below it, or above it if it starts low): a port the kernel hands out for port 0 is one an
/// outgoing connection may take before the server binds it (the likely reason a ZooKeeper server
/// of an ensemble once never came up). Each is checked free by binding it, and none is handed out twice in a process
/// (so the ports of one take differ too): a server binds its port seconds after it is taken (a
/// JVM's start), or not at all while it is down to be restarted, and a port drawn again meanwhile
/// went to two servers (a ZooKeeper server failed to bind its election port and exited). Servers
/// inside the process bind port 0 and read it back instead.
public enum FreePorts {
    private static let handedOut = Mutex<Set<Int>>([])

    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    public static func take(_ count: Int) throws -> [Int] {
        let range = outsideEphemeralRange()
        guard !range.isEmpty else { throw Unavailable(description: "the kernel's ephemeral range leaves no port outside it") }
        var ports: [Int] = []
        var tries = 0
        while ports.count < count {
            tries += 1
            guard tries <= 100 * count + 1_000 else { throw Unavailable(description: "no \(count) free loopback ports in \(range)") }
            // Claimed before it is checked: a port found taken is skipped by later takes too.
            let port = Int.random(in: range)
            guard handedOut.withLock({ $0.insert(port).inserted }), let fd = socket(boundTo: port) else { continue }
            close(fd)
            ports.append(port)
        }
        return ports
    }

    /// A TCP socket bound to 127.0.0.1:`port`, or nil if the port is taken; the caller closes it.
    public static func socket(boundTo port: Int) -> Int32? {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { close(fd); return nil }
        return fd
    }

    /// The ports to draw from: 10000 up to the kernel's ephemeral range, or above its end when it
    /// leaves fewer than 1,000 below it.
    public static func outsideEphemeralRange() -> Range<Int> {
        var (start, end) = (32_768, 60_999)
        if let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8) {
            let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
            if bounds.count == 2 { (start, end) = (bounds[0], bounds[1]) }
        }
        return start >= 11_000 ? 10_000..<start : (end + 1)..<65_536
    }
}
