import Foundation
import HawserTestSupport
import NIOCore
import Testing
@testable import HawserNode

/// The bytes of gRPC request messages a listener takes arriving at once (`GRPCMessageHold`,
/// `grpc.maxMessageBytesInFlight`): each message holds what has arrived of it until it is whole,
/// and bytes that do not fit reset their call.
@Suite(.timeLimit(.minutes(2))) struct GRPCMessageHoldTests {
    static func prefix(_ length: Int) -> [UInt8] {
        [0, UInt8(length >> 24 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
    }

    @Test func aMessageHoldsWhatHasArrivedOfItUntilItIsWhole() {
        let budget = BodyBudget(limit: 1000)
        var call = GRPCMessageHold(budget: budget), other = GRPCMessageHold(budget: budget), third = GRPCMessageHold(budget: budget)
        func feed(_ hold: inout GRPCMessageHold, _ bytes: [UInt8]) -> Bool { hold.data(ByteBuffer(bytes: bytes)) }
        func ones(_ count: Int) -> [UInt8] { [UInt8](repeating: 1, count: count) }
        // A prefix split over two frames, then part of the body: what arrived is held.
        #expect(feed(&call, Array(Self.prefix(600)[..<2])) && call.held == 2)
        #expect(feed(&call, Array(Self.prefix(600)[2...]) + ones(100)) && call.held == 105)
        // A prefix announcing far more than the budget holds its own five bytes: it once held what
        // it announced, so a few such prefixes kept every other call out (found from outside).
        #expect(feed(&other, Self.prefix(4_000_000)) && other.held == 5)
        // Bytes that do not fit beside those arriving reset their call, which then holds nothing.
        #expect(!feed(&other, ones(900)) && other.held == 0)
        #expect(budget.take(895))
        budget.give(895)
        // The first message ends and the next begins in one frame: 105 given back, 6 taken.
        #expect(feed(&call, ones(500) + Self.prefix(300) + [1]) && call.held == 6)
        #expect(feed(&third, Self.prefix(700) + ones(600)) && third.held == 605, "605 fit beside 6")
        // Whole messages hold nothing; a call that ends gives back what it held.
        #expect(feed(&call, ones(299) + Self.prefix(0)) && call.held == 0)
        third.release()
        #expect(budget.take(1000))
    }

    /// Before, a notary buffered every call's message up to `grpc.maxMessageBytes` however many
    /// arrived at once (200 calls of 4 MB on one connection: 649 MB). Now a message that does not
    /// fit beside those arriving resets its call (RST_STREAM), and fits again once they are whole.
    @Test func aMessageThatDoesNotFitBesideThoseArrivingResetsItsCall() async throws {
        let dir = try TemporaryDirectory()
        let grpcPort = try FreePorts.take(1)[0]
        try writeNotaryFiles(in: dir.path) { c in
            c.grpc = GRPCConfiguration()
            c.grpc?.port = grpcPort
            c.grpc?.maxMessageBytes = 16 * 1024
            c.grpc?.maxMessageBytesInFlight = 16 * 1024
        }
        let (notary, _) = try await HawserProcess.notary(config: dir.path + "/hawser.json")
        try await eventually("the gRPC listener bound", timeout: .seconds(30)) { notary.printed.contains("grpc_listening") }
        do {
            let client = try await RawConnection(port: grpcPort)
            let path = "/hawser.v1.Notary/Notarise"
            // Stream 1: a message of 15,000 bytes, of which 14,000 arrive. (Everything this test
            // sends stays within HTTP/2's initial windows, which it does not track.)
            #expect(await client.send(GRPCDeadlineTests.preface + GRPCDeadlineTests.headers(stream: 1, path: path)
                                      + Self.data(stream: 1, Self.prefix(15_000) + [UInt8](repeating: 0xff, count: 14_000))))
            // Stream 3: 2,505 more bytes do not fit in 16,384: it is reset, stream 1 is not.
            #expect(await client.send(GRPCDeadlineTests.headers(stream: 3, path: path)
                                      + Self.data(stream: 3, Self.prefix(3_000) + [UInt8](repeating: 0xff, count: 2_500))))
            var received = try await Self.read(client) { frames in frames.contains { $0.type == 3 && $0.stream == 3 } }
            #expect(GRPCDeadlineTests.frames(in: received).contains { $0.type == 3 && $0.stream == 3 })
            #expect(!GRPCDeadlineTests.frames(in: received).contains { $0.stream == 1 })
            // Stream 1's message ends (bytes that are no request: refused as ever, with an answer).
            #expect(await client.send(Self.data(stream: 1, [UInt8](repeating: 0xff, count: 1_000), endStream: true)))
            received = try await Self.read(client) { frames in frames.contains { $0.type == 1 && $0.stream == 1 } }
            // Then the 2,000 fit: stream 5 is answered, not reset.
            #expect(await client.send(GRPCDeadlineTests.headers(stream: 5, path: path)
                                      + Self.data(stream: 5, Self.prefix(2_000) + [UInt8](repeating: 0xff, count: 2_000), endStream: true)))
            received = try await Self.read(client) { frames in frames.contains { $0.stream == 5 } }
            #expect(GRPCDeadlineTests.frames(in: received).contains { $0.type == 1 && $0.stream == 5 })
            #expect(!GRPCDeadlineTests.frames(in: received).contains { $0.type == 3 && $0.stream == 5 })
        }
        #expect(await notary.terminate(within: .seconds(30)) == 0)
    }

    /// A DATA frame on `stream`.
    static func data(stream: UInt32, _ payload: [UInt8], endStream: Bool = false) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), 0, endStream ? 1 : 0]
            + [UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    /// Reads the server's bytes until `done` holds for the frames in them (20 s at most).
    static func read(_ client: RawConnection, until done: ([(type: UInt8, stream: UInt32, flags: UInt8)]) -> Bool) async throws -> [UInt8] {
        var received = [UInt8]()
        let deadline = ContinuousClock.now + .seconds(20)
        while !done(GRPCDeadlineTests.frames(in: received)), ContinuousClock.now < deadline {
            let (bytes, closed) = await client.read(within: .milliseconds(200))
            received += bytes
            if closed { break }
        }
        return received
    }
}
