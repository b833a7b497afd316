import Foundation
import HawserCore
import HawserTestSupport
import HawserNode
import HawserWire
import Hummingbird
import HummingbirdTesting
import Logging

let alice = SigningKey(seed: [UInt8](repeating: 1, count: 32))!
let notaryKey = SigningKey(seed: [UInt8](repeating: 7, count: 32))!

/// Writes a notary key and a configuration authorising Alice into `directory`.
func writeNotaryFiles(in directory: String, port: Int = 0, _ adjust: (inout NotaryConfiguration) -> Void = { _ in }) throws {
    try KeyFile(name: "O=Test Notary", key: notaryKey).save(directory + "/notary.key")
    var configuration = NotaryConfiguration()
    configuration.listen.port = port
    configuration.authorisedParties = [.init(name: "O=Alice", publicKey: alice.publicKey.base64)]
    adjust(&configuration)
    try configuration.save(directory + "/hawser.json")
}

/// A notary's files in `directory` keeping its log and store in a new database of `server`: its
/// configuration, and the database's name.
func writePostgresNotaryFiles(in directory: String, server: PostgresServer) async throws -> (NotaryConfiguration, database: String) {
    let databaseURL = try await server.createDatabase()
    try writeNotaryFiles(in: directory) { configuration in
        configuration.database.kind = .postgres
        configuration.database.url = databaseURL
        // The full suite loads the machine: connecting once took longer than the default 10 s.
        configuration.database.connectTimeoutMillis = 60_000
    }
    return (try NotaryConfiguration.load(directory + "/hawser.json"), String(databaseURL.split(separator: "/").last!))
}

/// Runs an embedded notary for the duration of `body`, reached through Hummingbird's test client.
func withNotary<T: Sendable>(_ adjust: (inout NotaryConfiguration) -> Void = { _ in },
                             _ body: @Sendable (any TestClientProtocol, NotaryNode.Parts) async throws -> T) async throws -> T {
    let dir = try TemporaryDirectory()
    try writeNotaryFiles(in: dir.path, adjust)
    let configuration = try NotaryConfiguration.load(dir.path + "/hawser.json")
    let (app, parts) = try await NotaryNode.application(configuration: configuration, baseDirectory: dir.path,
                                                   logger: quietLogger)
    return try await app.test(.router) { client in try await body(client, parts) }
}

func signed(_ txId: SecureHash, inputs: [StateRef], references: [StateRef] = [], window: TimeWindow? = nil) -> NotarisationRequest {
    .signed(txId: txId, inputs: inputs, references: references, timeWindow: window, requesterName: "O=Alice", key: alice,
            notary: notaryKey.publicKey)
}

func json<T: Encodable>(_ value: T) -> ByteBuffer { ByteBuffer(bytes: try! JSONEncoder().encode(value)) }

func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) throws -> T { try JSONDecoder().decode(T.self, from: Data(buffer: body)) }

let jsonHeaders: HTTPFields = [.contentType: "application/json"]
let protobufHeaders: HTTPFields = [.contentType: "application/x-protobuf", .accept: "application/x-protobuf"]

/// Logs only warnings and worse, so test output shows what matters.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return logger
}()
