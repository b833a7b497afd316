import Foundation

extension DecodingError {
    /// The problem in words about the input, for the person who wrote it: where in the JSON
    /// (`listen.port`, `parties[0].name`) and what is wrong, without Swift's type names or dumps.
    public var plainDescription: String {
        func path(_ context: Context, _ last: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            guard !keys.isEmpty else { return "the top level" }
            return "`" + keys.enumerated().map { index, key in
                key.intValue.map { "[\($0)]" } ?? (index == 0 ? key.stringValue : "." + key.stringValue)
            }.joined() + "`"
        }
        switch self {
        case .typeMismatch(let type, let c):
            return "\(path(c)) must be \(Self.kind(type))"
        case .valueNotFound(let type, let c):
            return "\(path(c)) must be \(Self.kind(type)), not null"
        case .keyNotFound(let key, let c):
            return "\(path(c, key)) is missing"
        case .dataCorrupted(let c) where c.codingPath.isEmpty:
            // Every reader checks the JSON itself first (`JSONValue(parsing:)`): what is left is
            // a number Foundation's reader cannot hold.
            let underlying = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "a number does not fit (too large, or a fraction where a whole number is wanted)"
                + (underlying.map { ": \($0)" } ?? "")
        case .dataCorrupted(let c):
            return "\(path(c)): \(c.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }

    private static func kind(_ type: Any.Type) -> String {
        switch type {
        case is any BinaryInteger.Type: "a whole number"
        case is any BinaryFloatingPoint.Type: "a number"
        case is String.Type, is Substring.Type: "a string"
        case is Bool.Type: "true or false"
        default: String(describing: type).hasPrefix("Array<") ? "an array" : "an object"
        }
    }
}

extension JSONValue {
    /// Where in the value a number is not a whole number that 64 bits hold (`ha.partitions`,
    /// `parties[0].x`), with its text: what Foundation's decoder refuses without saying where.
    public func numbersBeyondWholeNumbers() -> [String] {
        problems { value, path in
            guard case .number(let number) = value, Int64(number.text) == nil else { return nil }
            return "`\(path)` is \(number.text)"
        }
    }

    /// Where in the value a member is null (`listen.port`): the decoder takes it for a field left
    /// out, and a file that says `null` would silently get the default.
    public func nullMembers() -> [String] {
        problems { value, path in
            guard case .null = value else { return nil }
            return path.isEmpty ? "the top level is null, not an object" : "`\(path)` is null: leave a field out to take its default"
        }
    }

    /// What `check` says of this value and of every value in it, each given its place as the user
    /// writes it (`parties[0].keyFile`), object members in name order.
    private func problems(at path: String = "", _ check: (JSONValue, String) -> String?) -> [String] {
        let here = check(self, path).map { [$0] } ?? []
        switch self {
        case .array(let items):
            return here + items.enumerated().flatMap { $1.problems(at: "\(path)[\($0)]", check) }
        case .object(let members):
            return here + members.sorted { $0.key < $1.key }.flatMap { $1.problems(at: path.isEmpty ? $0 : "\(path).\($0)", check) }
        case .null, .bool, .number, .string:
            return here
        }
    }
}
