/// Reads the two headers that name media types (RFC 9110 §8.3, §12.5.1), as both APIs need them.
enum MediaTypes {
    /// A `Content-Type`'s media type, lower-cased ("" without one), and its `charset` parameter
    /// when it names one other than UTF-8: JSON is UTF-8 only (RFC 8259 §8.1), and a body
    /// announced in another charset is refused rather than misread.
    static func content(_ header: String?) -> (type: String, foreignCharset: String?) {
        let (type, parameters) = parse(header ?? "")
        let charset = parameters["charset"].map { $0.lowercased() }
        return (type, charset.flatMap { $0 == "utf-8" || $0 == "utf8" ? nil : $0 })
    }

    /// Whether an `Accept` header prefers `preferred` to `other`: it names `preferred` with a
    /// weight above 0, and `other` (or a range holding it) with no higher weight. A header that
    /// names neither, or none at all, prefers neither (the server's default then).
    static func accept(_ header: String?, prefers preferred: String, to other: String) -> Bool {
        var preferredWeight = 0.0
        var otherWeight = 0.0
        for range in (header ?? "").split(separator: ",") {
            let (type, parameters) = parse(String(range))
            let weight = parameters["q"].flatMap(Double.init) ?? 1
            if type == preferred { preferredWeight = max(preferredWeight, weight) }
            if type == other || type == "*/*" || type == other.prefix(while: { $0 != "/" }) + "/*" {
                otherWeight = max(otherWeight, weight)
            }
        }
        return preferredWeight > 0 && preferredWeight >= otherWeight
    }

    /// `type/subtype; name=value; ...`: the type lower-cased, parameter names lower-cased, values
    /// unquoted. Every request of the notary's hot path passes here: no Foundation bridging.
    private static func parse(_ text: String) -> (type: String, parameters: [String: String]) {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        let type = parts.first.map { trimmed($0).lowercased() } ?? ""
        var parameters: [String: String] = [:]
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let name = trimmed(pair[0]).lowercased()
            var value = trimmed(pair[1])
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = value.dropFirst().dropLast() }
            if parameters[name] == nil { parameters[name] = String(value) }
        }
        return (type, parameters)
    }

    /// Without the optional white space (spaces and tabs) around it.
    private static func trimmed(_ text: Substring) -> Substring {
        var result = text.drop(while: { $0 == " " || $0 == "\t" })
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
