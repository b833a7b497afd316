/// What a protobuf message holds, read from its bytes without decoding it. Decoded, an element
/// of a repeated field costs tens of bytes however short it is on the wire (a state ref about
/// 48, 2 bytes when empty; a request several hundred): an 8 MiB batch of empty requests took a
/// notary to 1.6 GB before it could say the batch was too large. The notary, and a node taking
/// peers' deliveries, read these counts first and decode only what is within their limits. Bytes
/// that are not a sequence of protobuf fields give nil.
public enum WireScan {
    /// How many times the fields `numbers` occur at the top level of a message (a repeated
    /// field's elements, one each).
    public static func occurrences(of numbers: Set<Int>, in bytes: UnsafeRawBufferPointer) -> Int? {
        var count = 0
        let read = fields(bytes) { number, _ in if numbers.contains(number) { count += 1 } }
        return read ? count : nil
    }

    /// The state refs (`inputs` and `references`) of a `NotarisationRequest`.
    public static func stateRefs(request bytes: UnsafeRawBufferPointer) -> Int? {
        occurrences(of: [2, 3], in: bytes)
    }

    /// A `StreamedRequest`'s id and the state refs of its request.
    public static func streamed(_ bytes: UnsafeRawBufferPointer) -> (id: UInt64, stateRefs: Int)? {
        var id: UInt64 = 0, refs = 0
        var readable = true
        let read = fields(bytes) { number, value in
            switch (number, value) {
            case (1, .varint(let v)): id = v
            case (2, .bytes(let payload)):
                if let count = stateRefs(request: UnsafeRawBufferPointer(rebasing: bytes[payload])) { refs += count } else { readable = false }
            default: break
            }
        }
        return read && readable ? (id, refs) : nil
    }

    /// Where each request of a `NotarisationBatchRequest` lies in `bytes`, in order.
    public static func requests(batch bytes: UnsafeRawBufferPointer) -> [Range<Int>]? {
        var requests: [Range<Int>] = []
        let read = fields(bytes) { number, value in
            if number == 1, case .bytes(let payload) = value { requests.append(payload) }
        }
        return read ? requests : nil
    }

    /// A field's value, as far as these counts need it.
    enum Value {
        case varint(UInt64)
        /// Where a length-delimited field's bytes lie.
        case bytes(Range<Int>)
        case fixed
    }

    /// Calls `field` with each top-level field's number and value. False if the bytes are not a
    /// sequence of protobuf fields.
    static func fields(_ bytes: UnsafeRawBufferPointer, _ field: (Int, Value) -> Void) -> Bool {
        var at = 0
        while at < bytes.count {
            guard let key = varint(bytes, &at), key >> 3 > 0 else { return false }
            switch key & 7 {
            case 0:
                guard let value = varint(bytes, &at) else { return false }
                field(Int(key >> 3), .varint(value))
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard bytes.count - at >= width else { return false }
                at += width
                field(Int(key >> 3), .fixed)
            case 2:
                guard let length = varint(bytes, &at), length <= UInt64(bytes.count - at) else { return false }
                let end = at + Int(length)
                field(Int(key >> 3), .bytes(at..<end))
                at = end
            default:
                return false  // groups (3, 4) and the unused 6, 7: none of these messages has them
            }
        }
        return true
    }

    private static func varint(_ bytes: UnsafeRawBufferPointer, _ at: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while at < bytes.count, shift < 64 {
            let byte = bytes[at]
            at += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}
