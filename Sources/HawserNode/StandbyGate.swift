import Hummingbird

/// Answers every API route (`/v1/...`) with the standby answer (`Failure.standby`) while the
/// process does not serve (a hot-warm standby, or a process taking over): 503 `standby`,
/// `Retry-After: 1` and the active process's address. Health, metrics and the OpenAPI document
/// are served as usual. A request that failed because the process stopped serving while it ran
/// gets the standby answer too, so that the client tries again where the shard is now (node
/// starts are idempotent by client request id, notarisations by transaction id). Only hot-warm
/// processes install it.
struct StandbyGate<Context: RequestContext, Work: Sendable, Failure: StandbyAnswer>: RouterMiddleware {
    let serving: ServingState<Work>
    let routes: [APIRoute]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") else { return try await next(request, context) }
        guard serving.isActive else {
            // Unknown paths keep their 404 and wrong methods their 405 (from the edge).
            guard routes.contains(where: { $0.method == request.method && $0.matches(path) }) else { return try await next(request, context) }
            _ = try serving.work(or: Failure.self)  // throws the standby answer
            return try await next(request, context)
        }
        do {
            return try await next(request, context)
        } catch {
            if !serving.isActive { _ = try serving.work(or: Failure.self) }
            throw error
        }
    }
}
