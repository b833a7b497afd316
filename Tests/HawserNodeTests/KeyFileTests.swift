import Foundation
import HawserCore
import HawserNode
import HawserTestSupport
import Testing

struct KeyFileTests {
    /// A key others can read is still taken, and said (found from outside: a notary key of mode
    /// 0644 started without a word).
    @Test func aKeyFileOpenToOthersIsTakenAndSaid() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/party.key"
        let key = SigningKey()
        try KeyFile(name: "O=Alice", key: key).save(path)
        #expect(KeyFile.exposure(of: path) == nil, "save writes mode 0600")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let said = try #require(KeyFile.exposure(of: path))
        #expect(said.contains("mode 644") && said.contains("chmod 600"), "\(said)")
        #expect(try KeyFile.load(path).key.publicKey == key.publicKey)
    }
}
