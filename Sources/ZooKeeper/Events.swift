/// The state of a client's session as its owner sees it.
public enum ZooKeeperConnectionState: Sendable, Hashable {
    /// The session was established for the first time.
    case connected
    /// The connection was lost. The session may still be alive on the ensemble; the client is
    /// reconnecting. Ephemeral nodes may vanish if this lasts longer than the session timeout.
    case suspended
    /// The same session was re-established (possibly on another server); watches were re-registered.
    case reconnected
    /// The ensemble expired the session: its ephemeral nodes and watches are gone. Terminal.
    case expired
    /// The client was closed (or could not connect at all). Terminal.
    case closed
}

/// What fired a watch.
public enum WatchEventType: Sendable, Hashable {
    case nodeCreated
    case nodeDeleted
    case nodeDataChanged
    case nodeChildrenChanged
    case other(Int32)

    init(code: Int32) {
        switch code {
        case 1: self = .nodeCreated
        case 2: self = .nodeDeleted
        case 3: self = .nodeDataChanged
        case 4: self = .nodeChildrenChanged
        default: self = .other(code)
        }
    }

    var code: Int32 {
        switch self {
        case .nodeCreated: 1
        case .nodeDeleted: 2
        case .nodeDataChanged: 3
        case .nodeChildrenChanged: 4
        case .other(let code): code
        }
    }
}

/// A fired watch: what happened to which node.
public struct WatchEvent: Sendable, Hashable {
    public var type: WatchEventType
    public var path: String
    public init(type: WatchEventType, path: String) { self.type = type; self.path = path }
}

/// The address of one server of the ensemble.
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    public var description: String { "\(host):\(port)" }

    /// Parses a connect string such as `"127.0.0.1:2181,127.0.0.1:2182"` (port 2181 when omitted).
    /// A chroot suffix (`/path`) is not supported and is rejected.
    public static func parse(connectString: String) throws(ZooKeeperError) -> [ServerAddress] {
        var servers: [ServerAddress] = []
        for part in connectString.split(separator: ",") {
            let item = part.trimmingSpaces
            if item.isEmpty { continue }
            if item.contains("/") { throw .badArguments }
            if let colon = item.lastIndex(of: ":"), !item.hasPrefix("[") || item[..<colon].hasSuffix("]") {
                guard let port = Int(item[item.index(after: colon)...]), (1...65535).contains(port) else {
                    throw .badArguments
                }
                var host = String(item[..<colon])
                if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                servers.append(ServerAddress(host: host, port: port))
            } else {
                servers.append(ServerAddress(host: item, port: 2181))
            }
        }
        if servers.isEmpty { throw .badArguments }
        return servers
    }
}

/// A session's identity. Another client can resume the session with it (as long as it lives).
public struct SessionCredentials: Sendable, Hashable {
    public var id: Int64
    public var password: [UInt8]
    public init(id: Int64, password: [UInt8]) { self.id = id; self.password = password }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
