import Hummingbird

/// Answers every RPC route (`/v1/...`) with the standby answer while the node does not serve
/// (a hot-warm standby, or a node taking over): 503 `standby`, `Retry-After: 1` and the active
/// node's address. A request that arrives while the node takes over waits for it, up to the
/// `Retry-After` it would otherwise be given, and is then served. Health, metrics and the OpenAPI
/// document are served as usual. A request that failed because the node stopped serving while it
/// ran gets the standby answer too, so that the client tries again where the shard is now (starts
/// are idempotent by client request id). Only hot-warm nodes install it.
struct StandbyGate<Context: RequestContext>: RouterMiddleware {
    let serving: ServingState
    let routes: [APIRoute]
    /// The longest a request waits for a take-over: the `Retry-After` of the standby answer.
    static var takeOverWait: Duration { .seconds(1) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") else { return try await next(request, context) }
        if !serving.isActive {
            // Unknown paths keep their 404 and wrong methods their 405 (from the edge).
            guard routes.contains(where: { $0.method == request.method && $0.matches(path) }) else { return try await next(request, context) }
            if await !serving.awaitTakeOver(within: Self.takeOverWait) {
                _ = try serving.engine()  // throws the standby answer
            }
        }
        do {
            return try await next(request, context)
        } catch {
            if !serving.isActive { _ = try serving.engine() }
            throw error
        }
    }
}
