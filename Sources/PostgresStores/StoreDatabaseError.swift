import Coordination
import Flows
import HawserCore
import Postgres
import PostgresNIO

/// A node or notary database that cannot be used: unreachable, refusing the login, holding a
/// schema of another Hawser version, or named by a malformed URL. Each has a stable code; the
/// message names the server and the problem, never a password.
public struct StoreDatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badURL = "database_bad_url"
        case unavailable = "database_unavailable"
        case notAuthorized = "database_not_authorized"
        case schemaTooOld = "database_schema_too_old"
        case schemaTooNew = "database_schema_too_new"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Service unavailable: nothing the caller sent was wrong.
    public var httpStatus: Int { 503 }

    public var description: String { "\(message) (\(code.rawValue))" }

    /// What a PostgresNIO error means, in a sentence (`PostgresProblem`); errors of our own
    /// (fencing, the vault's refusals) pass through unchanged.
    static func wrapping(_ error: any Error, at server: String) -> any Error {
        switch error {
        case is StoreDatabaseError, is CancellationError: return error
        case let coordination as CoordinationError: return coordination
        case let psql as PSQLError:
            switch PostgresProblem.describe(psql, at: server) {
            case .notAuthorized(let message): return StoreDatabaseError(.notAuthorized, message)
            case .unavailable(let message): return StoreDatabaseError(.unavailable, message)
            case let other: return StoreDatabaseError(.unavailable, other.description)
            }
        default:
            return error
        }
    }
}

/// An unreachable database may come back: a flow that met it is retried (`HospitalPolicy`).
extension StoreDatabaseError: PossiblyTransientError {
    public var isTransient: Bool { code == .unavailable }
}
