import Coordination
import PostgresNIO

/// Turns PostgresNIO's errors (whose text is deliberately generic) into sentences that say what
/// is wrong: the server is unreachable, the role or the database does not exist, the password is
/// wrong. Built from the error's code, SQLSTATE and the server's own message, which names the
/// role or database but never the password.
public enum PostgresProblem {
    public static func describe(_ error: any Error, at server: String) -> CoordinationError {
        if let error = error as? CoordinationError { return error }
        guard let error = error as? PSQLError else { return .unavailable("PostgreSQL at \(server): \(error)") }
        if let info = error.serverInfo {
            let message = info[.message] ?? "no message"
            let state = info[.sqlState] ?? "?"
            switch state {
            case "28000", "28P01":
                return .notAuthorized("PostgreSQL at \(server) refused the login: \(message) (SQLSTATE \(state))")
            case "42501":
                return .notAuthorized("PostgreSQL at \(server): \(message) (SQLSTATE \(state)); the role must own the database, or be granted CREATE on it and on its schema public")
            case "3D000":
                return .unavailable("PostgreSQL at \(server): \(message) (SQLSTATE \(state)); create it or fix the URL")
            default:
                return .unavailable("PostgreSQL at \(server): \(message) (SQLSTATE \(state))")
            }
        }
        switch error.code {
        case .connectionError:
            let cause = error.underlying.map { "\($0)" } ?? "unknown cause"
            return .unavailable("cannot connect to PostgreSQL at \(server): \(cause)")
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return .unavailable("the connection to PostgreSQL at \(server) closed")
        case .authMechanismRequiresPassword:
            return .notAuthorized("PostgreSQL at \(server) asks for a password and the URL has none")
        case .unsupportedAuthMechanism:
            return .notAuthorized("PostgreSQL at \(server) asks for an authentication method this client does not support")
        default:
            return .unavailable("PostgreSQL at \(server): \(error.code)")
        }
    }
}
