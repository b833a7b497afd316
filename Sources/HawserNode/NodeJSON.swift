import Flows
import Foundation
import HawserCore
import Hummingbird
import Vault

/// POST /v1/flows. Read with `JSONValue`'s parser, never through `Double`, so the arguments reach
/// the flow exactly as sent; a member the API does not know is refused.
public struct StartFlowJSON: Sendable {
    public var flow: String
    public var arguments: JSONValue
    public var clientRequestId: String?

    public init(flow: String, arguments: JSONValue, clientRequestId: String?) {
        self.flow = flow
        self.arguments = arguments
        self.clientRequestId = clientRequestId
    }

    /// The request, or the error to answer when `body` is not one.
    static func parse(_ body: [UInt8]) -> Result<StartFlowJSON, NodeAPIError> {
        let value: JSONValue
        do { value = try JSONValue(parsing: body) } catch {
            return .failure(NodeAPIError(.malformedRequest, "the body is not JSON: \(error)"))
        }
        guard let members = value.object else { return .failure(NodeAPIError(.malformedRequest, "the body must be a JSON object")) }
        let known: Set = ["flow", "arguments", "clientRequestId"]
        if let unknown = members.keys.filter({ !known.contains($0) }).min() {
            return .failure(NodeAPIError(.unknownField,
                                         "the body has a field this node does not know: `\(unknown.prefix(100))`; a start request has flow, arguments and clientRequestId"))
        }
        guard case .string(let flow)? = members["flow"] else {
            return .failure(NodeAPIError(.malformedRequest, "`flow` must be the name of a flow (a string)"))
        }
        guard let arguments = members["arguments"] else {
            return .failure(NodeAPIError(.malformedRequest, "`arguments` is missing (a JSON object; {} for none)"))
        }
        var clientRequestId: String?
        switch members["clientRequestId"] {
        case nil: break
        case .string(let key)?: clientRequestId = key
        default: return .failure(NodeAPIError(.malformedRequest, "`clientRequestId` must be a string (leave it out for none)"))
        }
        return .success(StartFlowJSON(flow: flow, arguments: arguments, clientRequestId: clientRequestId))
    }
}

/// A flow as the API shows it (for clients and tests; the server writes it with `FlowResponse`).
public struct FlowJSON: Codable, Sendable, Equatable {
    public var id: String
    public var clientRequestId: String?
    public var flow: String
    public var arguments: JSONValue
    public var status: String
    public var result: JSONValue?
    public var error: String?
    public var attempts: Int
    public var retryAt: String?
    public var createdAt: String
    public var updatedAt: String
}

public struct FlowListJSON: Codable, Sendable {
    public var flows: [FlowJSON]
}

/// One server-sent event's data.
public struct FlowEventJSON: Codable, Sendable, Equatable {
    public var flowId: String
    public var sequence: Int?
    public var step: String?
    public var status: String?
    public var error: String?
    public var attempts: Int?

    init(_ event: FlowEvent) {
        flowId = event.flowId.rawValue
        sequence = event.sequence
        step = event.step
        status = event.status?.rawValue
        error = event.error
        attempts = event.attempts
    }
}

/// A vault state as the API shows it (for clients and tests; the server writes it with `VaultResponse`).
public struct VaultStateJSON: Codable, Sendable, Equatable {
    public var ref: String
    public var type: String
    public var owner: String
    public var data: JSONValue
    public var amount: JSONNumber?
    public var consumedBy: String?
    public var lockedBy: String?
}

/// GET /v1/vault: a page of states and the cursor of the next page.
public struct VaultQueryResultJSON: Codable, Sendable {
    public var states: [VaultStateJSON]
    public var next: String?
}

/// GET /v1/vault/balances
public struct VaultBalancesJSON: Codable, Sendable {
    public struct Balance: Codable, Sendable, Equatable {
        public var type: String
        public var owner: String
        public var amount: JSONNumber
        public var states: Int
    }
    public var balances: [Balance]
}

public struct DrainingJSON: Codable, Sendable, ResponseEncodable {
    public var draining: Bool
    public var runningFlows: Int?
}

/// PUT /v1/admin/draining
public struct SetDrainingJSON: Codable, Sendable {
    public var draining: Bool

    public init(draining: Bool) { self.draining = draining }

    enum CodingKeys: String, CodingKey, CaseIterable { case draining }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownFields(CodingKeys.self)
        draining = try decoder.container(keyedBy: CodingKeys.self).decode(Bool.self, forKey: .draining)
    }
}

public struct NodeIdentityJSON: Codable, Sendable, ResponseEncodable {
    public var name: String
    public var notary: String
    public var parties: [String]
    public var flows: [String]
}
