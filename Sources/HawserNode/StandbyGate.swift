import Hummingbird

/// Answers every RPC route (`/v1/...`) with the standby answer while the node does not serve
/// (a hot-warm standby, or a node taking over): 503 `standby`, `Retry-After: 1` and the active
/// node's address. Health, metrics and the OpenAPI document are served as usual. A request that
/// failed because the node stopped serving while it ran gets the standby answer too, so that the
/// client tries again where the shard is now (starts are idempotent by client request id).
/// Only hot-warm nodes install it.
struct StandbyGate<Context: RequestContext>: RouterMiddleware {
    let serving: ServingState
    let routes: [APIRoute]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") else { return try await next(request, context) }
        guard serving.isActive else {
            // Unknown paths keep their 404 and wrong methods their 405 (from the edge).
            guard routes.contains(where: { $0.method == request.method && $0.matches(path) }) else { return try await next(request, context) }
            _ = try serving.engine()  // throws the standby answer
            return try await next(request, context)
        }
        do {
            return try await next(request, context)
        } catch {
            if !serving.isActive { _ = try serving.engine() }
            throw error
        }
    }
}
