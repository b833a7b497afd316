/// A server to connect to, parsed from `nats://[user:pass@]host[:port]`, `tls://...` or `host:port`.
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `tls://` was given: this server must be reached over TLS.
    public var requiresTLS: Bool
    /// Credentials embedded in the URL (`user:pass@` or `token@`); they override the options.
    public var user: String?
    public var password: String?
    public var token: String?

    public init(host: String, port: Int = 4222, requiresTLS: Bool = false) {
        self.host = host
        self.port = port
        self.requiresTLS = requiresTLS
    }

    /// Parses a server URL.
    public init(_ url: String) throws(NATSError) {
        var rest = Substring(url.trimmingCharacters(in: " "))
        var tls = false
        if let range = rest.range(of: "://") {
            let scheme = rest[..<range.lowerBound].lowercased()
            switch scheme {
            case "nats": tls = false
            case "tls": tls = true
            default: throw .invalidServerURL(url)
            }
            rest = rest[range.upperBound...]
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var user: String?, password: String?, token: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncodingSimple()
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncodingSimple()
            } else {
                token = String(credentials).removingPercentEncodingSimple()
            }
        }
        var host: Substring
        var port = 4222
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .invalidServerURL(url) }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { throw .invalidServerURL(url) }
                port = p
            } else if !after.isEmpty {
                throw .invalidServerURL(url)
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw .invalidServerURL(url) }
            port = p
        } else {
            host = rest
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw .invalidServerURL(url) }
        self.host = String(host)
        self.port = port
        self.requiresTLS = tls
        self.user = user
        self.password = password
        self.token = token
    }

    /// `host:port`, lower-cased: the identity used to merge discovered servers.
    var key: String { "\(host.lowercased()):\(port)" }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(requiresTLS ? "tls" : "nats")://\(h):\(port)"
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }

    /// Decodes `%XX` escapes (credentials in URLs); invalid escapes are kept as they are.
    fileprivate func removingPercentEncodingSimple() -> String {
        guard contains("%") else { return self }
        var out: [UInt8] = []
        var bytes = Array(utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
                let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
            {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
