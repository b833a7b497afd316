import Flows
import Foundation
import HawserCore
import Hummingbird
import NIOCore

/// The JSON of a flow (`FlowJSON`'s shape, keys sorted), written directly: a flow's arguments and
/// result are stored as JSON already, so they are copied in rather than parsed and re-encoded,
/// which was a tenth of the node's CPU per flow.
enum FlowResponse {
    static func response(_ record: FlowRecord, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: bytes(record))))
    }

    static func list(_ records: [FlowRecord]) -> Response {
        var out = Array("{\"flows\":[".utf8)
        for (index, record) in records.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += bytes(record)
        }
        out += Array("]}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: out)))
    }

    static func bytes(_ record: FlowRecord) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(256 + record.arguments.count + (record.result?.count ?? 0))
        var first = true
        func key(_ name: String) {
            out += Array((first ? "{\"" : ",\"").utf8) + Array(name.utf8) + Array("\":".utf8)
            first = false
        }
        key("arguments"); out += record.arguments
        key("attempts"); out += Array(String(record.attempts).utf8)
        if let clientRequestId = record.clientRequestId { key("clientRequestId"); JSONValue.appendString(clientRequestId, to: &out) }
        key("createdAt"); JSONValue.appendString(record.createdAt.rfc3339, to: &out)
        if let error = record.error { key("error"); JSONValue.appendString(error, to: &out) }
        key("flow"); JSONValue.appendString(record.flowName, to: &out)
        key("id"); JSONValue.appendString(record.id.rawValue, to: &out)
        if let result = record.result { key("result"); out += result }
        if let retryAt = record.retryAt { key("retryAt"); JSONValue.appendString(retryAt.rfc3339, to: &out) }
        key("status"); JSONValue.appendString(record.status.rawValue, to: &out)
        key("updatedAt"); JSONValue.appendString(record.updatedAt.rfc3339, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
