import Foundation
import Glibc

/// A TCP proxy in front of the test cluster that passes every session through, except that it drops
/// one client's connection at the worst moment, once, in one of the sessions whose startup names an
/// application matching `application`. Clients reach it through `environment` (without TLS, so that
/// the proxy can read the protocol).
final class ConnectionDroppingProxy: @unchecked Sendable {
    enum Fault {
        /// The server's report that a statement completed, the `occurrence`-th whose command tag starts
        /// with `tag` (`COMMIT`, `INSERT`), does not reach the client, whose connection is closed instead,
        /// and the server's with it: the statement took effect; the client cannot know.
        case replyLost(tag: String, occurrence: Int)
        /// The client's first message containing `text` never reaches the server, and the client's
        /// connection is closed while the server's stays open, as after a network drop that sent nothing:
        /// the server's session waits, its transaction still open, until the proxy closes.
        case requestLost(containing: String)
    }

    let port: Int
    private let listener: Int32
    private let application: NSRegularExpression
    private let fault: Fault
    /// Text the client must have sent in a session before the fault can happen in it (a statement of its).
    private let after: String?
    private let upstreamPort: Int
    private let lock = NSLock()
    private var repliesSeen = 0
    private var heldServers: [Int32] = []
    /// Whether the fault happened.
    let dropped = Flag()

    /// PG* variables that send a client through the proxy.
    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["PGHOST"] = "127.0.0.1"
        environment["PGPORT"] = String(port)
        environment["PGSSLMODE"] = "disable"
        environment["PGGSSENCMODE"] = "disable"
        return environment
    }

    init(application pattern: String, _ fault: Fault, after: String? = nil) throws {
        application = try NSRegularExpression(pattern: pattern)
        self.fault = fault
        self.after = after
        upstreamPort = Int(ProcessInfo.processInfo.environment["PGPORT"] ?? "5432") ?? 5432
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listening, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listening, 64) == 0 else { throw TestSetupError("proxy: cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        listener = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listening, nil, nil)
                if client < 0 { return }
                Thread.detachNewThread { self.serve(client) }
            }
        }
    }

    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for server in lock.withLock({ heldServers }) {
            shutdown(server, Int32(SHUT_RDWR))
            Glibc.close(server)
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func serve(_ client: Int32) {
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(client)
            Glibc.close(server)
            return
        }
        var serverHeld = false
        defer {
            Glibc.close(client)
            if !serverHeld {
                shutdown(server, Int32(SHUT_RDWR))
                Glibc.close(server)
            }
        }
        // Client to server: the startup packet (no type byte) names the application; then typed messages.
        guard let startup = Self.readMessage(client, typed: false), Self.writeAll(server, startup) else { return }
        let parameters = startup.dropFirst(8).split(separator: 0, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        var target = false
        if let index = parameters.firstIndex(of: "application_name"), index + 1 < parameters.count {
            let name = parameters[index + 1]
            if application.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil {
                target = true
            }
        }
        let armed = Flag()
        if target, after == nil { armed.set() }
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self, target] in
            // Server to client, message by message, until the chosen reply: the server has done what it
            // reports, and the client gets a closed connection instead.
            while let message = Self.readMessage(server, typed: true) {
                if target, armed.value, case .replyLost(let tag, let occurrence) = fault,
                    message[0] == UInt8(ascii: "C"),
                    message.dropFirst(5).starts(with: Array(tag.utf8))
                {
                    let seen = lock.withLock {
                        repliesSeen += 1
                        return repliesSeen
                    }
                    if seen == occurrence {
                        dropped.set()
                        shutdown(server, Int32(SHUT_RDWR))
                        break
                    }
                }
                guard Self.writeAll(client, message) else { break }
            }
            shutdown(client, Int32(SHUT_RDWR))
            done.signal()
        }
        while let message = Self.readMessage(client, typed: true) {
            if target, let after, !armed.value, message.firstRange(of: Array(after.utf8)) != nil { armed.set() }
            if target, armed.value, case .requestLost(let text) = fault, !dropped.value,
                message.firstRange(of: Array(text.utf8)) != nil
            {
                dropped.set()
                serverHeld = true
                lock.withLock { heldServers.append(server) }
                break
            }
            guard Self.writeAll(server, message) else { break }
        }
        if !serverHeld { shutdown(server, Int32(SHUT_RDWR)) }
        shutdown(client, Int32(SHUT_RDWR))
        done.wait()
    }

    /// One protocol message: a type byte (when `typed`), then a length that counts itself.
    private static func readMessage(_ socket: Int32, typed: Bool) -> [UInt8]? {
        let header = typed ? 5 : 4
        guard let head = readExactly(socket, header) else { return nil }
        let length = head.suffix(4).reduce(0) { $0 << 8 | Int($1) }
        guard length >= 4, let body = readExactly(socket, length - 4) else { return nil }
        return head + body
    }

    private static func readExactly(_ socket: Int32, _ count: Int) -> [UInt8]? {
        if count == 0 { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { read(socket, $0.baseAddress! + done, count - done) }
            if got <= 0 { return nil }
            done += got
        }
        return bytes
    }

    private static func writeAll(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let wrote = bytes.withUnsafeBytes {
                send(socket, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            }
            if wrote <= 0 { return false }
            done += wrote
        }
        return true
    }
}
