import Foundation
import PostgresNIO

/// Parses `postgres://user[:password]@host[:port]/database` (also `postgresql://`) into a
/// connection configuration. TLS is off: use a local or otherwise protected network.
public enum PostgresURL {
    public static func configuration(_ url: String) throws -> PostgresConnection.Configuration {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty,
              let user = components.user, !user.isEmpty else {
            throw PostgresURLError(url: url)
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        return PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database.isEmpty ? nil : database, tls: .disable)
    }
}

public struct PostgresURLError: Error, CustomStringConvertible {
    public var url: String
    public var description: String {
        "\"\(url)\" is not a PostgreSQL URL of the form postgres://user[:password]@host[:port]/database"
    }
}
