import Flows
import HawserWire
import Sessions
import SwiftProtobuf

/// What a hot-hot process tells the others on its bus: its session hub's news, or that it queued
/// flow starts (an RPC worker, docs/node.md "Roles").
enum BusNews: Sendable, Equatable {
    case session(SessionNews)
    /// An RPC worker queued these flows' starts.
    case startsQueued([FlowID])
    /// These flows ended or were parked (an RPC worker waiting for one reads its record).
    case flowsSettled([FlowID])
}

/// The bus's events (`proto/hawser_bus.proto`, docs/node.md "The bus"), to and from the news they
/// carry. Sans I/O.
enum BusEvents {
    /// The schema this Hawser writes, and the only one it reads.
    static let schema: UInt32 = 1
    /// The most flows or inbox keys one event may name. A process names one start or settled
    /// flow an event and at most a delivery's messages (32); anyone who can publish on the subject
    /// could otherwise make every process read thousands of made-up flows at each event.
    static let maxNamed = 1_000

    static func encode(_ news: BusNews, sender: String) -> [UInt8] {
        var event = Hawser_Bus_V1_BusEvent()
        event.schema = schema
        event.sender = sender
        switch news {
        case .session(.inboxWritten(let keys)):
            event.inboxWritten.keys = keys.map { key in
                var wire = Hawser_Bus_V1_SessionKey()
                (wire.session, wire.sender, wire.sequence) = (key.session, key.sender, Int64(key.sequence))
                return wire
            }
        case .session(.outboxWritten):
            event.outboxWritten = Hawser_Bus_V1_OutboxWritten()
        case .startsQueued(let ids):
            event.startsQueued.ids = ids.map(\.rawValue)
        case .flowsSettled(let ids):
            event.flowsSettled.ids = ids.map(\.rawValue)
        }
        // Encoding a message of these field types cannot fail.
        return try! event.serializedBytes()
    }

    /// An event, or why it is refused: not an event, a schema this Hawser does not know (a newer
    /// process's, during a rolling upgrade), or a kind of event its schema does not name.
    static func decode(_ bytes: [UInt8]) throws(Refusal) -> (sender: String, news: BusNews) {
        let event: Hawser_Bus_V1_BusEvent
        do { event = try Hawser_Bus_V1_BusEvent(serializedBytes: bytes) } catch { throw Refusal("it is not a bus event (\(error))") }
        guard event.schema == schema else {
            throw Refusal("it is of schema \(event.schema), and this process knows schema \(schema) only")
        }
        let named = switch event.event {
        case .inboxWritten(let written): written.keys.count
        case .startsQueued(let queued): queued.ids.count
        case .flowsSettled(let settled): settled.ids.count
        case .outboxWritten, nil: 0
        }
        guard named <= maxNamed else { throw Refusal("it names more than \(maxNamed) flows or messages") }
        switch event.event {
        case .inboxWritten(let written):
            return (event.sender, .session(.inboxWritten(written.keys.map { SessionMessageKey(session: $0.session, sender: $0.sender, sequence: Int($0.sequence)) })))
        case .outboxWritten:
            return (event.sender, .session(.outboxWritten))
        case .startsQueued(let queued):
            return (event.sender, .startsQueued(queued.ids.map(FlowID.init)))
        case .flowsSettled(let settled):
            return (event.sender, .flowsSettled(settled.ids.map(FlowID.init)))
        case nil:
            throw Refusal("it names no event this process knows")
        }
    }

    struct Refusal: Error, Equatable, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
