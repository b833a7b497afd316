import Foundation

/// A JSON value (RFC 8259) whose numbers keep their exact text, so that an integer such as
/// 9007199254740993 or 123456789012345678 is neither rounded nor rewritten in floating point on
/// its way through the node. `JSONValue(parsing:)` reads one, `bytes` writes the compact form
/// with object members sorted (the same value always gives the same bytes).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Compact JSON, object members sorted by the UTF-8 bytes of their names, numbers as written.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        write(to: &out)
        return out
    }

    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .number(let number): out += Array(number.text.utf8)
        case .string(let text): JSONValue.appendString(text, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped (RFC 8259).
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case UInt8(ascii: "\n"): out += Array("\\n".utf8)
            case UInt8(ascii: "\r"): out += Array("\\r".utf8)
            case UInt8(ascii: "\t"): out += Array("\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The members of an object, nil for any other value.
    public var object: [String: JSONValue]? {
        if case .object(let members) = self { members } else { nil }
    }
}

/// A JSON number as its text, checked against RFC 8259's grammar: exact whatever its size.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public let text: String

    /// Nil unless `text` is a JSON number.
    public init?(text: String) {
        var parser = JSONParser(Array(text.utf8))
        guard (try? parser.number()) != nil, parser.isAtEnd else { return nil }
        self.text = text
    }

    public init<T: BinaryInteger>(_ value: T) { text = String(value) }
    public init(integerLiteral value: Int64) { text = String(value) }
    /// For tests and constants: the shortest text that reads back as `value`.
    public init(floatLiteral value: Double) { text = "\(value)" }
    init(unchecked text: String) { self.text = text }

    /// The value if it is a whole number written without fraction or exponent and fits an Int64.
    public var int64: Int64? { Int64(text) }
    /// The whole number this denotes, written plainly ("321" for 321.0 or 3.21e2), or nil if it
    /// is not whole. Exact: computed on the digits, never through a double. Nil also for an
    /// exponent that would make it longer than 40 digits.
    public var wholeNumberText: String? {
        var utf8 = Substring(text)
        let negative = utf8.first == "-"
        if negative { utf8 = utf8.dropFirst() }
        let parts = utf8.split(whereSeparator: { $0 == "e" || $0 == "E" })
        guard parts.count == 1 || parts.count == 2 else { return nil }
        let mantissa = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard mantissa.count <= 2, let exponent = parts.count == 2 ? Int(parts[1]) : 0 else { return nil }
        var digits = String(mantissa[0])
        let fraction = mantissa.count == 2 ? String(mantissa[1]) : ""
        digits += fraction
        var scale = exponent - fraction.count
        if scale > 40 { return nil }
        while scale < 0 {
            guard digits.last == "0" else { return nil }
            digits.removeLast()
            scale += 1
        }
        digits += String(repeating: "0", count: scale)
        let trimmed = digits.drop { $0 == "0" }
        guard !trimmed.isEmpty else { return "0" }
        guard trimmed.count <= 40 else { return nil }
        return (negative ? "-" : "") + trimmed
    }

    /// True for a whole number written without fraction or exponent (of any size).
    public var isPlainInteger: Bool { !text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } }
    public var description: String { text }
}

// Codable, for clients reading the node's answers with JSONDecoder: integers that fit 64 bits are
// read exactly, other numbers as Decimal (38 significant digits), never through Double.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode(JSONNumber.self) { self = .number(v) }
        else if let v = try? c.decode([String: JSONValue].self) { self = .object(v) }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else { self = .array(try c.decode([JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .number(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }
}

extension JSONNumber: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Int64.self) { text = String(v) }
        else if let v = try? c.decode(UInt64.self) { text = String(v) }
        else { text = try c.decode(Decimal.self).description }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let v = Int64(text) { try c.encode(v) }
        else if let v = UInt64(text) { try c.encode(v) }
        else if let v = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) { try c.encode(v) }
        else { throw EncodingError.invalidValue(text, .init(codingPath: encoder.codingPath, debugDescription: "not a number")) }
    }
}
