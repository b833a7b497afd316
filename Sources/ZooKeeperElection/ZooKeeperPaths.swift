import Coordination
import Logging
import ZooKeeper

/// The election's persistent nodes and the session that reaches them: every node of an election
/// belongs to its digest credentials (ACL), so a client without them can neither change nor
/// delete it.
enum ZooKeeperPaths {
    /// Opens a session and authenticates it with the election's credentials.
    static func connect(_ configuration: ZooKeeperElectionConfiguration, initialConnectTimeout: Duration,
                        logger: Logger) async throws -> ZooKeeperClient {
        var zk = try ZooKeeperConfiguration(connectString: configuration.connectString)
        zk.sessionTimeout = configuration.sessionTimeout
        zk.initialConnectTimeout = initialConnectTimeout
        let client = try await ZooKeeperClient.connect(configuration: zk, logger: logger)
        do {
            try await client.addDigestAuth(user: configuration.credentials.user, password: configuration.credentials.password)
        } catch {
            await client.close()
            throw CoordinationError.notAuthorized("ZooKeeper refused the digest credentials of user \(configuration.credentials.user): \(error)")
        }
        return client
    }

    /// Creates the election's nodes with its ACL, and puts its ACL on those that exist without it
    /// (created by an older version, or by hand). Throws `notAuthorized` when a node belongs to
    /// other credentials. The ancestors above the election's own node let anybody read and create
    /// (other elections live there) and only these credentials delete.
    static func ensure(_ client: ZooKeeperClient, _ configuration: ZooKeeperElectionConfiguration, logger: Logger) async throws {
        let acl = configuration.credentials.acl
        let ancestorACL = acl + [ACL(permissions: [.read, .create], id: .anyone)]
        var path = ""
        let parts = configuration.base.split(separator: "/")
        for (index, part) in parts.enumerated() {
            path += "/\(part)"
            if index < parts.count - 1 {
                try await createIfMissing(client, path, acl: ancestorACL)
            } else {
                try await protect(client, path, acl: acl, configuration: configuration, logger: logger)
            }
        }
        for child in [configuration.candidatesPath, configuration.epochPath, configuration.preferredPath, configuration.switchoverPath] {
            try await protect(client, child, acl: acl, configuration: configuration, logger: logger)
        }
    }

    private static func protect(_ client: ZooKeeperClient, _ path: String, acl: [ACL],
                                configuration: ZooKeeperElectionConfiguration, logger: Logger) async throws {
        if try await createIfMissing(client, path, acl: acl) { return }
        do {
            let (current, stat) = try await client.getACL(path)
            if current == acl { return }
            try await client.setACL(path, acl: acl, version: stat.aversion)
            logger.warning("protected an election node that anyone could change", metadata: ["node": "\(path)", "was": "\(current)"])
        } catch ZooKeeperError.noAuth {
            throw CoordinationError.notAuthorized(
                "the election node \(path) belongs to other credentials than \(configuration.credentials); use the election's own")
        }
    }

    /// Returns whether it created the node.
    @discardableResult
    private static func createIfMissing(_ client: ZooKeeperClient, _ path: String, acl: [ACL]) async throws -> Bool {
        do {
            try await client.create(path, acl: acl)
            return true
        } catch ZooKeeperError.nodeExists {
            return false
        } catch ZooKeeperError.noAuth {
            throw CoordinationError.notAuthorized("ZooKeeper does not let these credentials create \(path)")
        }
    }
}
