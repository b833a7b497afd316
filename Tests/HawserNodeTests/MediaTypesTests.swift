@testable import HawserNode
import Testing

@Suite struct MediaTypesTests {
    @Test func aContentTypesCharsetOtherThanUTF8IsForeign() {
        #expect(MediaTypes.content("application/json") == ("application/json", nil))
        #expect(MediaTypes.content("Application/JSON; Charset=\"UTF-8\"") == ("application/json", nil))
        #expect(MediaTypes.content("application/json;charset=utf-16") == ("application/json", "utf-16"))
        #expect(MediaTypes.content(" application/json\t;\tcharset=latin1 ") == ("application/json", "latin1"))
        #expect(MediaTypes.content(nil) == ("", nil))
    }

    @Test func acceptPrefersByWeight() {
        let protobuf = "application/x-protobuf", json = "application/json"
        #expect(MediaTypes.accept(protobuf, prefers: protobuf, to: json))
        #expect(MediaTypes.accept("application/x-protobuf, application/json", prefers: protobuf, to: json))
        #expect(MediaTypes.accept("application/json;q=0.5, application/x-protobuf", prefers: protobuf, to: json))
        #expect(!MediaTypes.accept("application/x-protobuf;q=0, application/json", prefers: protobuf, to: json))
        #expect(!MediaTypes.accept("application/x-protobuf;q=0", prefers: protobuf, to: json))
        #expect(!MediaTypes.accept("application/json, application/x-protobuf;q=0.5", prefers: protobuf, to: json))
        #expect(!MediaTypes.accept("*/*, application/x-protobuf;q=0.9", prefers: protobuf, to: json))
        #expect(!MediaTypes.accept("*/*", prefers: protobuf, to: json))
        #expect(!MediaTypes.accept(nil, prefers: protobuf, to: json))
    }
}
