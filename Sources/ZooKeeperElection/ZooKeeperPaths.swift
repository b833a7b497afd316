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
        try await protect(client, configuration.candidatesPath, acl: acl, configuration: configuration, logger: logger)
        try await protect(client, configuration.epochPath, acl: acl, configuration: configuration, logger: logger)
        for setting in [configuration.preferredPath, configuration.switchoverPath] {
            // What anybody could write there (a preferred master, a switchover's target) is void.
            if try await protect(client, setting, acl: acl, configuration: configuration, logger: logger) {
                _ = try await client.setData(setting, data: [])
            }
        }
        try await removeStrangers(client, configuration, logger: logger)
    }

    /// Deletes the candidate nodes without the election's ACL. While the candidates node was not
    /// protected (an outsider made the election's nodes before its first candidate came), anybody
    /// could queue one there: a candidate that never leads and holds the others back, or one
    /// under a real candidate's id, which then gives up as a duplicate. Once the candidates node
    /// is the election's, nobody else can add one, so this is done once, after protecting it.
    private static func removeStrangers(_ client: ZooKeeperClient, _ configuration: ZooKeeperElectionConfiguration,
                                        logger: Logger) async throws {
        for child in try await client.getChildren(configuration.candidatesPath).children {
            let path = "\(configuration.candidatesPath)/\(child)"
            do {
                let (current, _) = try await client.getACL(path)
                if current == configuration.credentials.acl { continue }
                try await client.delete(path)
                logger.warning("removed a candidate node these credentials did not make", metadata: ["node": "\(path)"])
            } catch ZooKeeperError.noNode {
                continue  // its session ended meanwhile
            }
        }
    }

    /// Returns whether the node's ACL had to be put right (somebody else made it).
    @discardableResult
    private static func protect(_ client: ZooKeeperClient, _ path: String, acl: [ACL],
                                configuration: ZooKeeperElectionConfiguration, logger: Logger) async throws -> Bool {
        if try await createIfMissing(client, path, acl: acl) { return false }
        do {
            let (current, stat) = try await client.getACL(path)
            if current == acl { return false }
            try await client.setACL(path, acl: acl, version: stat.aversion)
            logger.warning("protected an election node that anyone could change", metadata: ["node": "\(path)", "was": "\(current)"])
            return true
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
