import NIOCore
import Testing
@testable import ZooKeeper

@Suite(.timeLimit(.minutes(10))) struct FrameDecoderTests {
    private func frame(_ body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
    }

    private func drain(_ decoder: inout FrameDecoder) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = try decoder.next() { frames.append(Array(frame.readableBytesView)) }
        return frames
    }

    @Test func splitFramesAreReassembledAtEveryByteBoundary() throws {
        let stream = frame([1, 2, 3]) + frame([]) + frame(Array(0..<200))
        for chunkSize in 1...stream.count {
            var decoder = FrameDecoder()
            var frames: [[UInt8]] = []
            for start in stride(from: 0, to: stream.count, by: chunkSize) {
                decoder.append(ByteBuffer(bytes: stream[start..<min(start + chunkSize, stream.count)]))
                frames += try drain(&decoder)
            }
            #expect(frames == [[1, 2, 3], [], Array(0..<200)], "chunk size \(chunkSize)")
            #expect(decoder.bufferedBytes == 0)
        }
    }

    @Test func coalescedFramesComeOutOneByOne() throws {
        var decoder = FrameDecoder()
        decoder.append(ByteBuffer(bytes: frame([1]) + frame([2, 2]) + frame([3, 3, 3]) + [0, 0]))
        #expect(try drain(&decoder) == [[1], [2, 2], [3, 3, 3]])
        #expect(decoder.bufferedBytes == 2)
        decoder.append(ByteBuffer(bytes: [0, 1, 9]))
        #expect(try drain(&decoder) == [[9]])
    }

    @Test func oversizedFrameIsRefusedBeforeItsBodyArrives() {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        decoder.append(ByteBuffer(bytes: [0, 0, 4, 1]))  // 1025 bytes announced
        #expect(throws: ZooKeeperError.self) { try decoder.next() }
    }

    @Test func garbageIsRefused() {
        var negative = FrameDecoder()
        negative.append(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xF0, 1, 2]))
        #expect(throws: ZooKeeperError.self) { try negative.next() }
        var text = FrameDecoder()
        text.append(ByteBuffer(bytes: Array("HTTP/1.1 400 Bad Request\r\n".utf8)))
        #expect(throws: ZooKeeperError.self) { try text.next() }
    }

    @Test func makeFrameWritesTheLength() {
        let built = makeFrame { $0.writeBytes([5, 6, 7]) }
        #expect(Array(built.readableBytesView) == [0, 0, 0, 3, 5, 6, 7])
    }
}
