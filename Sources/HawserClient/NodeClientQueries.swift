import Foundation

/// Which flows `NodeClient.flows(matching:)` asks for: the filters of `GET /v1/flows`
/// (docs/node.md). Every filter given must match; nil leaves it out.
public struct NodeFlowFilter: Sendable, Equatable {
    /// `running`, `completed`, `failed`, `hospitalised` or `killed`.
    public var status: String?
    /// The flow's name, e.g. `IssueTokens`.
    public var flow: String?
    public var clientRequestId: String?
    /// Started at or after this time (RFC 3339).
    public var since: String?
    /// Started before this time (RFC 3339).
    public var until: String?
    /// The id of the last flow of the previous page.
    public var after: String?
    /// Page size, 1 to 1000 (the node's default is 100).
    public var limit: Int?

    public init(status: String? = nil, flow: String? = nil, clientRequestId: String? = nil, since: String? = nil,
                until: String? = nil, after: String? = nil, limit: Int? = nil) {
        self.status = status
        self.flow = flow
        self.clientRequestId = clientRequestId
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }

    var query: String {
        NodeClient.query([("status", status), ("flow", flow), ("clientRequestId", clientRequestId), ("since", since),
                          ("until", until), ("after", after), ("limit", limit.map(String.init))])
    }
}

/// A state in a node's vault, as `GET /v1/vault` reports it.
public struct NodeVaultState: Sendable, Equatable {
    public var ref: String
    public var type: String
    public var owner: String
    /// The consuming transaction's id, for a consumed state.
    public var consumedBy: String?
    /// The flow holding a soft lock on it.
    public var lockedBy: String?
    /// The whole state as the node sent it (JSON, keys sorted), its `data` included.
    public var json: Data
}

extension NodeClient {
    /// One page of the flows `filter` selects, in start order. The next page is the same filter
    /// with `after` set to the last flow's id; a page shorter than the limit is the last.
    public func flows(matching filter: NodeFlowFilter = NodeFlowFilter()) async throws -> [NodeFlow] {
        let body = try await withRetries { base, timeout in
            try await self.call(post: false, base + "/v1/flows" + filter.query, body: nil, timeout: timeout)
        }
        return try Self.items(body, key: "flows").map { try NodeFlow(json: $0) }
    }

    /// States in the vault: of a `type` and `owner` if given, `consumption` `unconsumed` (the
    /// node's default), `consumed` or `all`, at most `limit` (1 to 1000; the node's default is 100).
    public func vault(type: String? = nil, owner: String? = nil, consumption: String? = nil, limit: Int? = nil)
        async throws -> [NodeVaultState] {
        try await vaultPage(type: type, owner: owner, consumption: consumption, limit: limit).states
    }

    /// As `vault`, the page after the cursor `after` (the previous page's `next`), with the cursor
    /// of the page after it (nil: this page is the last).
    public func vaultPage(type: String? = nil, owner: String? = nil, consumption: String? = nil, limit: Int? = nil, after: String? = nil)
        async throws -> (states: [NodeVaultState], next: String?) {
        let query = Self.query([("type", type), ("owner", owner), ("consumption", consumption), ("limit", limit.map(String.init)),
                                ("after", after)])
        let body = try await withRetries { base, timeout in
            try await self.call(post: false, base + "/v1/vault" + query, body: nil, timeout: timeout)
        }
        struct Fields: Decodable {
            var ref: String, type: String, owner: String
            var consumedBy: String?, lockedBy: String?
        }
        let states = try Self.items(body, key: "states").map { json in
            guard let fields = try? JSONDecoder().decode(Fields.self, from: json) else {
                throw NodeClientError.unexpectedResponse(status: 200, body: String(decoding: json.prefix(200), as: UTF8.self))
            }
            return NodeVaultState(ref: fields.ref, type: fields.type, owner: fields.owner, consumedBy: fields.consumedBy,
                                  lockedBy: fields.lockedBy, json: json)
        }
        struct Page: Decodable { var next: String? }
        return (states, (try? JSONDecoder().decode(Page.self, from: body))?.next)
    }

    /// The elements of the array `key` of a JSON object, each as JSON (keys sorted).
    static func items(_ body: Data, key: String) throws -> [Data] {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let items = object[key] as? [Any] else {
            throw NodeClientError.unexpectedResponse(status: 200, body: String(decoding: body.prefix(200), as: UTF8.self))
        }
        return try items.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .withoutEscapingSlashes]) }
    }

    /// `?name=value&...` of the parameters that have a value, percent-encoded; empty if none has.
    static func query(_ parameters: [(String, String?)]) -> String {
        let pairs = parameters.compactMap { name, value in value.map { "\(name)=\(escape($0))" } }
        return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
    }
}
