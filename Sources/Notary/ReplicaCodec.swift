import Foundation
import HawserCore
import HawserWire
import SwiftProtobuf

/// Encodes, authenticates and decodes what the replicas of one notary write to the log and send
/// each other: log entries (`LogBatch`), batches forwarded to the sequencer, and reports. Each
/// travels in an `Authenticated` envelope whose MAC is keyed, per kind, by a key derived from the
/// notary's private key: anything else on the bus is refused, whoever could write to it.
public struct ReplicaCodec: Sendable {
    /// A decoded log entry: its requests, its timestamp and its place in the chain.
    public struct Batch: Sendable {
        public var requests: [NotarisationRequest]
        public var time: Instant
        /// Requests that did not decode (dropped the same way on every replica).
        public var dropped: Int
        public var position: UInt64
        /// The predecessor's hash; nil when the entry names none.
        public var previous: SecureHash?
        public var sequencer: String
    }

    private let entries: MessageAuthenticator
    private let forwards: MessageAuthenticator
    private let reports: MessageAuthenticator

    public init(notaryKey: SigningKey) {
        entries = MessageAuthenticator(deriving: notaryKey, purpose: "notary log entry")
        forwards = MessageAuthenticator(deriving: notaryKey, purpose: "notary forwarded batch")
        reports = MessageAuthenticator(deriving: notaryKey, purpose: "notary replica report")
    }

    // MARK: Log entries

    /// The entry for `requests` at `position`, after the entry whose hash is `previous`.
    func entry(_ requests: [NotarisationRequest], time: Instant, position: UInt64, previous: SecureHash,
               sequencer: String) -> [UInt8] {
        var batch = Hawser_V1_LogBatch()
        batch.appendTimeMicros = time.microsecondsSinceEpoch
        batch.requests = requests.map(\.proto)
        batch.position = position
        batch.previous = Data(previous.bytes)
        batch.sequencer = sequencer
        return seal(batch, with: entries)
    }

    /// The entry, or nil if it is not an authentic `LogBatch`. A request that does not decode
    /// cannot come from a front (it validated it); it is dropped the same way on every replica.
    func batch(fromEntry payload: [UInt8]) -> Batch? {
        guard let batch = open(payload, with: entries, as: Hawser_V1_LogBatch.self) else { return nil }
        var requests = [NotarisationRequest]()
        requests.reserveCapacity(batch.requests.count)
        var dropped = 0
        for proto in batch.requests {
            if let request = try? NotarisationRequest(proto: proto) { requests.append(request) } else { dropped += 1 }
        }
        return Batch(requests: requests, time: Instant(microsecondsSinceEpoch: batch.appendTimeMicros), dropped: dropped,
                     position: batch.position, previous: SecureHash(bytes: batch.previous), sequencer: batch.sequencer)
    }

    // MARK: Forwarded batches

    func forwarded(_ requests: [NotarisationRequest]) -> [UInt8] {
        var batch = Hawser_V1_LogBatch()
        batch.requests = requests.map(\.proto)
        return seal(batch, with: forwards)
    }

    /// The forwarded requests, or nil if the message is not an authentic forwarded batch.
    func requests(fromForwarded payload: [UInt8]) -> [NotarisationRequest]? {
        guard let batch = open(payload, with: forwards, as: Hawser_V1_LogBatch.self) else { return nil }
        return try? batch.requests.map(NotarisationRequest.init(proto:))
    }

    // MARK: Reports

    func message(_ report: ReplicaReport) -> [UInt8] {
        var proto = Hawser_V1_ReplicaReport()
        proto.replica = report.replica
        proto.instance = report.instance
        proto.position = report.head.position
        proto.entryHash = Data(report.head.entryHash.bytes)
        proto.stateHash = Data(report.head.stateHash.bytes)
        proto.status = switch report.status {
        case .catchingUp: .catchingUp
        case .ready: .ready
        case .diverged: .diverged
        }
        proto.members = report.members
        return seal(proto, with: reports)
    }

    /// The report, or nil if the message is not an authentic report.
    func report(_ payload: [UInt8]) -> ReplicaReport? {
        guard let proto = open(payload, with: reports, as: Hawser_V1_ReplicaReport.self),
              let entryHash = SecureHash(bytes: proto.entryHash), let stateHash = SecureHash(bytes: proto.stateHash) else { return nil }
        let status: ReplicaReport.Status
        switch proto.status {
        case .catchingUp: status = .catchingUp
        case .ready: status = .ready
        case .diverged: status = .diverged
        case .UNRECOGNIZED: return nil
        }
        return ReplicaReport(replica: proto.replica, instance: proto.instance,
                             head: ChainHead(position: proto.position, entryHash: entryHash, stateHash: stateHash),
                             status: status, members: proto.members)
    }

    /// The replica a report that did not authenticate names, for messages only: nothing vouches for it.
    func claimedReplica(_ payload: [UInt8]) -> String? {
        guard let envelope = try? Hawser_V1_Authenticated(serializedBytes: payload),
              let proto = try? Hawser_V1_ReplicaReport(serializedBytes: envelope.body) else { return nil }
        return proto.replica
    }

    // MARK: Envelope

    private func seal(_ message: some SwiftProtobuf.Message, with authenticator: MessageAuthenticator) -> [UInt8] {
        var envelope = Hawser_V1_Authenticated()
        // Serialising a fully built message cannot fail.
        let body: [UInt8] = try! message.serializedBytes()
        envelope.body = Data(body)
        envelope.mac = Data(authenticator.code(body))
        return try! envelope.serializedBytes()
    }

    private func open<M: SwiftProtobuf.Message>(_ payload: [UInt8], with authenticator: MessageAuthenticator, as: M.Type) -> M? {
        guard let envelope = try? Hawser_V1_Authenticated(serializedBytes: payload) else { return nil }
        let body = [UInt8](envelope.body)
        guard authenticator.isValid([UInt8](envelope.mac), for: body) else { return nil }
        return try? M(serializedBytes: body)
    }
}

extension ReplicaCodec {
    /// The sequencer's reply to a forwarded batch: empty once appended, else the error.
    func forwardReply(_ error: APIError?) -> [UInt8] {
        guard let error else { return [] }
        return try! error.proto.serializedBytes()
    }

    /// The error a forward's reply carries, nil when the batch was appended.
    func forwardRefusal(_ reply: [UInt8]) -> APIError? {
        guard !reply.isEmpty else { return nil }
        guard let proto = try? Hawser_V1_Error(serializedBytes: reply), let code = ErrorCode(rawValue: proto.code) else {
            return APIError(.internalError, "the sequencer's reply to a forwarded batch is not an error message")
        }
        return APIError(code, proto.message)
    }
}
