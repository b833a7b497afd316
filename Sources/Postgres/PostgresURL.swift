import Foundation
import PostgresNIO

/// Parses `postgres://user[:password]@host[:port]/database` (also `postgresql://`) into a
/// connection configuration. TLS is off: use a local or otherwise protected network. A query
/// string or fragment (`?sslmode=require`) is refused: none of its options would be taken.
public enum PostgresURL {
    public static func configuration(_ url: String) throws -> PostgresConnection.Configuration {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty,
              let user = components.user, !user.isEmpty,
              components.query == nil, components.fragment == nil else {
            throw PostgresURLError(url: url)
        }
        // A port out of range was wrapped (99999 became 34463), and a missing database left the
        // server to pick the user's: both are mistakes to hear about at start-up.
        let port = components.port ?? 5432
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard (1...65535).contains(port), !database.isEmpty, !database.contains("/") else { throw PostgresURLError(url: url) }
        return PostgresConnection.Configuration(
            host: host, port: port, username: user, password: components.password, database: database, tls: .disable)
    }
}

public struct PostgresURLError: Error, CustomStringConvertible {
    public var url: String
    public var description: String {
        "\"\(redacted)\" is not a PostgreSQL URL of the form postgres://user[:password]@host[:port]/database (port 1-65535, the database named; no query string: options such as sslmode are not taken, and TLS is not used)"
    }

    /// The URL without its password, which an error must never show.
    private var redacted: String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "(a URL with a password)"
    }
}
