import HawserCore

/// The rules a start request meets before a flow is created (sans-I/O): its client request id's
/// shape, and whether a flow that id already names is the same request.
enum Admission {
    /// Longest client request id, in UTF-8 bytes: room for any UUID or order number, not for a document.
    static let maxClientRequestIdBytes = 200

    static func check(clientRequestId key: String) throws(FlowEngineError) {
        guard !key.isEmpty else { throw .invalidClientRequestId("is empty") }
        guard key.utf8.count <= maxClientRequestIdBytes else {
            throw .invalidClientRequestId("is \(key.utf8.count) bytes long; at most \(maxClientRequestIdBytes) are allowed")
        }
        guard !key.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidClientRequestId("holds a control character")
        }
    }

    /// Whether `found`, the flow the client request id names, was started by this same request:
    /// the same flow with the same arguments, compared as JSON (member order and spacing aside).
    static func isSameRequest(_ found: FlowRecord, flowName: String, arguments: [UInt8]) -> Bool {
        found.flowName == flowName && canonical(found.arguments) == canonical(arguments)
    }

    private static func canonical(_ bytes: [UInt8]) -> [UInt8] {
        (try? JSONValue(parsing: bytes))?.bytes ?? bytes
    }

    /// `found` if it is this request's flow, else the reuse error.
    static func existing(_ found: FlowRecord, flowName: String, arguments: [UInt8]) throws(FlowEngineError) -> FlowRecord {
        guard isSameRequest(found, flowName: flowName, arguments: arguments) else {
            throw .clientRequestIdReused(found.clientRequestId ?? "", found.id)
        }
        return found
    }
}
