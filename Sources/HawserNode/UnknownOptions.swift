import Foundation

/// The options a configuration file names that its reader does not know: a misspelt option is an
/// error, never silently ignored. One walker for the node's and the notary's files.
enum UnknownOptions {
    /// Each object's known keys by its path: `""` is the top, `ha.election` a nested object,
    /// `parties[]` every element of an array. Returns one sentence per unknown key
    /// (``unknown option `parties[1].foo` ``), sorted; none if the text is not a JSON object
    /// (the decoder says what is wrong then).
    static func find(in data: Data, known: [String: Set<String>]) -> [String] {
        guard let top = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [] }
        var out = [String]()
        for (path, keys) in known {
            for (name, object) in objects(at: path.isEmpty ? [] : path.split(separator: ".").map(String.init), in: top, named: "") {
                for key in object.keys where !keys.contains(key) {
                    out.append("unknown option `\(name.isEmpty ? key : "\(name).\(key)")`")
                }
            }
        }
        return out.sorted()
    }

    /// The keys a `Codable` section knows: its coding keys.
    static func keys<Key: CodingKey & CaseIterable>(_: Key.Type) -> Set<String> { Set(Key.allCases.map(\.stringValue)) }

    /// The objects at `path` below `object`, with the names a user reads (`parties[1]`).
    private static func objects(at path: [String], in object: [String: Any], named name: String) -> [(String, [String: Any])] {
        guard let first = path.first else { return [(name, object)] }
        let rest = Array(path.dropFirst())
        let prefix = name.isEmpty ? "" : name + "."
        if first.hasSuffix("[]") {
            let key = String(first.dropLast(2))
            guard let elements = object[key] as? [Any] else { return [] }
            return elements.enumerated().flatMap { index, element -> [(String, [String: Any])] in
                guard let element = element as? [String: Any] else { return [] }
                return objects(at: rest, in: element, named: "\(prefix)\(key)[\(index)]")
            }
        }
        guard let child = object[first] as? [String: Any] else { return [] }
        return objects(at: rest, in: child, named: prefix + first)
    }
}
