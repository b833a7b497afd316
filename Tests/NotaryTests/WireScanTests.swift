import Foundation
import HawserCore
import HawserTestSupport
import HawserWire
import Testing

/// The counts the notary reads from a protobuf message before it decodes it agree with what the
/// decoder finds, and bytes that are not protobuf give none.
@Suite struct WireScanTests {
    func request(inputs: Int, references: Int) -> Hawser_V1_NotarisationRequest {
        var ids = Ids(seed: UInt64(inputs * 100 + references))
        var r = Hawser_V1_NotarisationRequest()
        r.txID = Data(ids.hash().bytes)
        r.inputs = (0..<inputs).map { _ in ids.ref().proto }
        r.references = (0..<references).map { _ in ids.ref().proto }
        r.timeWindow.untilMicros = 5
        r.requester.name = "O=Alice"
        r.signature = Data(repeating: 7, count: 64)
        return r
    }

    func scan<T>(_ bytes: [UInt8], _ read: (UnsafeRawBufferPointer) -> T) -> T { bytes.withUnsafeBytes(read) }

    @Test func theStateRefsOfARequestAStreamedRequestAndABatch() throws {
        let one = request(inputs: 3, references: 2)
        #expect(scan(try one.serializedBytes(), WireScan.stateRefs(request:)) == 5)
        #expect(scan(try request(inputs: 0, references: 0).serializedBytes(), WireScan.stateRefs(request:)) == 0)
        var streamed = Hawser_V1_StreamedRequest()
        streamed.id = 300
        streamed.request = one
        let counted = scan(try streamed.serializedBytes(), WireScan.streamed)
        #expect(counted?.id == 300 && counted?.stateRefs == 5)
        // Empty refs: 2 bytes each on the wire, counted all the same.
        let empties = [UInt8]([0x0a, 0x00]) + Array(repeating: [0x12, 0x00], count: 1_000).flatMap { $0 }
        #expect(scan(empties, WireScan.stateRefs(request:)) == 1_000)

        var batch = Hawser_V1_NotarisationBatchRequest()
        batch.requests = [one, request(inputs: 1, references: 0), Hawser_V1_NotarisationRequest()]
        let bytes: [UInt8] = try batch.serializedBytes()
        let ranges = try #require(scan(bytes, WireScan.requests(batch:)))
        let items = try ranges.map { try Hawser_V1_NotarisationRequest(serializedBytes: Array(bytes[$0])) }
        #expect(items == batch.requests)
    }

    @Test func bytesThatAreNotProtobufGiveNoCounts() throws {
        let good: [UInt8] = try request(inputs: 2, references: 0).serializedBytes()
        for bad in [[0xff, 0xff, 0xff], Array(good.dropLast()), [0x12, 0x05, 0x00], [0x0b, 0x00], [0x00]] as [[UInt8]] {
            #expect(scan(bad, WireScan.stateRefs(request:)) == nil, "\(bad.prefix(8))")
            #expect(scan(bad, WireScan.requests(batch:)) == nil, "\(bad.prefix(8))")
        }
        #expect(scan([], WireScan.stateRefs(request:)) == 0)
    }
}
