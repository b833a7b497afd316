import Flows
import GRPCCore
import HawserCore
import HawserWire
import Logging
import Membership
import Sessions

/// The receiving side of peer-to-peer delivery (docs/p2p.md), served on the node's P2P gRPC
/// listener: it checks each signed delivery against the membership in use (`DeliveryCheck`) and
/// hands the messages of one that passes, in order, to the node's session hub. A refusal is an
/// answer (`refused`); the call fails with UNAVAILABLE when the node cannot take messages now
/// (a standby, an engine stopping, a database that cannot be written), so that the sender tries
/// the node's next address or later.
public struct PeerService: Hawser_P2p_V1_Peer.SimpleServiceProtocol {
    let hub: SessionHub
    let check: DeliveryCheck
    let membership: @Sendable () -> Membership
    let clock: any FlowClock
    let logger: Logger
    let refusals = RefusalLog(interval: .seconds(10))

    public init(hub: SessionHub, check: DeliveryCheck, membership: @escaping @Sendable () -> Membership,
                clock: any FlowClock = SystemFlowClock(), logger: Logger) {
        self.hub = hub
        self.check = check
        self.membership = membership
        self.clock = clock
        self.logger = logger
    }

    public func deliver(request: Hawser_P2p_V1_SignedDelivery, context: ServerContext) async throws -> Hawser_P2p_V1_DeliveryReply {
        var reply = Hawser_P2p_V1_DeliveryReply()
        switch check.check(request, in: membership(), now: clock.now()) {
        case .failure(let refusal):
            if let unlogged = refusals.admit(refusal.code.rawValue, at: .now) {
                logger.warning("refused a peer-to-peer delivery", metadata: ["code": "\(refusal.code.rawValue)", "reason": "\(refusal.message)",
                                                                           "peer": "\(context.remotePeer)",
                                                                           "refusedUnloggedSinceLast": "\(unlogged)"])
            }
            reply.refused.code = refusal.code.rawValue
            reply.refused.message = refusal.message
        case .success(let passed):
            let answers: [DeliveryAnswer]
            do { answers = try await hub.accept(passed.messages, fromAnotherNode: passed.from != check.me) } catch {
                throw RPCError(code: .unavailable, message: "this node cannot take messages now: \(error)")
            }
            reply.answers = answers.map { answer in
                var out = Hawser_P2p_V1_MessageAnswer()
                switch answer {
                case .accepted: out.accepted = true
                case .refused(let error):
                    out.code = error.code.rawValue
                    out.message = error.message
                }
                return out
            }
        }
        return reply
    }
}
