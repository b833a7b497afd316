import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to a server on 127.0.0.1, to send what no HTTP client sends (a head
/// byte by byte, a body that stalls or is cut short) and to see exactly when the server closes.
/// Every call blocks for a bounded time, so each runs on a thread of its own: a blocked thread of
/// Swift's small shared pool could hold up the very server under test.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    init(port: Int) async throws {
        fd = try await Self.blocking {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw RawConnectionError("socket: errno \(errno)") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else {
                Glibc.close(fd)
                throw RawConnectionError("connect: errno \(errno)")
            }
            return fd
        }
    }

    deinit { Glibc.close(fd) }

    enum WriteOutcome { case sent, refused, timedOut }

    /// Sends `bytes` within `within`: `refused` when the connection refuses them because the server
    /// closed it (EPIPE, ECONNRESET), `timedOut` when the server stopped taking them.
    func write(_ bytes: [UInt8], within: Duration = .seconds(10)) async -> WriteOutcome {
        await Self.blocking { [fd] in
            var sent = 0
            let deadline = ContinuousClock.now + within
            while sent < bytes.count {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&poller, 1, Self.millis(until: deadline)) > 0 else { return .timedOut }
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { continue }
                guard n > 0 else { return .refused }
                sent += n
            }
            return .sent
        }
    }

    /// Sends `bytes`; false if they were refused or not taken within `within`.
    func send(_ bytes: [UInt8], within: Duration = .seconds(10)) async -> Bool { await write(bytes, within: within) == .sent }

    func send(_ text: String) async -> Bool { await send(Array(text.utf8)) }

    /// Reads what arrives within `within`; `closed` when the server ended the stream (EOF or reset).
    func read(within: Duration) async -> (bytes: [UInt8], closed: Bool) {
        await Self.blocking { [fd] in
            var out = [UInt8]()
            let deadline = ContinuousClock.now + within
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, Self.millis(until: deadline)) > 0 else { return (out, false) }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return (out, true) }
                out += buffer[0..<n]
            }
        }
    }

    /// Reads one whole response (head and a Content-Length body), or what came before `within`.
    func readResponse(within: Duration = .seconds(10)) async -> String {
        await Self.blocking { [fd] in
            var out = [UInt8]()
            let deadline = ContinuousClock.now + within
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !Self.isComplete(out) {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, Self.millis(until: deadline)) > 0 else { break }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { break }
                out += buffer[0..<n]
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Ends the client's side of the stream (FIN), keeping the server's side open for its answer.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Ends both sides, as a close does; the descriptor itself is released when this is.
    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    private static func isComplete(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<end.lowerBound].lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return true }
        return text.utf8.count - text[..<end.upperBound].utf8.count >= length
    }

    private static func millis(until deadline: ContinuousClock.Instant) -> Int32 {
        let left = deadline - .now
        return max(0, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
    }

    private static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    private static func blocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }
}

struct RawConnectionError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
