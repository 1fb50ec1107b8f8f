private import CLibCrypto
import Foundation

// The system's libcrypto (OpenSSL, which libpq links already): the only code that sees it.

/// SHA-256. Streaming (`update`, then `finalize`) for files, or in one call for a mapping's text.
public struct SHA256 {
    public struct Digest: Equatable, Sendable {
        public let bytes: [UInt8]
        public var hexString: String { bytes.hexString }
    }

    private final class Context {
        let pointer: OpaquePointer

        init() {
            guard let pointer = EVP_MD_CTX_new(), EVP_DigestInit_ex(pointer, EVP_sha256(), nil) == 1 else {
                fatalError("libcrypto could not start a SHA-256 digest")
            }
            self.pointer = pointer
        }

        deinit { EVP_MD_CTX_free(pointer) }
    }

    private let context = Context()

    public init() {}

    public mutating func update(bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context.pointer, base, bytes.count)
    }

    public mutating func update(data: Data) {
        data.withUnsafeBytes { update(bytes: $0) }
    }

    /// The digest of everything given so far. The hasher is spent afterwards.
    public func finalize() -> Digest {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context.pointer, &digest, &length)
        return Digest(bytes: Array(digest.prefix(Int(length))))
    }

    public static func hash(data: Data) -> Digest {
        var hasher = SHA256()
        hasher.update(data: data)
        return hasher.finalize()
    }
}

/// Random version-4 UUIDs in their text form, drawn from libcrypto's CSPRNG a batch at a time: what
/// `gen_random_uuid()` draws, without a system call (or Foundation's open of /dev/urandom) per key.
struct RandomUUIDs {
    private var bytes = [UInt8](repeating: 0, count: 16 * 1024)
    private var next = 16 * 1024
    private static let hexDigits = Array("0123456789abcdef".utf8)

    mutating func draw() -> String {
        if next == bytes.count {
            let drawn = bytes.withUnsafeMutableBytes { RAND_bytes($0.baseAddress, Int32($0.count)) }
            guard drawn == 1 else { fatalError("libcrypto could not draw random bytes") }
            next = 0
        }
        defer { next += 16 }
        return bytes.withUnsafeBufferPointer { all in
            let uuid = all[next..<next + 16]
            return String(unsafeUninitializedCapacity: 36) { text in
                var at = 0
                for (index, var byte) in zip(0..., uuid) {
                    if index == 6 { byte = byte & 0x0f | 0x40 }  // version 4
                    if index == 8 { byte = byte & 0x3f | 0x80 }  // RFC 4122 variant
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    text[at] = Self.hexDigits[Int(byte >> 4)]
                    text[at + 1] = Self.hexDigits[Int(byte & 0x0f)]
                    at += 2
                }
                return at
            }
        }
    }
}

extension Sequence where Element == UInt8 {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
