import Flows
import Hummingbird
import PostgresStores

/// Answers a request that failed because the node database cannot be used now (a PostgreSQL
/// server that is down or restarting, a full disk) with 503 `database_unavailable` and `Retry-After: 1`,
/// instead of `internal_error`: nothing the client sent was wrong, and the same request may be
/// sent again (a start with its client request id is safe to repeat). A flow commit that fails
/// reaches the API as the engine's `TransientFlowError`, a read as `StoreDatabaseError`. Work
/// stopped under a request (a `CancellationError` not its own) is answered 503 `standby` likewise.
struct RetryableFailureAnswer<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as StoreDatabaseError where error.code == .unavailable {
            throw NodeAPIError(.databaseUnavailable, "the node database cannot be used now: \(error.message)", retryAfter: 1)
        } catch let error as TransientFlowError {
            throw NodeAPIError(.databaseUnavailable, "the node database cannot be used now: \(error.message)", retryAfter: 1)
        } catch is CancellationError where !Task.isCancelled {
            // Not this request's cancellation: the work serving it was stopped under it. It was a
            // 500, which a client must not retry; the same request may be sent again.
            throw NodeAPIError.workStopped
        }
    }
}
