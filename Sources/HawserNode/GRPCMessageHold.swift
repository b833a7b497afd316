import NIOCore

/// The bytes one gRPC call's request holds of its listener's `BodyBudget`: those of the message
/// still arriving, taken as they arrive and given back once it has arrived whole (the library then
/// hands it on, and it is decoded within limits). The library buffers each message until it is
/// whole, up to `maxMessageBytes`, on every stream of every connection: 200 unary calls of 4 MB on
/// one connection took a notary from 54 to 649 MB, and no bound held over connections. Bytes that
/// do not fit reset their call. What has arrived is counted, not what a prefix announces: a
/// message once took its announced length when its prefix came, so a few prefixes announcing
/// 4 MB, and nothing after them, held the whole budget until the body time-out, and kept every
/// other caller of the port out (found from outside, on the notary's gRPC port and the P2P port,
/// without credentials). Sans I/O.
struct GRPCMessageHold {
    let budget: BodyBudget
    private var messages = GRPCDeadlines.LengthPrefixedRecords.grpcMessages()
    /// What the message now arriving holds (0 between messages).
    private(set) var held = 0

    init(budget: BodyBudget) { self.budget = budget }

    /// A DATA frame of the request. False when its bytes do not fit in the budget (the call must
    /// be reset); it then holds nothing more.
    mutating func data(_ bytes: ByteBuffer) -> Bool {
        _ = messages.consume(bytes)
        let arriving = messages.partialBytes
        if arriving > held {
            guard budget.take(arriving - held) else {
                release()
                return false
            }
        } else {
            budget.give(held - arriving)
        }
        held = arriving
        return true
    }

    /// Gives back what is held (the call ended, or was reset).
    mutating func release() {
        budget.give(held)
        held = 0
    }
}
