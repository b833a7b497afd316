import Embedded
import Flows
import Foundation
import HawserCore
import HawserWire
import Hummingbird
import Membership
import NIOCore
import Notary
import Prometheus
import Vault

/// The node's RPC API (docs/node-openapi.json describes it; a test keeps the two in step).
/// Every /v1 route needs HTTP Basic credentials of a configured user with the route's permission.
struct NodeAPI {
    /// The engines requests go to (none while a hot-warm node is a standby; one per partition
    /// this process owns in hot-hot).
    let flows: FlowEngines
    /// The node as a whole: active while it serves any flows.
    var serving: ServingState<FlowEngine> { flows.node }
    /// Whether a standby gate answers for a node that does not serve (every mode but single).
    let gated: Bool
    let database: NodeDatabase
    /// The embedded notary's replica; nil when the node uses a remote notary.
    let replica: Replica?
    let authenticator: RPCAuthenticator
    let identity: NodeIdentityJSON
    let maxBodyBytes: Int
    /// The bytes of request bodies taken at once, over all connections (`BodyBudget`).
    let maxBodyBytesInFlight: Int
    let registry: PrometheusCollectorRegistry
    let openAPI: NodeOpenAPI
    /// The network definition in use; nil for a node on its own.
    let network: MembershipWatcher?
    /// Whether this process takes clients' starts and reads (the rpc role, docs/node.md "Roles");
    /// without it, only what concerns the flows it runs, health, metrics and draining.
    var rpc = true
    let outboxBacklog = OutboxBacklogGauges()

    /// Every route with the query parameters it takes: the edge refuses others (`unknown_query_parameter`),
    /// and a test checks the table against the OpenAPI document. A new route or parameter goes here.
    static let routes: [APIRoute] = [
        APIRoute(.post, "/v1/flows", query: ["wait"]),
        APIRoute(.get, "/v1/flows", query: ["status", "flow", "clientRequestId", "since", "until", "after", "limit"]),
        APIRoute(.get, "/v1/flows/{id}", query: ["wait"]),
        APIRoute(.get, "/v1/flows/{id}/events"),
        APIRoute(.post, "/v1/flows/{id}/kill"),
        APIRoute(.post, "/v1/flows/{id}/resume"),
        APIRoute(.get, "/v1/flows/by-client-id/{clientRequestId}"),
        APIRoute(.get, "/v1/vault", query: ["type", "owner", "consumption", "order", "after", "limit"]),
        APIRoute(.get, "/v1/vault/balances", query: ["type", "owner"]),
        APIRoute(.get, "/v1/node"),
        APIRoute(.get, "/v1/network"),
        APIRoute(.get, "/v1/admin/draining", processWide: true),
        APIRoute(.put, "/v1/admin/draining", processWide: true),
        APIRoute(.get, "/health/live"),
        APIRoute(.get, "/health/ready"),
        APIRoute(.get, "/metrics"),
        APIRoute(.get, "/openapi.json"),
    ]

    func router() -> Router<NodeRequestContext> {
        let router = Router(context: NodeRequestContext.self)
        router.add(middleware: EdgeMiddleware<NodeRequestContext, NodeAPIError>(
            routes: Self.routes, server: "node", bodyLimit: ("maxBodyBytes", maxBodyBytes),
            inFlight: ("maxBodyBytesInFlight", BodyBudget(limit: maxBodyBytesInFlight))))
        // Outside the gate, which must see a failed commit's cause (a fencing refusal is `standby`).
        router.add(middleware: RetryableFailureAnswer())
        if gated { router.add(middleware: StandbyGate<NodeRequestContext, FlowEngine, NodeAPIError>(serving: serving, routes: Self.routes)) }
        router.post("/v1/flows") { request, context in
            try rpcRole()
            try await authorise(request, context, .startFlow)
            if let misfit = network?.misfit { throw Self.misfitError(misfit) }
            let wait = try Self.wait(request.uri.queryParameters["wait"].map(String.init))
            let start = try StartFlowJSON.parse(try await body(request)).get()
            var started: (record: FlowRecord, created: Bool)
            if let queue = flows.queue {
                do {
                    started = try await queue.start(flowName: start.flow, arguments: start.arguments.bytes, clientRequestId: start.clientRequestId)
                } catch let error as FlowEngineError {
                    throw Self.apiError(error)
                }
                if let wait {
                    do { started.record = try await queue.awaitEnd(started.record.id, timeout: wait, justQueued: started.created) } catch FlowEngineError.stopping {
                        throw workStopped
                    }
                }
                return FlowResponse.response(started.record, status: started.created ? .created : .ok)
            }
            let engine = try flows.forStart()
            do {
                // A caller that waits is answered after the flow's first commit anyway, so its
                // start is written with that commit (see `FlowEngine.startAndWait`). A repeated
                // start waits where its flow runs (in hot-hot, maybe another partition's engine,
                // or another process: the standby answer names it).
                if let wait {
                    started = try await engine.startAndWait(flowName: start.flow, arguments: start.arguments.bytes,
                                                            clientRequestId: start.clientRequestId, timeout: wait, waitingForExisting: false)
                    if !started.created { started.record = try await waitForEnd(started.record, timeout: wait) }
                } else {
                    started = try await engine.startReporting(flowName: start.flow, arguments: start.arguments.bytes,
                                                              clientRequestId: start.clientRequestId)
                }
            } catch FlowEngineError.stopping {
                throw workStopped
            } catch let error as FlowEngineError {
                throw Self.apiError(error)
            }
            // 201 for a new flow, 200 when the client request id named an existing one.
            return FlowResponse.response(started.record, status: started.created ? .created : .ok)
        }
        router.get("/v1/flows") { request, context in
            try rpcRole()
            try await authorise(request, context, .readFlows)
            let query = try Self.flowQuery(request.uri.queryParameters)
            let engine = try serving.engine()
            // A cursor must be a flow of this node: the store would read an unknown one as the
            // start, and a client with a stale or mangled cursor would page for ever.
            if let after = query.after, try await engine.record(after) == nil {
                throw NodeAPIError(.flowNotFound, "after names no flow of this node (it must be the last of the previous page): `\(after.rawValue.prefix(100))`")
            }
            return FlowResponse.list(try await engine.list(query))
        }
        router.get("/v1/flows/by-client-id/{clientRequestId}") { request, context in
            try rpcRole()
            try await authorise(request, context, .readFlows)
            // The router hands the segment over as sent; an id may hold `/`, `?` or a space.
            let sent = context.parameters.get("clientRequestId") ?? ""
            guard let key = sent.removingPercentEncoding else { throw Self.badEscape(sent) }
            guard let record = try await serving.engine().store.record(clientRequestId: key) else {
                throw NodeAPIError(.flowNotFound, "no flow was started with client request id `\(key.prefix(200))`")
            }
            return FlowResponse.response(record)
        }
        router.get("/v1/flows/{id}") { request, context in
            try await authorise(request, context, .readFlows)
            let wait = try Self.wait(request.uri.queryParameters["wait"].map(String.init))
            let found = try await record(context)
            guard let wait else { return FlowResponse.response(found) }
            do { return FlowResponse.response(try await waitForEnd(found, timeout: wait)) } catch FlowEngineError.stopping {
                throw workStopped
            }
        }
        router.get("/v1/flows/{id}/events") { request, context in
            try await authorise(request, context, .readFlows)
            let resumed = try Self.resumedCursor(request)
            let found = try await record(context)
            let events = try await engine(running: found).events(of: found.id, after: resumed)
            let encoder = WireFormat.encoder
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                // Every event carries the cursor after it as its id: a client resumes from the last one it saw.
                var cursor = resumed
                for await item in EventStreamHeartbeat.merged(events, every: EventStreamHeartbeat.interval) {
                    guard let event = item else {
                        try await writer.write(ByteBuffer(string: EventStreamHeartbeat.comment))
                        continue
                    }
                    cursor = cursor.advanced(past: event)
                    let data = String(decoding: try encoder.encode(FlowEventJSON(event)), as: UTF8.self)
                    let name = event.status == nil ? "progress" : "status"
                    try await writer.write(ByteBuffer(string: "id: \(cursor)\nevent: \(name)\ndata: \(data)\n\n"))
                }
                try await writer.finish(nil)
            })
        }
        router.post("/v1/flows/{id}/kill") { request, context in
            try await authorise(request, context, .manageFlows)
            let found = try await record(context)
            do { return FlowResponse.response(try await engine(running: found).kill(found.id)) } catch let error as FlowEngineError { throw Self.apiError(error) }
        }
        router.post("/v1/flows/{id}/resume") { request, context in
            try await authorise(request, context, .manageFlows)
            let found = try await record(context)
            do { return FlowResponse.response(try await engine(running: found).resume(found.id)) } catch let error as FlowEngineError { throw Self.apiError(error) }
        }
        router.get("/v1/vault") { request, context in
            try rpcRole()
            try await authorise(request, context, .readVault)
            let query = request.uri.queryParameters
            var consumption = VaultQuery.Consumption.unconsumed
            if let text = query["consumption"].map(String.init) {
                guard let parsed = VaultQuery.Consumption(rawValue: text) else {
                    throw NodeAPIError(.invalidQuery, "consumption must be unconsumed, consumed or all")
                }
                consumption = parsed
            }
            var order = VaultQuery.Order.ascending
            if let text = query["order"].map(String.init) {
                guard let parsed = VaultQuery.Order(rawValue: text) else {
                    throw NodeAPIError(.invalidQuery, "order must be asc (oldest first) or desc (newest first)")
                }
                order = parsed
            }
            do {
                return VaultResponse.page(try await database.vault.page(VaultQuery(
                    type: query["type"].map(String.init), owner: query["owner"].map(String.init), consumption: consumption,
                    order: order, after: query["after"].map { VaultCursor(String($0)) },
                    limit: try Self.limit(query["limit"].map(String.init)))))
            } catch let error as VaultCursorError {
                throw NodeAPIError(.invalidQuery, "after: \(error)")
            }
        }
        router.get("/v1/vault/balances") { request, context in
            try rpcRole()
            try await authorise(request, context, .readVault)
            let query = request.uri.queryParameters
            guard let type = query["type"].map(String.init), !type.isEmpty else {
                throw NodeAPIError(.invalidQuery, "type is required: the type of state to sum, e.g. token")
            }
            return VaultResponse.balances(try await database.vault.balances(type: type, owner: query["owner"].map(String.init)))
        }
        router.get("/v1/node") { request, context in
            try await authorise(request, context, .readFlows)
            return identity
        }
        router.get("/v1/network") { request, context in
            try await authorise(request, context, .readFlows)
            guard let network else {
                throw NodeAPIError(.notFound, "this node is not a member of a network (no `network` section in its configuration)")
            }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: network.current.definition.json)))
        }
        router.get("/v1/admin/draining") { request, context in
            try await authorise(request, context, .admin)
            return DrainingJSON(draining: flows.isDraining, runningFlows: flows.runningCount)
        }
        router.put("/v1/admin/draining") { request, context in
            try await authorise(request, context, .admin)
            let body = try await decode(SetDrainingJSON.self, request)
            flows.setDraining(body.draining)
            return DrainingJSON(draining: flows.isDraining, runningFlows: flows.runningCount)
        }
        router.get("/health/live") { _, _ in HealthStatus(status: "live") }
        router.get("/health/ready") { _, _ in
            // A remote notary is no part of readiness (docs/node.md, "The notary").
            if let replica, !replica.isCaughtUp {
                throw NodeAPIError(.notReady, "the embedded notary is still catching up with its log (applied \(replica.appliedPosition))")
            }
            if let problem = replica?.storeProblem { throw NodeAPIError(.notReady, "the embedded notary: " + Replica.storeProblemMessage(problem)) }
            if let problem = replica?.quorum.appendProblem { throw NodeAPIError(.notReady, "the embedded notary: " + Quorum.appendProblemMessage(problem)) }
            switch serving.current {
            case .active(let engine):
                if let problem = serving.healthProblem { throw NodeAPIError(.notReady, "unhealthy, stepping down: \(problem)") }
                if let misfit = network?.misfit { throw Self.misfitError(misfit) }
                // A single or hot-cold node serves while it resumes (starts are taken meanwhile),
                // but is not ready until every unfinished flow runs again.
                if !engine.hasResumed && flows.queue == nil { throw NodeAPIError(.notReady, "resuming the unfinished flows at start-up") }
                // The node database answers a read: a corrupt one failed every read while the node
                // said ready (found from outside). Writes are not tried: a full disk fails them,
                // and the node rides that out in the hospital (docs/node.md).
                if let problem = await database.readProblem() {
                    throw NodeAPIError(.notReady, "the node database does not answer a read: \(problem)")
                }
                return try NodeAPI.json(HealthStatus(status: flows.isDraining ? "draining" : "ready"), status: .ok)
            case .takingOver(let step): throw NodeAPIError(.notReady, "taking over as the active node: \(step)")
            case .standby: return try NodeAPI.json(HealthStatus(status: "standby", problem: serving.healthProblem), status: .serviceUnavailable)
            }
        }
        router.get("/openapi.json") { request, _ in
            Response(json: openAPI.document(authority: request.head.authority))
        }
        router.get("/metrics") { _, _ in
            // Metrics are what an operator reads while the database is down: the counts wait for
            // it briefly, and otherwise keep the last scrape's values.
            let database = self.database
            let read = try? await within(.seconds(2)) { (try await database.flows.counts(), try await database.sessions.outboxBacklog()) }
            registry.makeGauge(descriptor: gauge("hawser_flows_counted", "1 if this scrape counted hawser_flows and hawser_outbox_messages; 0: the node database did not answer within 2 s, and they are the last counts."))
                .set(to: read == nil ? 0 : 1)
            if let (counts, backlog) = read {
                outboxBacklog.show(backlog, in: registry)
                for status in FlowStatus.allCases {
                    registry.makeGauge(descriptor: gauge("hawser_flows", "Flows in the node database, by status."),
                                       labels: [("status", status.rawValue)]).set(to: Double(counts[status] ?? 0))
                }
            }
            registry.makeGauge(descriptor: gauge("hawser_flows_running_here", "Flows running in this process now.")).set(to: Double(flows.runningCount))
            registry.makeGauge(descriptor: gauge("hawser_flows_draining", "1 while the node is draining for an upgrade.")).set(to: flows.isDraining ? 1 : 0)
            registry.makeGauge(descriptor: gauge("hawser_node_active", "1 while this process serves the node (always in single mode; otherwise once it has taken over)."))
                .set(to: serving.isActive ? 1 : 0)
            for (partition, state) in flows.partitions.enumerated() {
                let running = if case .active(let engine) = state.current { engine.runningCount } else { 0 }
                registry.makeGauge(descriptor: gauge("hawser_partition_serving", "1 while this process runs the partition's flows (hot-hot)."),
                                   labels: [("partition", "\(partition)")]).set(to: state.isActive ? 1 : 0)
                registry.makeGauge(descriptor: gauge("hawser_partition_flows_running", "The partition's flows running in this process now (hot-hot)."),
                                   labels: [("partition", "\(partition)")]).set(to: Double(running))
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }

    private func authorise(_ request: Request, _ context: NodeRequestContext, _ permission: RPCPermission) async throws {
        switch await authenticator.authenticate(authorization: request.headers[.authorization], source: context.source) {
        case .rejected:
            throw NodeAPIError(.unauthenticated, "send the credentials of an RPC user (HTTP Basic)")
        case .throttled(let wait):
            let seconds = Int((wait + .nanoseconds(999_999_999)).components.seconds)
            throw NodeAPIError(.tooManyAttempts, "too many failed password attempts from this address or on this user; try again in \(seconds) s",
                               retryAfter: seconds)
        case .authenticated(let user):
            guard user.may(permission) else {
                throw NodeAPIError(.forbidden, "user `\(user.username)` lacks the \(permission.rawValue) permission")
            }
        }
    }

    /// Refuses a client's start or read in a process without the rpc role, before its credentials
    /// are looked at, as a standby does: a client sent here without them (or with wrong ones) was
    /// answered 401 and not told to try the next address (found from outside).
    private func rpcRole() throws(NodeAPIError) {
        guard !rpc else { return }
        throw NodeAPIError(.standby, "this process does not have the rpc role (ha.roles): send starts, lists and vault reads to one that has",
                           retryAfter: 1)
    }

    /// `record`'s flow once it has ended or is parked, or as it stands after `timeout`: from the
    /// engine that runs it, or from the database in an RPC worker (which runs none).
    /// The answer to a request whose serving work stopped under it: in hot-hot (a partition given
    /// up, or the process stopping) 503 `standby`, to be sent again; on one process `draining`.
    private var workStopped: NodeAPIError {
        flows.partitions.isEmpty && flows.queue == nil ? Self.apiError(FlowEngineError.stopping) : NodeAPIError.workStopped
    }

    private func waitForEnd(_ record: FlowRecord, timeout: Duration) async throws -> FlowRecord {
        if let queue = flows.queue { return try await queue.awaitEnd(record.id, timeout: timeout) }
        return try await engine(running: record).waitForEnd(record.id, timeout: timeout)
    }

    /// The engine that can follow `record`'s flow: any for one that has ended, else the one that
    /// runs it (in hot-hot, the standby answer names its partition's owner when that is another
    /// process; an RPC worker, which runs none, reads the owner from the partition's election).
    private func engine(running record: FlowRecord) async throws -> FlowEngine {
        if record.status.isTerminal { return try flows.any() }
        if let queue = flows.queue { throw await queue.elsewhere(record.id) }
        return try flows.engine(for: record.id)
    }

    /// A path segment whose `%` escapes are not two hexadecimal digits of UTF-8 was read as sent,
    /// so `%FF` found the flow named `%FF` (found from outside); it is refused instead.
    static func badEscape(_ sent: String) -> NodeAPIError {
        NodeAPIError(.malformedRequest, "the path segment `\(sent.prefix(200))` holds a `%` that is not followed by two hexadecimal digits of UTF-8 text")
    }

    private func record(_ context: NodeRequestContext) async throws -> FlowRecord {
        // Percent-decoded, as every path segment is (node.md), the client request id's too.
        let sent = context.parameters.get("id") ?? ""
        guard let decoded = sent.removingPercentEncoding else { throw Self.badEscape(sent) }
        let id = FlowID(decoded)
        guard let record = try await serving.engine().record(id) else {
            throw NodeAPIError(.flowNotFound, "no flow has id `\(id.rawValue.prefix(100))`")
        }
        return record
    }

    private func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let body = try await body(request)
        do { return try JSONDecoder.decodeRequest(T.self, from: body) } catch let error as UnknownFieldError {
            throw error  // `EdgeMiddleware` answers it
        } catch let error as JSONParseError {
            throw NodeAPIError(.malformedRequest, "the body is not JSON: \(error)")
        } catch let error as DecodingError {
            throw NodeAPIError(.malformedRequest, "the body is not a valid \(String(describing: T.self).replacingOccurrences(of: "JSON", with: "")) request: \(error.plainDescription)")
        } catch {
            throw NodeAPIError(.malformedRequest, "the body is not a valid \(String(describing: T.self).replacingOccurrences(of: "JSON", with: "")) request: \(error)")
        }
    }

    /// The body of a JSON request, at most `maxBodyBytes`.
    private func body(_ request: Request) async throws -> [UInt8] {
        let (type, foreignCharset) = MediaTypes.content(request.headers[.contentType])
        guard type == "application/json", foreignCharset == nil else {
            throw NodeAPIError(.unsupportedMediaType, "send the body as application/json, in UTF-8")
        }
        return Array(buffer: try await request.body.collect(upTo: maxBodyBytes))
    }

    /// `GET /v1/flows`'s filters and page: `status`, `flow`, `clientRequestId`, `since`, `until`
    /// (RFC 3339, on the start time), `after` and `limit`.
    static func flowQuery(_ query: Parameters) throws -> FlowQuery {
        func text(_ name: String) -> String? { query[Substring(name)].map(String.init) }
        func instant(_ name: String) throws -> Instant? {
            guard let value = text(name) else { return nil }
            guard let parsed = Instant(rfc3339: value) else {
                throw NodeAPIError(.invalidQuery, "\(name) must be an RFC 3339 time such as 2026-01-31T09:30:00Z, not `\(value.prefix(100))`")
            }
            return parsed
        }
        var status: FlowStatus?
        if let value = text("status") {
            guard let parsed = FlowStatus(rawValue: value) else {
                throw NodeAPIError(.invalidQuery, "status must be one of \(FlowStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = parsed
        }
        return FlowQuery(status: status, flowName: text("flow"), clientRequestId: text("clientRequestId"), since: try instant("since"),
                         until: try instant("until"), after: text("after").map(FlowID.init), limit: try limit(text("limit")))
    }

    static func limit(_ text: String?) throws -> Int {
        guard let text else { return 100 }
        guard let limit = Int(text), (1...1_000).contains(limit) else {
            throw NodeAPIError(.invalidQuery, "limit must be a whole number from 1 to 1000")
        }
        return limit
    }

    /// Where a reconnecting event-stream client left off: its Last-Event-ID, or the start.
    static func resumedCursor(_ request: Request) throws -> FlowEventCursor {
        guard let text = request.headers[.lastEventID] else { return .start }
        guard let cursor = FlowEventCursor(text) else {
            throw NodeAPIError(.invalidLastEventId,
                               "Last-Event-ID `\(text.prefix(100))` is not the id of an event of this stream (`7`, `7:hospitalised:2`)")
        }
        return cursor
    }

    /// `?wait=SECONDS` (1 to 60): answer once the flow has ended or is parked, or when the time is up.
    static func wait(_ text: String?) throws -> Duration? {
        guard let text else { return nil }
        guard let seconds = Int(text), (1...60).contains(seconds) else {
            throw NodeAPIError(.invalidQuery, "wait must be a whole number of seconds from 1 to 60")
        }
        return .seconds(seconds)
    }

    /// A newer network definition does not fit this node: the other nodes may use it, and refuse
    /// what this node signs with the keys it holds, after the notary has spent its inputs (found
    /// from outside: a payment's tokens in no vault). No flow starts until the node fits again.
    static func misfitError(_ misfit: MembershipWatcher.Misfit) -> NodeAPIError {
        NodeAPIError(.notReady, "version \(misfit.version) of the network definition does not fit this node ("
                     + misfit.problems.joined(separator: "; ") + "): it starts no flows until its configuration fits that "
                     + "version and it is restarted, or the file holds the version in use again")
    }

    static func apiError(_ error: FlowEngineError) -> NodeAPIError {
        switch error {
        case .unknownFlow: NodeAPIError(.unknownFlow, error.description)
        case .invalidArguments(_, .unknownField): NodeAPIError(.unknownArgument, error.description)
        case .invalidArguments(_, .unknownParty): NodeAPIError(.unknownParty, error.description)
        case .invalidArguments: NodeAPIError(.invalidFlowArguments, error.description)
        case .invalidClientRequestId: NodeAPIError(.invalidClientRequestId, error.description)
        case .clientRequestIdReused: NodeAPIError(.clientRequestIdReused, error.description)
        case .draining, .stopping: NodeAPIError(.draining, error.description)
        case .notFound: NodeAPIError(.flowNotFound, error.description)
        case .notHospitalised: NodeAPIError(.flowNotHospitalised, error.description)
        case .finished: NodeAPIError(.flowFinished, error.description)
        case .notarising: NodeAPIError(.flowNotarising, error.description)
        case .runsNoFlows: NodeAPIError(.standby, error.description, retryAfter: 1)
        }
    }

    /// A gauge's name (no unit suffix) and help line for `/metrics`.
    private func gauge(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try WireFormat.encoder.encode(value))))
    }
}
