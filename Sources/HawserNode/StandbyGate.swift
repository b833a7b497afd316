import Coordination
import Flows
import Hummingbird

/// Answers every API route (`/v1/...`) with the standby answer (`Failure.standby`) while the
/// process does not serve (a hot-warm standby, or a process taking over): 503 `standby`,
/// `Retry-After: 1` and the active process's address. A request that arrives while the process
/// takes over waits for it, up to the `Retry-After` it would otherwise be given, and is then
/// served. Health, metrics and the OpenAPI document are served as usual. A request that failed
/// because the process stopped serving while it ran gets the standby answer too, and so does one
/// whose write the fencing check refused (`stale_epoch`, `not_owner`: another process owns the
/// shard now, though the step-down that refusal sets off may not be made yet), so that the client
/// tries again where the shard is now (node starts are idempotent by client request id,
/// notarisations by transaction id). Hot-warm and hot-cold processes install it (a hot-cold one
/// takes over once, at start-up).
struct StandbyGate<Context: RequestContext, Work: Sendable, Failure: StandbyAnswer>: RouterMiddleware {
    let serving: ServingState<Work>
    let routes: [APIRoute]
    /// The longest a request waits for a take-over: the `Retry-After` of the standby answer.
    static var takeOverWait: Duration { .seconds(1) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") else { return try await next(request, context) }
        if !serving.isActive {
            // Unknown paths keep their 404 and wrong methods their 405 (from the edge); the
            // process's own state is its to serve.
            guard let route = routes.first(where: { $0.method == request.method && $0.matches(path) }), !route.processWide else {
                return try await next(request, context)
            }
            if await !serving.awaitTakeOver(within: Self.takeOverWait) {
                _ = try serving.work(or: Failure.self)  // throws the standby answer
            }
        }
        do {
            return try await next(request, context)
        } catch {
            if Self.ownershipLost(error) || !serving.isActive { throw serving.standbyAnswer(Failure.self) }
            throw error
        }
    }

    /// Whether `error` is a write the fencing check refused: directly, or as the cause of the
    /// flow engine's failed commit.
    static func ownershipLost(_ error: any Error) -> Bool {
        let cause = (error as? TransientFlowError)?.cause ?? error
        return (cause as? CoordinationError)?.isFencingRefusal ?? false
    }
}
