import NIOCore

/// Splits a byte stream into ZooKeeper frames: a big-endian 32-bit length, then that many bytes.
/// Sans-I/O: feed it whatever arrived, then take frames until it has no complete one.
struct FrameDecoder {
    /// Frames larger than this are refused (the server's `jute.maxbuffer` is 1 MiB by default).
    var maxFrameSize: Int
    private var buffer: ByteBuffer

    init(maxFrameSize: Int = 4 << 20) {
        self.maxFrameSize = maxFrameSize
        self.buffer = ByteBuffer()
    }

    /// Bytes received but not yet returned as a frame.
    var bufferedBytes: Int { buffer.readableBytes }

    mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        if buffer.readableBytes == 0 {
            buffer = bytes  // the common case: no copy
        } else {
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next complete frame (without its length prefix), or nil when more bytes are needed.
    /// Throws on a negative or oversized length; the stream is then unusable.
    mutating func next() throws(ZooKeeperError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: Int32.self) else {
            return nil
        }
        guard length >= 0 else { throw .protocolError("negative frame length \(length)") }
        guard Int(length) <= maxFrameSize else {
            throw .protocolError("frame of \(length) bytes exceeds the limit of \(maxFrameSize)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let frame = buffer.readSlice(length: Int(length))!
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
        return frame
    }
}

/// Builds one length-prefixed frame.
func makeFrame(allocator: ByteBufferAllocator = ByteBufferAllocator(), _ body: (inout ByteBuffer) -> Void) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 64)
    buffer.writeInteger(Int32(0))
    body(&buffer)
    buffer.setInteger(Int32(buffer.readableBytes - 4), at: buffer.readerIndex, endianness: .big)
    return buffer
}
