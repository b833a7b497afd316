import HawserCore

/// The arguments a flow takes: a JSON object with exactly these fields. The engine checks a start
/// request against it before the flow is created, so that a mistake (an unknown or missing field,
/// a wrong type, a number out of range, a party the node does not know) is refused with a clear
/// error instead of failing inside the flow; the node publishes the same schema in its OpenAPI
/// document. Integers are read exactly, whatever their size, and refused outside their range.
public struct FlowSchema: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Text of 1 to `maxLength` UTF-8 bytes.
        case string(maxLength: Int)
        /// A whole number in the range, written without fraction or exponent.
        case integer(ClosedRange<Int64>)
        case boolean
        /// The name of a party this node knows.
        case party
    }

    public struct Field: Sendable {
        public var name: String
        public var kind: Kind
        public var required: Bool
        public var description: String

        public init(_ name: String, _ kind: Kind, required: Bool = true, _ description: String) {
            self.name = name
            self.kind = kind
            self.required = required
            self.description = description
        }
    }

    public var description: String
    public var fields: [Field]

    public init(_ description: String, fields: [Field]) {
        self.description = description
        self.fields = fields
    }

    /// Checks `arguments` and returns them with every whole number written plainly (321.0 and
    /// 3.21e2 become 321, as JSON Schema's `integer` allows them); `knows` says whether the node
    /// knows a party by that name.
    public func check(_ arguments: JSONValue, knows: (String) -> Bool) throws(FlowArgumentError) -> JSONValue {
        guard var members = arguments.object else { throw .notAnObject }
        let known = Set(fields.map(\.name))
        if let unknown = members.keys.filter({ !known.contains($0) }).min() {
            throw .unknownField(unknown, allowed: fields.map(\.name))
        }
        for field in fields {
            guard let value = members[field.name], value != .null else {
                if field.required { throw .missingField(field.name) }
                continue
            }
            switch (field.kind, value) {
            case (.string(let maxLength), .string(let text)):
                guard !text.isEmpty, text.utf8.count <= maxLength else {
                    throw .outOfRange(field.name, "1 to \(maxLength) bytes of text")
                }
            case (.party, .string(let name)):
                guard knows(name) else { throw .unknownParty(field.name, name) }
            case (.integer(let range), .number(let number)):
                guard let whole = number.wholeNumberText else { throw .wrongType(field.name, "a whole number") }
                guard let int = Int64(whole), range.contains(int) else {
                    throw .outOfRange(field.name, "a whole number from \(range.lowerBound) to \(range.upperBound)")
                }
                members[field.name] = .number(JSONNumber(int))
            case (.boolean, .bool):
                break
            default:
                throw .wrongType(field.name, field.kind.noun)
            }
        }
        return .object(members)
    }

    /// The schema as JSON Schema (2020-12, as OpenAPI 3.1 uses it).
    public var jsonSchema: JSONValue { jsonSchema(parties: nil) }

    /// The JSON Schema of the arguments; with `parties`, a party field names exactly those (the
    /// parties the node knows), so the schema says precisely which arguments are accepted.
    public func jsonSchema(parties: [String]?) -> JSONValue {
        var properties = [String: JSONValue]()
        for field in fields {
            var property: [String: JSONValue] = ["description": .string(field.description)]
            switch field.kind {
            case .string(let maxLength):
                property["type"] = .string("string")
                property["minLength"] = .number(1)
                property["maxLength"] = .number(JSONNumber(maxLength))
            case .integer(let range):
                property["type"] = .string("integer")
                property["minimum"] = .number(JSONNumber(range.lowerBound))
                property["maximum"] = .number(JSONNumber(range.upperBound))
            case .boolean:
                property["type"] = .string("boolean")
            case .party:
                property["type"] = .string("string")
                property["description"] = .string(field.description + " (a party this node knows: GET /v1/node lists those it hosts, GET /v1/network the others)")
                if let parties { property["enum"] = .array(parties.map(JSONValue.string)) }
            }
            properties[field.name] = .object(property)
        }
        return .object([
            "type": .string("object"),
            "description": .string(description),
            "properties": .object(properties),
            "required": .array(fields.filter(\.required).map { .string($0.name) }),
            "additionalProperties": .bool(false),
        ])
    }
}

extension FlowSchema.Kind {
    var noun: String {
        switch self {
        case .string: "text"
        case .integer: "a whole number"
        case .boolean: "true or false"
        case .party: "a party's name"
        }
    }
}

/// Why a flow's arguments were refused before the flow was created.
public enum FlowArgumentError: Error, Sendable, Equatable, CustomStringConvertible {
    case notJSON(String)
    case notAnObject
    case unknownField(String, allowed: [String])
    case missingField(String)
    case wrongType(String, String)
    case outOfRange(String, String)
    case unknownParty(String, String)
    /// The arguments passed the schema but the flow's type did not decode them.
    case undecodable(String)

    public var description: String {
        switch self {
        case .notJSON(let why): "the arguments are not JSON: \(why)"
        case .notAnObject: "the arguments must be a JSON object"
        case .unknownField(let name, let allowed):
            "unknown argument `\(name.prefix(100))`; the flow takes \(allowed.map { "`\($0)`" }.joined(separator: ", "))"
        case .missingField(let name): "argument `\(name)` is missing"
        case .wrongType(let name, let expected): "argument `\(name)` must be \(expected)"
        case .outOfRange(let name, let expected): "argument `\(name)` must be \(expected)"
        case .unknownParty(let name, let party): "argument `\(name)`: this node knows no party `\(party.prefix(200))`"
        case .undecodable(let why): "the arguments do not decode: \(why)"
        }
    }
}
