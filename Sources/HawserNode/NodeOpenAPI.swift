import Flows
import HawserCore
import Synchronization

/// The OpenAPI document the node serves at `/openapi.json`: docs/node-openapi.json (compiled in)
/// with the node's real address in `servers`, and the argument schema of every flow it runs
/// (`FlowSchema`, the one that checks start requests) in `StartFlow`.
final class NodeOpenAPI: Sendable {
    private let base = NodeOpenAPI.base
    private let registry: FlowRegistry
    private let parties: @Sendable () -> [String]
    private let host: String
    private let port: Mutex<Int>

    /// `parties`: the parties a flow's party argument may name as of now: those the node hosts
    /// and those of its network, which may change while it runs (so the document is made per call).
    init(registry: FlowRegistry, parties: @escaping @Sendable () -> [String], host: String, port: Int) {
        self.registry = registry
        self.parties = parties
        self.host = host
        self.port = Mutex(port)
    }

    /// docs/node-openapi.json; a test checks that it parses.
    static var base: JSONValue { (try? JSONValue(parsing: PackageResources.node_openapi_json)) ?? .object([:]) }

    /// The port the server listens on, once known (the configured one may be 0).
    func listening(on port: Int) { self.port.withLock { $0 = port } }

    /// The document, its server the address the node listens on; for a node listening on every
    /// interface, the address the client reached (`authority`, the Host header).
    func document(authority: String?) -> JSONValue {
        let document = Self.withFlows(base, registry, parties: parties())
        guard var root = document.object else { return document }
        let port = self.port.withLock { $0 }
        let address: String
        if host == "0.0.0.0" || host == "::", let authority {
            address = authority
        } else {
            address = (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        }
        root["servers"] = .array([.object(["url": .string("http://" + address)])])
        return .object(root)
    }

    /// Adds `<Flow>Arguments` schemas and makes `StartFlow` name the flows and pair each with its arguments.
    static func withFlows(_ base: JSONValue, _ registry: FlowRegistry, parties: [String]) -> JSONValue {
        guard var root = base.object, var components = root["components"]?.object, var schemas = components["schemas"]?.object,
              var start = schemas["StartFlow"]?.object, var properties = start["properties"]?.object,
              var flow = properties["flow"]?.object else { return base }
        var branches = [JSONValue]()
        for name in registry.names {
            let schema = registry.schema(of: name)?.jsonSchema(parties: parties)
                ?? .object(["type": .string("object"), "description": .string("Arguments this node does not describe.")])
            schemas[name + "Arguments"] = schema
            branches.append(.object(["properties": .object([
                "flow": .object(["const": .string(name)]),
                "arguments": .object(["$ref": .string("#/components/schemas/\(name)Arguments")]),
            ])]))
        }
        flow["enum"] = .array(registry.names.map(JSONValue.string))
        properties["flow"] = .object(flow)
        start["properties"] = .object(properties)
        start["oneOf"] = .array(branches)
        schemas["StartFlow"] = .object(start)
        components["schemas"] = .object(schemas)
        root["components"] = .object(components)
        return .object(root)
    }
}
