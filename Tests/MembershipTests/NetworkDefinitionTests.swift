import Foundation
import HawserCore
import Membership
import Testing

/// A valid network of `nodes` nodes (one party each) and one notary, version `version`.
func network(version: Int = 1, nodes: Int = 3) -> NetworkDefinition {
    let key = { (seed: UInt8) in SigningKey(seed: [UInt8](repeating: seed, count: 32))!.publicKey.base64 }
    return NetworkDefinition(
        version: version,
        nodes: (0..<nodes).map { i in
            NetworkDefinition.Node(name: "O=Node \(i), L=London, C=GB", identityKey: key(UInt8(10 + i)),
                                   addresses: ["grpc://127.0.0.1:\(10_020 + i)"],
                                   parties: [.init(name: "O=Party \(i), L=London, C=GB", publicKey: key(UInt8(40 + i)))])
        },
        notaries: [.init(name: "O=Notary, L=London, C=GB", publicKey: key(99), addresses: ["grpc://127.0.0.1:10000"])])
}

@Suite(.timeLimit(.minutes(10)))
struct NetworkDefinitionTests {
    @Test func aWellFormedNetworkHasNoProblemsAndIsIndexed() throws {
        let definition = network()
        #expect(definition.problems == [])
        let membership = try Membership(definition)
        #expect(membership.node(hosting: "O=Party 1, L=London, C=GB")?.name == "O=Node 1, L=London, C=GB")
        #expect(membership.node(hosting: "O=Nobody") == nil)
        let identity = PublicKey(base64: definition.nodes[2].identityKey)!
        #expect(membership.node(withIdentity: identity)?.name == "O=Node 2, L=London, C=GB")
        // A party's key is not a node's identity: only the identity key speaks for a node.
        #expect(membership.node(withIdentity: PublicKey(base64: definition.nodes[2].parties[0].publicKey)!) == nil)
        #expect(membership.party(named: "O=Party 0, L=London, C=GB")?.publicKey.base64 == definition.nodes[0].parties[0].publicKey)
        #expect(membership.notary(named: "O=Notary, L=London, C=GB")?.addresses == ["grpc://127.0.0.1:10000"])
    }

    @Test func everyRuleIsChecked() {
        var bad = network()
        bad.version = 0
        bad.nodes[1].name = bad.nodes[0].name
        bad.nodes[2].identityKey = bad.nodes[0].identityKey
        bad.nodes[0].addresses = ["127.0.0.1:9000", "ftp://host:21", "grpc://host", "https://host:1", "grpc://u:p@host:1",
                                  "grpc://host:1/x", "grpc://host:1?a=1", "grpc://host:1#f", "grpc://host:1/"]
        bad.nodes[1].parties[0].publicKey = "not a key"
        bad.nodes[2].parties = []
        bad.notaries[0].addresses = []
        let problems = bad.problems
        #expect(problems.contains("version must be at least 1, got 0"))
        #expect(problems.contains("node `O=Node 0, L=London, C=GB`: a node has the same name too"))
        #expect(problems.contains("node `O=Node 2, L=London, C=GB`: the key is also node `O=Node 0, L=London, C=GB`'s"))
        #expect(problems.filter { $0.contains("is not an address of the form SCHEME://HOST:PORT") }.count == 8)
        #expect(problems.contains("party `O=Party 1, L=London, C=GB`: `not a key` is not an Ed25519 public key in canonical base64 (32 bytes, padded, unused bits zero)"))
        #expect(problems.contains("node `O=Node 2, L=London, C=GB`: needs at least one party"))
        #expect(problems.contains("notary `O=Notary, L=London, C=GB`: needs at least one address"))
        #expect(throws: MembershipError.self) { try Membership(bad) }
        // A second spelling of a key (the last character's unused bits set) is no key of its own.
        var respelt = network()
        let key = respelt.nodes[0].identityKey
        let last = key.dropLast().last!  // before the `=`
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        respelt.nodes[1].parties[0].publicKey = String(key.dropLast(2)) + String(alphabet[alphabet.firstIndex(of: last)! ^ 1]) + "="
        #expect(PublicKey(base64: respelt.nodes[1].parties[0].publicKey)?.base64 == key, "the same 32 bytes")
        #expect(respelt.problems.contains { $0.hasPrefix("party `O=Party 1, L=London, C=GB`: `") && $0.hasSuffix("is not an Ed25519 public key in canonical base64 (32 bytes, padded, unused bits zero)") })
        // A key of small order (an all-zero placeholder) is refused: anyone can sign for it.
        var weak = network()
        weak.nodes[1].parties[0].publicKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        #expect(weak.problems == ["party `O=Party 1, L=London, C=GB`: `AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=` is a key of small order, "
                                  + "for which signatures can be made without its private key"])
        #expect(NetworkDefinition(version: 1, nodes: [], notaries: []).problems
            == ["nodes: a network needs at least one node", "notaries: a network needs at least one notary"])
    }

    @Test func aFileIsReadStrictly() throws {
        let good = network().json
        #expect(try NetworkDefinition.load(good) == network())
        var object = try #require(try JSONSerialization.jsonObject(with: good) as? [String: Any])
        object["versoin"] = 2
        var nodes = try #require(object["nodes"] as? [[String: Any]])
        nodes[0]["adresses"] = ["https://127.0.0.1:1"]
        object["nodes"] = nodes
        let misspelt = try JSONSerialization.data(withJSONObject: object)
        #expect(throws: MembershipError.invalid(["unknown field `versoin`", "unknown field `nodes[].adresses`"])) {
            try NetworkDefinition.load(misspelt)
        }
        #expect(throws: MembershipError.self) { try NetworkDefinition.load(Data("{\"version\": 1}".utf8)) }
        // A member named twice, or a byte-order mark, was read with the first value winning, or
        // past the mark (found from outside); a missing field is said in words.
        let text = String(decoding: good, as: UTF8.self)
        for bad in [String(text.dropLast()) + #","version":9}"#, "\u{FEFF}" + text] {
            #expect(throws: MembershipError.self) { try NetworkDefinition.load(Data(bad.utf8)) }
        }
        #expect(throws: MembershipError.unreadable("`nodes` is missing")) {
            try NetworkDefinition.load(Data(#"{"version": 1, "notaries": []}"#.utf8))
        }
    }

    @Test func onlyAHigherValidVersionIsTaken() throws {
        let current = try Membership(network(version: 3))
        var next = network(version: 4, nodes: 4)
        next.nodes[0].addresses.append("grpc://127.0.0.1:11020")
        next.nodes.remove(at: 1)
        let (taken, change) = try current.update(to: next)
        #expect(taken.version == 4)
        #expect("\(change)" == "version 3 -> 4; added O=Node 3, L=London, C=GB; removed O=Node 1, L=London, C=GB; changed O=Node 0, L=London, C=GB")
        #expect(throws: MembershipError.notNewer(offered: 3, current: 3)) { try current.update(to: next.withVersion(3)) }
        #expect(throws: MembershipError.notNewer(offered: 2, current: 3)) { try current.update(to: network(version: 2)) }
        var broken = network(version: 5)
        broken.notaries = []
        #expect(throws: MembershipError.invalid(["notaries: a network needs at least one notary"])) { try current.update(to: broken) }
    }
}

extension NetworkDefinition {
    func withVersion(_ version: Int) -> NetworkDefinition {
        var copy = self
        copy.version = version
        return copy
    }
}
