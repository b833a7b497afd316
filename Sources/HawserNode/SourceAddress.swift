import NIOCore

/// A caller's address as limits count it: its IPv4 address, or its IPv6 address's /64 network
/// (one host commonly holds a whole /64, so counting single addresses would let it take a fresh
/// one per attempt). Forwarding headers are not trusted.
enum SourceAddress {
    static func group(_ address: SocketAddress?) -> String {
        switch address {
        case .v4: return address?.ipAddress ?? "unknown"
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {  // IPv4-mapped
                return bytes[12...].map(String.init).joined(separator: ".")
            }
            let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            return groups.joined(separator: ":") + "::/64"
        case .unixDomainSocket, nil: return "local"
        }
    }
}
