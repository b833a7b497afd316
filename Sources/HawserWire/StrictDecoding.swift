/// A JSON request body held a field its type does not have. The servers refuse such bodies (their
/// OpenAPI schemas say `additionalProperties: false`): a misspelt optional field would otherwise
/// be ignored without a word.
public struct UnknownFieldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the field is, e.g. `requests[2].requester.nmae`.
    public var path: String
    public var description: String { "unknown field `\(path)`" }
}

extension CodingUserInfoKey {
    /// Set to `true` in a decoder's `userInfo` to make request types refuse unknown fields. Servers
    /// set it; clients leave it unset, so that a newer server may add fields to its answers.
    public static let refusesUnknownFields = CodingUserInfoKey(rawValue: "hawser.refusesUnknownFields")!
}

extension Decoder {
    /// Throws `UnknownFieldError` if the object being decoded has a key outside `Keys`, when the
    /// decoder was asked to (`CodingUserInfoKey.refusesUnknownFields`).
    public func refuseUnknownFields<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        guard userInfo[.refusesUnknownFields] as? Bool == true else { return }
        let known = Set(Keys.allCases.map(\.stringValue))
        let unknown = try container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter { !known.contains($0) }
        guard let first = unknown.min() else { return }
        let path = codingPath.enumerated().map { index, key in
            key.intValue.map { "[\($0)]" } ?? (index == 0 ? key.stringValue : "." + key.stringValue)
        }.joined()
        throw UnknownFieldError(path: path.isEmpty ? first : path + "." + first)
    }
}

extension KeyedDecodingContainer {
    /// An optional field: absent, or a value of its type. Unlike `decodeIfPresent`, a `null` is
    /// refused, as the OpenAPI documents do not allow it.
    public func decodeIfGiven<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        contains(key) ? try decode(T.self, forKey: key) : nil
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
