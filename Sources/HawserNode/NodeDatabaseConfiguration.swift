import Foundation
import Postgres

/// The `database` section of the node's and the notary's configuration: where the node keeps its
/// flows, journals, outbox and vault, and the notary its log, spent states and outcomes. `sqlite`
/// (the default) is a file in `dataDirectory`; `postgres` is the database at `url`, which several
/// processes can share (hot-warm, hot-cold). The password is never in the URL or the file: it
/// comes from `passwordFile` or an environment variable (`HAWSER_NODE_DATABASE_PASSWORD` for the
/// node, `HAWSER_NOTARY_DATABASE_PASSWORD` for the notary). docs/node.md and
/// docs/configuration.md document every option.
public struct NodeDatabaseConfiguration: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case sqlite, postgres }

    /// The environment variable that may hold the node's PostgreSQL password.
    public static let passwordVariable = "HAWSER_NODE_DATABASE_PASSWORD"
    /// The environment variable that may hold the notary's PostgreSQL password.
    public static let notaryPasswordVariable = "HAWSER_NOTARY_DATABASE_PASSWORD"

    public var kind = Kind.sqlite
    /// `postgres://user@host[:port]/database` (postgres only).
    public var url: String?
    /// A file holding the password (postgres only), relative to the configuration file's directory.
    public var passwordFile: String?
    /// How long start-up may take to reach the server and log in (postgres only).
    public var connectTimeoutMillis = 10_000
    /// The most connections the node's pool opens (postgres only).
    public var maxConnections = 8
    /// The longest one call may run on its connection before the connection is closed and the
    /// call fails with `database_unavailable` (postgres only): a server that stopped answering.
    public var requestTimeoutMillis = 30_000

    enum CodingKeys: String, CodingKey, CaseIterable { case kind, url, passwordFile, connectTimeoutMillis, maxConnections, requestTimeoutMillis }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .kind) {
            guard let parsed = Kind(rawValue: text) else {
                throw DecodingError.dataCorruptedError(forKey: .kind, in: c,
                                                       debugDescription: "database.kind must be \"sqlite\" or \"postgres\", not \"\(text)\"")
            }
            kind = parsed
        }
        url = try c.decodeIfPresent(String.self, forKey: .url)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        connectTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .connectTimeoutMillis) ?? connectTimeoutMillis
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? maxConnections
        requestTimeoutMillis = try c.decodeIfPresent(Int.self, forKey: .requestTimeoutMillis) ?? requestTimeoutMillis
    }

    /// Every invalid value, one sentence each; never repeats a password. `passwordVariable`: the
    /// environment variable this process reads the password from.
    func problems(passwordVariable: String = Self.passwordVariable) -> [String] {
        var out = [String]()
        switch kind {
        case .sqlite:
            if url != nil || passwordFile != nil { out.append("database.url and database.passwordFile are for database.kind \"postgres\"") }
        case .postgres:
            if let url {
                if let parsed = try? PostgresURL.configuration(url) {
                    if parsed.password != nil {
                        out.append("database.url must not hold a password: put it in database.passwordFile or \(passwordVariable)")
                    }
                } else {
                    out.append("database.url must be postgres://user@host[:port]/database")
                }
            } else {
                out.append("database.kind \"postgres\" needs database.url")
            }
            if passwordFile?.isEmpty == true { out.append("database.passwordFile must not be empty") }
        }
        if !(100...600_000).contains(connectTimeoutMillis) { out.append("database.connectTimeoutMillis must be 100...600000") }
        if !(1...100).contains(maxConnections) { out.append("database.maxConnections must be 1...100") }
        if !(1_000...3_600_000).contains(requestTimeoutMillis) { out.append("database.requestTimeoutMillis must be 1000...3600000") }
        return out
    }

    /// The password: the file's first line if `passwordFile` is set, else `variable`'s.
    func password(resolve: (String) -> String, environment: [String: String], variable: String = Self.passwordVariable) throws -> String? {
        guard let passwordFile else { return environment[variable] }
        let path = resolve(passwordFile)
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(["cannot read database.passwordFile \(path)"])
        }
        return String(text.split(whereSeparator: \.isNewline).first ?? "")
    }
}
