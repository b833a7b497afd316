import NIOCore
import Testing
@testable import ZooKeeper

@Suite(.timeLimit(.minutes(10))) struct JuteTests {
    private func bytes(_ write: (inout ByteBuffer) -> Void) -> [UInt8] {
        var buffer = ByteBuffer()
        write(&buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func primitivesUseBigEndianAndMinusOneForNull() {
        #expect(bytes { $0.writeJuteInt(0x0102_0304) } == [1, 2, 3, 4])
        #expect(bytes { $0.writeJuteLong(-2) } == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE])
        #expect(bytes { $0.writeJuteBool(true) } == [1])
        #expect(bytes { $0.writeJuteBuffer(nil) } == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(bytes { $0.writeJuteBuffer([9, 8]) } == [0, 0, 0, 2, 9, 8])
        #expect(bytes { $0.writeJuteString("/a") } == [0, 0, 0, 2, 0x2F, 0x61])
        #expect(bytes { $0.writeJuteString("é") } == [0, 0, 0, 2, 0xC3, 0xA9])
        #expect(bytes { $0.writeJuteVector(["x"]) { $0.writeJuteString($1) } } == [0, 0, 0, 1, 0, 0, 0, 1, 0x78])
    }

    @Test func readingNullsAndTruncation() throws {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try buffer.readJuteBuffer() == nil)
        #expect(try buffer.readJuteString() == nil)
        var truncated = ByteBuffer(bytes: [0, 0, 0, 5, 1, 2])
        #expect(throws: JuteDecodingError.truncated) { try truncated.readJuteBuffer() }
        var shortInt = ByteBuffer(bytes: [0, 0, 1])
        #expect(throws: JuteDecodingError.truncated) { try shortInt.readJuteInt() }
        // A vector claiming a billion elements in a few bytes is refused before allocating.
        var hugeVector = ByteBuffer(bytes: [0x40, 0, 0, 0, 1, 2, 3])
        #expect(throws: JuteDecodingError.truncated) { try hugeVector.readJuteVector { try $0.readJuteInt() } }
    }

    @Test func connectRequestKnownLayout() throws {
        let request = ConnectRequest(lastZxidSeen: 0x11, timeOut: 6000, sessionId: 0x22, passwd: [0xAA, 0xBB], readOnly: false)
        let encoded = bytes { request.encode(into: &$0) }
        #expect(encoded == [
            0, 0, 0, 0,                   // protocolVersion
            0, 0, 0, 0, 0, 0, 0, 0x11,    // lastZxidSeen
            0, 0, 0x17, 0x70,             // timeOut 6000
            0, 0, 0, 0, 0, 0, 0, 0x22,    // sessionId
            0, 0, 0, 2, 0xAA, 0xBB,       // passwd
            0,                            // readOnly
        ])
        var buffer = ByteBuffer(bytes: encoded)
        #expect(try ConnectRequest(from: &buffer) == request)
    }

    @Test func connectResponseWithAndWithoutReadOnlyFlag() throws {
        let response = ConnectResponse(timeOut: 4000, sessionId: 0x0102_0304_0506_0708, passwd: Array(0..<16), readOnly: true)
        var buffer = ByteBuffer()
        response.encode(into: &buffer)
        #expect(buffer.readableBytes == 4 + 4 + 8 + 4 + 16 + 1)
        #expect(try ConnectResponse(from: &buffer) == response)
        // Servers before 3.4 omit readOnly.
        var old = ByteBuffer()
        old.writeJuteInt(0); old.writeJuteInt(4000); old.writeJuteLong(7); old.writeJuteBuffer([1])
        let decoded = try ConnectResponse(from: &old)
        #expect(decoded.sessionId == 7 && decoded.readOnly == false)
    }

    @Test func headersAndStatRoundTrip() throws {
        var buffer = ByteBuffer()
        RequestHeader(xid: -2, op: .ping).encode(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 0, 11])
        #expect(try RequestHeader(from: &buffer) == RequestHeader(xid: -2, type: 11))

        let reply = ReplyHeader(xid: 7, zxid: 0x1_0000_0002, err: -101)
        reply.encode(into: &buffer)
        #expect(buffer.readableBytes == 16)
        #expect(try ReplyHeader(from: &buffer) == reply)

        let stat = Stat(czxid: 1, mzxid: 2, ctime: 3, mtime: 4, version: 5, cversion: 6, aversion: 7,
                        ephemeralOwner: 8, dataLength: 9, numChildren: 10, pzxid: 11)
        stat.encode(into: &buffer)
        #expect(buffer.readableBytes == 68)
        #expect(try Stat(from: &buffer) == stat)
    }

    @Test func aclAndIdRoundTrip() throws {
        let acl = [ACL(permissions: .all, id: .anyone), ACL(permissions: [.read, .write], id: Id(scheme: "digest", id: "u:h="))]
        var buffer = ByteBuffer()
        buffer.writeJuteVector(acl) { $1.encode(into: &$0) }
        #expect(Array(buffer.getBytes(at: 0, length: 8)!) == [0, 0, 0, 2, 0, 0, 0, 31])
        #expect(try buffer.readJuteVector { try ACL(from: &$0) } == acl)
    }

    @Test func watcherEventAndSetWatchesRoundTrip() throws {
        var buffer = ByteBuffer()
        let event = WatcherEvent(type: 3, state: 3, path: "/a/b")
        event.encode(into: &buffer)
        #expect(try WatcherEvent(from: &buffer) == event)
        let setWatches = SetWatches(relativeZxid: 99, dataWatches: ["/d"], existWatches: [], childWatches: ["/c1", "/c2"])
        setWatches.encode(into: &buffer)
        #expect(try SetWatches(from: &buffer) == setWatches)
    }

    @Test func createRequestLayout() {
        var buffer = ByteBuffer()
        Request.create(path: "/n", data: [7], acl: .openUnsafe, mode: .ephemeralSequential).encodeBody(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [
            0, 0, 0, 2, 0x2F, 0x6E,                  // path
            0, 0, 0, 1, 7,                           // data
            0, 0, 0, 1, 0, 0, 0, 31,                 // one ACL, perms ALL
            0, 0, 0, 5, 0x77, 0x6F, 0x72, 0x6C, 0x64, // "world"
            0, 0, 0, 6, 0x61, 0x6E, 0x79, 0x6F, 0x6E, 0x65, // "anyone"
            0, 0, 0, 3,                              // flags: ephemeral sequential
        ])
        #expect(Request.create(path: "/n", data: [], acl: [], mode: .container).opCode == .createContainer)
        #expect(Request.create(path: "/n", data: [], acl: [], mode: .persistent).opCode == .create2)
        #expect(Request.getChildren(path: "/", watch: false).opCode == .getChildren2)
    }

    @Test func setACLRequestLayoutAndReply() throws {
        var buffer = ByteBuffer()
        let request = Request.setACL(path: "/n", acl: [ACL(permissions: [.read, .admin], id: Id(scheme: "digest", id: "u:h="))], version: 4)
        #expect(request.opCode == .setACL && request.paths == ["/n"])
        request.encodeBody(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [
            0, 0, 0, 2, 0x2F, 0x6E,                       // path
            0, 0, 0, 1, 0, 0, 0, 17,                      // one ACL, perms READ|ADMIN
            0, 0, 0, 6, 0x64, 0x69, 0x67, 0x65, 0x73, 0x74, // "digest"
            0, 0, 0, 4, 0x75, 0x3A, 0x68, 0x3D,           // "u:h="
            0, 0, 0, 4,                                   // the ACL version it expects
        ])
        var reply = ByteBuffer()
        Stat(aversion: 5).encode(into: &reply)
        #expect(try request.decodeResponse(from: &reply) == .stat(Stat(aversion: 5)))
    }

    @Test func multiRequestLayoutAndResults() throws {
        var buffer = ByteBuffer()
        Request.multi([.check(path: "/a", version: 3), .delete(path: "/b")]).encodeBody(into: &buffer)
        #expect(try MultiHeader(from: &buffer) == MultiHeader(type: 13, done: false, err: -1))
        #expect(try buffer.readJuteString() == "/a")
        #expect(try buffer.readJuteInt() == 3)
        #expect(try MultiHeader(from: &buffer) == MultiHeader(type: 2, done: false, err: -1))
        #expect(try buffer.readJuteString() == "/b")
        #expect(try buffer.readJuteInt() == -1)
        #expect(try MultiHeader(from: &buffer) == .end)
        #expect(buffer.readableBytes == 0)

        var reply = ByteBuffer()
        MultiHeader(type: 1, done: false, err: 0).encode(into: &reply); reply.writeJuteString("/x")
        MultiHeader(type: 5, done: false, err: 0).encode(into: &reply); Stat(version: 2).encode(into: &reply)
        MultiHeader(type: 2, done: false, err: 0).encode(into: &reply)
        MultiHeader(type: 13, done: false, err: 0).encode(into: &reply)
        MultiHeader(type: -1, done: false, err: -101).encode(into: &reply); reply.writeJuteInt(-101)
        MultiHeader.end.encode(into: &reply)
        #expect(try Request.decodeMultiResults(from: &reply) == [
            .created(path: "/x", stat: nil), .setData(Stat(version: 2)), .deleted, .checked, .error(.noNode),
        ])
    }

    @Test func errorCodesMapBothWays() {
        #expect(ZooKeeperError(code: 0) == nil)
        for error in [ZooKeeperError.noNode, .nodeExists, .badVersion, .notEmpty, .noAuth, .sessionExpired,
                      .connectionLoss, .authFailed, .invalidACL, .noChildrenForEphemerals, .sessionMoved] {
            #expect(ZooKeeperError(code: error.code!) == error)
        }
        #expect(ZooKeeperError(code: -101) == .noNode)
        #expect(ZooKeeperError(code: -112) == .sessionExpired)
        #expect(ZooKeeperError(code: -999) == .unknown(code: -999))
        #expect(ZooKeeperError.closed.code == nil)
    }

    @Test func pathValidation() {
        #expect(isValidPath("/"))
        #expect(isValidPath("/a/b"))
        #expect(!isValidPath(""))
        #expect(!isValidPath("a"))
        #expect(!isValidPath("/a/"))
        #expect(!isValidPath("/a//b"))
        #expect(!isValidPath("/a/./b"))
        #expect(!isValidPath("/a/.."))
        #expect(isValidPath("/queue/", sequential: true))
        #expect(isValidPath("/lock-", sequential: true))
    }

    @Test func connectStringParsing() throws {
        #expect(try ServerAddress.parse(connectString: "127.0.0.1:2181, 127.0.0.1:2182,zk") == [
            ServerAddress(host: "127.0.0.1", port: 2181), ServerAddress(host: "127.0.0.1", port: 2182),
            ServerAddress(host: "zk", port: 2181),
        ])
        #expect(try ServerAddress.parse(connectString: "[::1]:2181") == [ServerAddress(host: "::1", port: 2181)])
        #expect(throws: ZooKeeperError.badArguments) { try ServerAddress.parse(connectString: "") }
        #expect(throws: ZooKeeperError.badArguments) { try ServerAddress.parse(connectString: "h:99999") }
        #expect(throws: ZooKeeperError.badArguments) { try ServerAddress.parse(connectString: "h:1/chroot") }
    }
}

@Suite(.timeLimit(.minutes(10))) struct DigestTests {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test func sha1Vectors() {
        #expect(hex(SHA1.hash([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
            == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(hex(SHA1.hash([UInt8](repeating: 0x61, count: 1_000_000))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func base64Vectors() {
        // RFC 4648 section 10.
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (input, output) in vectors { #expect(Base64.encode(Array(input.utf8)) == output) }
    }

    @Test func digestIdMatchesZooKeeper() {
        // Printed by `java org.apache.zookeeper.server.auth.DigestAuthenticationProvider alice:secret super:admin` (3.8.0).
        #expect(Id.digest(user: "alice", password: "secret") == Id(scheme: "digest", id: "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="))
        #expect(Id.digest(user: "super", password: "admin").id == "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=")
    }
}
