import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on loopback that stands in for a node: it answers every request with
/// what `answer` returns (one request per connection, `Connection: close`) and records each one.
public final class FakeNode: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names in lower case.
        public var headers: [String: String]
        public var at: ContinuousClock.Instant
    }

    public struct Answer: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String

        public init(status: Int, headers: [(String, String)] = [], body: String = "") {
            self.status = status
            self.headers = headers
            self.body = body
        }
    }

    public let port: Int
    private let listener: Int32
    private final class Log: Sendable {
        let requests = Mutex<[Request]>([])
    }
    private let log = Log()

    public init(answer: @escaping @Sendable (Request) -> Answer) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listener >= 0, bound else { throw FakeNodeError() }
        port = Int(UInt16(bigEndian: address.sin_port))
        self.listener = listener
        Thread { [log] in
            while true {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { return }  // closed by `stop`
                Thread { Self.serve(connection, log: log, answer: answer) }.start()
            }
        }.start()
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var requests: [Request] { log.requests.withLock { $0 } }

    public func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }

    private static func serve(_ connection: Int32, log: Log, answer: (Request) -> Answer) {
        defer { close(connection) }
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var head: String?
        while head == nil {
            let count = read(connection, &buffer, buffer.count)
            guard count > 0 else { return }
            received += buffer[..<count]
            if let end = String(decoding: received, as: UTF8.self).range(of: "\r\n\r\n") {
                head = String(String(decoding: received, as: UTF8.self)[..<end.lowerBound])
            }
        }
        let lines = head!.components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = Request(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers, at: .now)
        log.requests.withLock { $0.append(request) }
        let reply = answer(request)
        var text = "HTTP/1.1 \(reply.status) Fake\r\nContent-Length: \(reply.body.utf8.count)\r\nConnection: close\r\n"
        for (name, value) in reply.headers { text += "\(name): \(value)\r\n" }
        text += "\r\n" + reply.body
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
    }
}

public struct FakeNodeError: Error {}
