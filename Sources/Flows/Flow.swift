import Foundation
import HawserCore
import Sessions

/// A business workflow. `run` must reach every effect (time, randomness, notarisation, vault,
/// messages, external calls) through `context`, so that running it again after a crash takes the
/// journaled results and arrives at the same place. The flow value itself is its argument list:
/// it is stored (JSON) when the flow starts and decoded again to replay it.
public protocol Flow: Codable, Sendable {
    associatedtype Output: Codable & Sendable
    /// The name clients start the flow by; stable across releases.
    static var flowName: String { get }
    /// What a start request's arguments must be (`FlowSchema`); nil leaves them to `Codable`
    /// alone. Every flow a node serves to clients should declare one.
    static var argumentSchema: FlowSchema? { get }
    /// The version an initiating flow announces when it opens a session; the counterparty's node
    /// picks the responder registered for this name and version.
    static var flowVersion: Int { get }
    func run(_ context: FlowContext) async throws -> Output
}

extension Flow {
    public static var flowName: String { String(describing: Self.self) }
    public static var argumentSchema: FlowSchema? { nil }
    public static var flowVersion: Int { 1 }

    /// Runs the flow and encodes its output, so the engine can handle any flow type.
    func runEncoded(_ context: FlowContext) async throws -> [UInt8] {
        try FlowCoding.encode(try await run(context))
    }
}

/// A flow's identity, assigned by the engine when it starts.
public struct FlowID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// A new id: a time-ordered UUID, so the flows, journal and index pages a batch of new flows
    /// writes stay few.
    public static func next() -> FlowID { FlowID(timeOrderedUUID().uuidString.lowercased()) }
    public var description: String { rawValue }
    public static func < (a: FlowID, b: FlowID) -> Bool { a.rawValue < b.rawValue }
}

/// An error a flow throws on purpose (insufficient funds, a refused transaction): the flow fails
/// with this message and is not retried.
public struct FlowFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An error that may go away by itself (a lost database connection, an unreachable notary).
/// The hospital retries the flow with back-off.
public struct TransientFlowError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The store's or service's own error, for whoever must tell causes apart (the node's API
    /// answers a commit its fencing check refused differently from one the database never got).
    public var cause: (any Error)?
    public init(_ message: String, cause: (any Error)? = nil) {
        self.message = message
        self.cause = cause
    }
    public var description: String { message }
}

/// The JSON form of flow arguments, outputs and journaled results. Keys are sorted so that the
/// same value always encodes to the same bytes.
public enum FlowCoding {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    private static let decoder = JSONDecoder()
    private static let nothing = Array("{}".utf8)

    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        // Most effects return nothing: skip the encoder for them.
        if value is Nothing { return nothing }
        return [UInt8](try encoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        if type == Nothing.self, bytes == nothing { return Nothing() as! T }
        return try decoder.decode(type, from: Data(bytes))
    }
}

/// The flow types a node can start, by name, with their argument schemas.
public struct FlowRegistry: Sendable {
    private struct Entry: Sendable {
        var decode: @Sendable ([UInt8]) throws -> any Flow
        var schema: FlowSchema?
    }
    private var entries: [String: Entry] = [:]
    /// Responder flow names by initiating flow name and version, and how each is made.
    var responders: [SessionMessage.Initiator: String] = [:]
    var responderArguments: [String: @Sendable (FlowSession) throws -> [UInt8]] = [:]

    public init() {}

    public mutating func register<F: Flow>(_ type: F.Type) {
        entries[F.flowName] = Entry(decode: { try FlowCoding.decode(F.self, $0) }, schema: F.argumentSchema)
    }

    /// The flows clients may start: responders are started only by the session hub.
    public var names: [String] { entries.keys.filter { responderArguments[$0] == nil }.sorted() }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The flow's argument schema, nil for an unknown flow or one that declares none.
    public func schema(of name: String) -> FlowSchema? { entries[name]?.schema }

    /// Checks a start request's arguments against the flow's schema (`knows`: whether the node
    /// knows a party) and decodes them. Returns the flow and the arguments to store: the flow
    /// value's own encoding, so integers stay exact and equal requests store equal bytes.
    /// `responder`: the session hub starts a responder; no one else may, and it starts nothing else.
    func admit(_ name: String, arguments: [UInt8], responder: Bool = false, knows: (String) -> Bool) throws(FlowEngineError) -> (any Flow, [UInt8]) {
        guard let entry = entries[name], (responderArguments[name] != nil) == responder else { throw .unknownFlow(name) }
        var checked = arguments
        if let schema = entry.schema {
            let value: JSONValue
            do { value = try JSONValue(parsing: arguments) } catch { throw .invalidArguments(name, .notJSON(error.description)) }
            do { checked = try schema.check(value, knows: knows).bytes } catch { throw .invalidArguments(name, error) }
        }
        do {
            let flow = try entry.decode(checked)
            return (flow, try FlowCoding.encode(flow))
        } catch {
            throw .invalidArguments(name, .undecodable("\(error)"))
        }
    }

    /// Decodes a stored flow's arguments, to run it again; throws when the name is unknown or
    /// the arguments do not decode.
    func decode(_ name: String, arguments: [UInt8]) throws -> any Flow {
        guard let entry = entries[name] else { throw FlowEngineError.unknownFlow(name) }
        do { return try entry.decode(arguments) } catch {
            throw FlowEngineError.invalidArguments(name, .undecodable("\(error)"))
        }
    }
}
