import Coordination
import ZooKeeper

/// Settings of an election on ZooKeeper. Validated by `validate()` at start-up.
public struct ZooKeeperElectionConfiguration: Sendable {
    /// `host:port,host:port,...` of the ensemble.
    public var connectString: String
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

    public init(connectString: String) { self.connectString = connectString }

    /// Every problem at once; empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        if (try? ServerAddress.parse(connectString: connectString)) == nil {
            problems.append("zookeeper connect string \"\(connectString)\" must be host:port[,host:port...] without a chroot")
        }
        if (try? Candidate.validate(id: name)) == nil { problems.append("election name \"\(name)\" must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'") }
        if !root.hasPrefix("/") || root.hasSuffix("/") || root.contains("//") { problems.append("root \"\(root)\" must be an absolute ZooKeeper path without a trailing '/'") }
        if sessionTimeout < .milliseconds(400) || sessionTimeout > .seconds(60) { problems.append("sessionTimeout must be 400 ms to 60 s (the ensemble clamps it to 2-20 ticks)") }
        if checkInterval < .milliseconds(10) || checkInterval > sessionTimeout { problems.append("checkInterval must be 10 ms to sessionTimeout") }
        if holdDown < .zero { problems.append("holdDown must not be negative") }
        if requestTimeout <= .zero { problems.append("requestTimeout must be positive") }
        return problems
    }

    public func validate() throws(CoordinationError) {
        let problems = problems()
        if !problems.isEmpty { throw .invalidConfiguration(problems.joined(separator: "; ")) }
    }

    var base: String { "\(root)/\(name)" }
    var candidatesPath: String { "\(base)/candidates" }
    var epochPath: String { "\(base)/epoch" }
    var preferredPath: String { "\(base)/preferred" }
    var switchoverPath: String { "\(base)/switchover" }
}
