import Coordination
import Foundation
import ZooKeeper

/// The digest identity an election's ZooKeeper nodes belong to. Every candidate and `hawser
/// admin` of one election use the same one; whoever lacks it can neither change nor delete the
/// election's nodes. Printing it never shows the password.
public struct ZooKeeperCredentials: Sendable, Hashable, CustomStringConvertible {
    public var user: String
    public var password: String
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// Parses `user:password` (the content of a credentials file, trailing newline ignored).
    public static func parse(_ text: String) -> ZooKeeperCredentials? {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return ZooKeeperCredentials(user: String(line[..<colon]), password: String(line[line.index(after: colon)...]))
    }

    /// Every permission for this identity, none for anybody else.
    public var acl: [ACL] { [ACL(permissions: .all, id: .digest(user: user, password: password))] }

    public var description: String { "digest \(user):***" }
}

/// Settings of an election on ZooKeeper. Validated by `validate()` at start-up.
public struct ZooKeeperElectionConfiguration: Sendable {
    /// `host:port,host:port,...` of the ensemble; every server with its port.
    public var connectString: String
    /// The digest identity that owns the election's nodes. Required: an election whose nodes
    /// anyone may write can be made to elect two leaders.
    public var credentials: ZooKeeperCredentials
    /// The election's name; its nodes live under `root/name`.
    public var name: String = "default"
    public var root: String = "/hawser/elections"
    /// The session timeout asked of the ensemble: a dead leader is replaced after about this long.
    public var sessionTimeout: Duration = .seconds(2)
    /// How often a candidate re-checks its health, the preferred master and switchover requests.
    public var checkInterval: Duration = .milliseconds(250)
    /// How long the preferred master must be standing before leadership moves to it.
    public var holdDown: Duration = .seconds(10)
    /// How long one ZooKeeper request may take before it counts as failed.
    public var requestTimeout: Duration = .seconds(2)

    public init(connectString: String, credentials: ZooKeeperCredentials) {
        self.connectString = connectString
        self.credentials = credentials
    }

    /// Every problem at once; empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        let servers = connectString.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if servers.isEmpty || servers.contains(where: { !Self.hasPort($0) }) || (try? ServerAddress.parse(connectString: connectString)) == nil {
            problems.append("zookeeper connect string \"\(connectString)\" must be host:port[,host:port...], every server with its port (ZooKeeper listens on 2181 by default), without a chroot")
        }
        if credentials.user.isEmpty || credentials.user.contains(":") || credentials.password.isEmpty {
            problems.append("zookeeper credentials must be user:password with a user (no ':') and a password, both non-empty")
        }
        if (try? Candidate.validate(id: name)) == nil { problems.append("election name \"\(name)\" must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'") }
        if !root.hasPrefix("/") || root.hasSuffix("/") || root.contains("//") { problems.append("root \"\(root)\" must be an absolute ZooKeeper path without a trailing '/'") }
        if sessionTimeout < .milliseconds(400) || sessionTimeout > .seconds(60) { problems.append("sessionTimeout must be 400 ms to 60 s (the ensemble clamps it to 2-20 ticks)") }
        if checkInterval < .milliseconds(10) || checkInterval > sessionTimeout / 3 { problems.append("checkInterval must be 10 ms to a third of sessionTimeout, so a leader confirms its place at least twice before it must stop") }
        if holdDown < .zero { problems.append("holdDown must not be negative") }
        if requestTimeout <= .zero { problems.append("requestTimeout must be positive") }
        return problems
    }

    public func validate() throws(CoordinationError) {
        let problems = problems()
        if !problems.isEmpty { throw .invalidConfiguration(problems.joined(separator: "; ")) }
    }

    /// `host:port`, or `[v6]:port`, with a port given.
    private static func hasPort(_ server: String) -> Bool {
        guard let colon = server.lastIndex(of: ":") else { return false }
        if server.hasPrefix("[") { return server[..<colon].hasSuffix("]") }
        return Int(server[server.index(after: colon)...]) != nil
    }

    /// The core's timing. Leadership lasts two thirds of the session timeout after each confirmed
    /// round (when the client gives up a silent connection); resigning moves a node to the back of
    /// the queue, so nobody needs to stand aside; a crashed predecessor's node vanishes when its
    /// session expires, so a duplicate is refused after three session timeouts.
    public var timing: ElectionTiming {
        ElectionTiming(validity: sessionTimeout * 2 / 3, holdDown: holdDown, standAside: .zero, duplicateGrace: sessionTimeout * 3)
    }

    var base: String { "\(root)/\(name)" }
    var candidatesPath: String { "\(base)/candidates" }
    var epochPath: String { "\(base)/epoch" }
    var preferredPath: String { "\(base)/preferred" }
    var switchoverPath: String { "\(base)/switchover" }
}
