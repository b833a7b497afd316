import Flows
import Foundation
import HawserWire
import Hummingbird
import Vault

/// Any JSON value, for flow arguments and results, which the API carries without knowing their types.
/// Whole numbers that fit 64 bits are kept exactly (`integer`): a `Double` holds only 53 bits, and
/// an argument such as 9223372036854775807 must reach the flow unchanged.
public enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        // Most likely first: each failed attempt costs a thrown error.
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode(Int64.self) { self = .integer(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode([String: JSONValue].self) { self = .object(v) }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else { self = .array(try c.decode([JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .integer(let v): try c.encode(v)
        case .number(let v):
            if v == v.rounded(), abs(v) < 9e15 { try c.encode(Int64(v)) } else { try c.encode(v) }
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    init(bytes: [UInt8]) throws { self = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }

    var bytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data("null".utf8))
    }
}

/// POST /v1/flows
public struct StartFlowJSON: Codable, Sendable {
    public var flow: String
    public var arguments: JSONValue
    public var clientRequestId: String?

    public init(flow: String, arguments: JSONValue, clientRequestId: String?) {
        self.flow = flow
        self.arguments = arguments
        self.clientRequestId = clientRequestId
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case flow, arguments, clientRequestId }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownFields(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        flow = try c.decode(String.self, forKey: .flow)
        arguments = try c.decode(JSONValue.self, forKey: .arguments)
        clientRequestId = try c.decodeIfGiven(String.self, forKey: .clientRequestId)
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

    init(_ event: FlowEvent) {
        flowId = event.flowId.rawValue
        sequence = event.sequence
        step = event.step
        status = event.status?.rawValue
        error = event.error
    }
}

public struct VaultStateJSON: Codable, Sendable, Equatable {
    public var ref: String
    public var type: String
    public var owner: String
    public var data: JSONValue
    public var consumedBy: String?
    public var lockedBy: String?

    init(_ state: VaultState) {
        ref = state.ref.description
        type = state.type
        owner = state.owner
        data = (try? JSONValue(bytes: state.data)) ?? .null
        consumedBy = state.consumedBy?.hex
        lockedBy = state.lockedBy
    }
}

public struct VaultQueryResultJSON: Codable, Sendable, ResponseEncodable {
    public var states: [VaultStateJSON]
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
