import NIOCore

/// The bytes one gRPC call's request holds of its listener's `BodyBudget`: each request message
/// takes the length its 5-byte prefix announces when the prefix arrives, and gives it back once
/// the message has arrived whole (the library then hands it on, and it is decoded within limits).
/// The library buffers each message until it is whole, up to `maxMessageBytes`, on every stream
/// of every connection: 200 unary calls of 4 MB on one connection took a notary from 54 to 649 MB,
/// and no bound held over connections. A message that does not fit resets its call. Sans I/O.
struct GRPCMessageHold {
    let budget: BodyBudget
    private var messages = GRPCDeadlines.LengthPrefixedRecords.grpcMessages()
    /// What the message now arriving took (0 between messages).
    private(set) var held = 0

    init(budget: BodyBudget) { self.budget = budget }

    /// A DATA frame of the request. False when a message begun in it does not fit in the budget
    /// (the call must be reset); it then holds nothing more.
    mutating func data(_ bytes: ByteBuffer) -> Bool {
        var fits = true
        _ = messages.consume(bytes) { header in
            guard fits else { return }
            // A message's prefix follows the end of the one before it.
            budget.give(held)
            held = 0
            let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
            if budget.take(length) { held = length } else { fits = false }
        }
        if !messages.isPartial { release() }
        return fits
    }

    /// Gives back what is held (the call ended, or was reset).
    mutating func release() {
        budget.give(held)
        held = 0
    }
}
