#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The listen address cannot be bound: another process listens on the port, or the host is
/// not an address of this machine.
public struct ListenAddressUnavailable: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// The configuration section that gave the address (`listen`, `grpc`, `network.listen`).
    public var section: String
    public var reason: String
    public var description: String { "cannot listen on \(host):\(port) (\(section).host, \(section).port): \(reason)" }
}

/// Checks, before a node or notary opens its databases and starts its services, that its HTTP
/// address can be bound: the HTTP server binds last, so a taken port would otherwise be found
/// only after the notary and the flow engine had started (and resumed flows) for nothing.
enum ListenCheck {
    /// Binds a socket to `host:port` as the HTTP server will (with `SO_REUSEADDR`) and closes it.
    /// Port 0 (any free port) always binds.
    static func ensureBindable(host: String, port: Int, section: String) throws {
        guard port != 0 else { return }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &found)
        guard resolved == 0, let address = found else {
            throw ListenAddressUnavailable(host: host, port: port, section: section, reason: "the host does not resolve (\(String(cString: gai_strerror(resolved))))")
        }
        defer { freeaddrinfo(found) }
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
        guard fd >= 0 else { return }  // cannot test here; the server will report its own failure
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            let failure = errno
            let reason = switch failure {
            case EADDRINUSE: Self.inUse(port)
            case EADDRNOTAVAIL: "\(host) is not an address of this machine"
            case EACCES: "not permitted to bind this port"
            default: String(cString: strerror(failure))
            }
            throw ListenAddressUnavailable(host: host, port: port, section: section, reason: reason)
        }
    }

    /// "the port is in use by another process", naming it where /proc tells.
    static func inUse(_ port: Int) -> String {
        let holders = PortHolders.describe(port)
        return "the port is in use by another process" + (holders.isEmpty ? "" : " (\(holders.joined(separator: ", ")))")
    }

    /// Whether `host` is an IPv4 or IPv6 address literal (the gRPC listener takes no host names).
    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
