import Foundation
import HawserCore

/// Reading the files a process is configured with (its configuration, key files), with problems
/// said in words: Foundation's own errors name an error domain and a number ("NSCocoaErrorDomain
/// error 256") rather than what is wrong.
enum ConfigurationFile {
    /// The bytes of the file at `path`; `what` names it in the problem ("configuration file").
    static func contents(of path: String, what: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError(["cannot read \(what) \(path): there is no such file"])
        }
        guard !isDirectory.boolValue else { throw ConfigurationError(["cannot read \(what) \(path): it is a directory"]) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(["cannot read \(what) \(path): permission denied, or not a regular file"])
        }
        return data
    }

    /// Reads and validates a configuration file of type `T`: strict JSON (a member named twice is
    /// a mistake, never the first one winning), no unknown option (`unknownOptions`), no null, and every
    /// problem `problems` finds, given the directory relative file names point into.
    static func load<T: Decodable>(_ path: String, unknownOptions: (Data) -> [String],
                                   problems: (T, _ baseDirectory: String) -> [String]) throws -> T {
        let data = try contents(of: path, what: "configuration file")
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(data)) } catch {
            throw ConfigurationError(["\(path) is not valid JSON: \(error)"])
        }
        var found = unknownOptions(data) + json.nullMembers()
        do {
            let configuration = try JSONDecoder().decode(T.self, from: data)
            found += problems(configuration, URL(fileURLWithPath: path).deletingLastPathComponent().path)
            guard found.isEmpty else { throw ConfigurationError(found) }
            return configuration
        } catch let error as DecodingError {
            // Reported alone: the other checks need a configuration that decoded. A number the
            // decoder could not hold comes without its place: the candidates are named.
            var problem = "\(path): \(error.plainDescription)"
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                let candidates = json.numbersBeyondWholeNumbers()
                if !candidates.isEmpty { problem += " (not whole numbers: \(candidates.joined(separator: ", ")))" }
            }
            throw ConfigurationError(found + [problem])
        }
    }
}
