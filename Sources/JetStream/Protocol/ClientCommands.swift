import Foundation
import NIOCore

/// The JSON body of `CONNECT`.
struct ConnectInfo: Encodable, Sendable, Hashable {
    var verbose = false
    var pedantic = false
    var tlsRequired = false
    var name: String?
    var lang = "swift"
    var version = "0.1.0"
    var `protocol` = 1
    var echo = true
    var headers = true
    var noResponders = true
    var user: String?
    var pass: String?
    var authToken: String?

    enum CodingKeys: String, CodingKey {
        case verbose, pedantic, tlsRequired = "tls_required", name, lang, version, `protocol`, echo
        case headers, noResponders = "no_responders", user, pass, authToken = "auth_token"
    }
}

/// Encoders for the client side of the protocol. Subjects must already be validated.
enum ClientCommand {
    static func connect(_ info: ConnectInfo, into buffer: inout ByteBuffer) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(info)) ?? Data("{}".utf8)
        buffer.writeStaticString("CONNECT ")
        buffer.writeBytes(json)
        buffer.writeStaticString("\r\n")
    }

    /// Total bytes that `publish` writes.
    static func publishSize(subject: String, replyTo: String?, headerSize: Int?, payloadSize: Int) -> Int {
        // A generous estimate is fine: it is only used for buffer reservation and limits.
        subject.utf8.count + (replyTo?.utf8.count ?? 0) + (headerSize ?? 0) + payloadSize + 48
    }

    /// `PUB subject [reply] size` or `HPUB subject [reply] hsize tsize`, then payload.
    static func publish(
        subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer,
        into buffer: inout ByteBuffer
    ) {
        var payload = payload
        if let headers {
            let headerSize = HeaderCoding.encodedSize(headers)
            buffer.writeStaticString("HPUB ")
            buffer.writeString(subject)
            if let replyTo { buffer.writeString(" \(replyTo)") }
            buffer.writeString(" \(headerSize) \(headerSize + payload.readableBytes)\r\n")
            HeaderCoding.write(headers, into: &buffer)
        } else {
            buffer.writeStaticString("PUB ")
            buffer.writeString(subject)
            if let replyTo { buffer.writeString(" \(replyTo)") }
            buffer.writeString(" \(payload.readableBytes)\r\n")
        }
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }

    static func subscribe(subject: String, queue: String?, sid: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("SUB ")
        buffer.writeString(subject)
        if let queue { buffer.writeString(" \(queue)") }
        buffer.writeString(" \(sid)\r\n")
    }

    static func unsubscribe(sid: UInt64, max: Int? = nil, into buffer: inout ByteBuffer) {
        buffer.writeString("UNSUB \(sid)")
        if let max { buffer.writeString(" \(max)") }
        buffer.writeStaticString("\r\n")
    }

    static func ping(into buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    static func pong(into buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }
}
