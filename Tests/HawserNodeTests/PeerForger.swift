import Foundation
import Flows
import GRDB
import GRPCCore
import GRPCNIOTransportHTTP2
@testable import HawserNode
import HawserCore
import HawserWire
import P2P
import Sessions
import Synchronization

/// An attacker on a `PaymentNetwork`'s wire, for fault runs: until cancelled, it sends a target
/// node, over and over,
/// - **replays**: the messages the target already has in its inbox, delivered again under the
///   real sender node's signature (what anyone who captured the plaintext link could resend);
/// - **forgeries**: an `initiate` of a payment from the sender's party, signed by a key that is not
///   the sender node's (`bad_signature`), from a node outside the network (`not_a_member`), and
///   signed by a third member node that does not host the party it claims to speak for
///   (`forged_sender`).
/// The fault test then proves that none of it changed anything: one responder per real payment,
/// balances exact. The target may be down (killed) at any moment; a call that fails is counted,
/// not thrown.
final class PeerForger: Sendable {
    struct Counts: Sendable, Equatable {
        /// Replayed messages the target answered `accepted` (its inbox already had them).
        var replayed = 0
        /// Forged deliveries refused, by refusal code.
        var refused: [String: Int] = [:]
        /// Forged deliveries the target took: must stay zero.
        var forgedTaken = 0
        /// Calls that failed (the target down or restarting).
        var unanswered = 0
    }

    private let network: PaymentNetwork
    private let target: String
    private let sender: String
    private let third: String
    private let counts = Mutex(Counts())

    /// Replays what `sender` sent `target`, and forges messages "from" `sender`'s party, some signed
    /// by `third`'s node (a member that does not host that party).
    init(_ network: PaymentNetwork, target: String, sender: String, third: String) {
        self.network = network
        self.target = target
        self.sender = sender
        self.third = third
    }

    var seen: Counts { counts.withLock { $0 } }

    /// Runs until cancelled.
    func run() async throws {
        let node = try NodeConfiguration.load(network.path + "/\(target)/node.json")
        guard let port = node.network?.listen.port else { throw SetUpFailed("\(target) is not a member node") }
        let senderKey = try KeyFile.load(network.path + "/\(sender)/identity.key")
        let thirdKey = try KeyFile.load(network.path + "/\(third)/identity.key")
        let database = network.path + "/\(target)/\(node.dataDirectory)/node.sqlite"
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            let peer = Hawser_P2p_V1_Peer.Client(wrapping: client)
            var round = 0
            while !Task.isCancelled {
                round += 1
                let forged = SessionMessage(session: "forged-\(round)/0", sender: network.party(sender), recipient: network.party(target),
                                            sequence: 1, kind: .initiate, initiator: .init(flowName: "MoveTokens", version: 1)).encoded()
                let now = SystemFlowClock().now()
                // (The inbox may be empty yet, or unreadable for a moment while the node restarts.)
                let replayed = (try? Self.inbox(database)) ?? []
                var deliveries: [(Hawser_P2p_V1_SignedDelivery, replay: Bool)] = [
                    (DeliverySigning.sign([forged], from: senderKey.name, to: node.name, at: now, with: SigningKey()), false),
                    (DeliverySigning.sign([forged], from: "O=Mallory Node, L=London, C=GB", to: node.name, at: now, with: SigningKey()), false),
                    (DeliverySigning.sign([forged], from: thirdKey.name, to: node.name, at: now, with: thirdKey.key), false),
                ]
                if !replayed.isEmpty {
                    deliveries.append((DeliverySigning.sign(replayed, from: senderKey.name, to: node.name, at: now, with: senderKey.key), true))
                }
                for (delivery, replay) in deliveries where !Task.isCancelled {
                    var options = CallOptions.defaults
                    options.timeout = .seconds(2)
                    let reply = try? await peer.deliver(delivery, options: options)
                    counts.withLock { counts in
                        guard let reply else { return counts.unanswered += 1 }
                        if replay {
                            counts.replayed += reply.answers.filter(\.accepted).count
                        } else if reply.hasRefused {
                            counts.refused[reply.refused.code, default: 0] += 1
                        } else {
                            counts.forgedTaken += reply.answers.filter(\.accepted).count
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            client.beginGracefulShutdown()
        }
    }

    /// Up to 32 messages the target's inbox holds (read-only; the node may be writing meanwhile).
    private static func inbox(_ path: String) throws -> [[UInt8]] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return try queue.read { db in
            try Data.fetchAll(db, sql: "SELECT body FROM inbox ORDER BY random() LIMIT 32").map { [UInt8]($0) }
        }
    }
}
