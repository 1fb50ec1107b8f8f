private import CLibCrypto
import Foundation

/// SHA-256 from the system's libcrypto (OpenSSL, which libpq links already): the only code that sees it.
/// Streaming (`update`, then `finalize`) for files, or in one call for a mapping's text.
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

extension Sequence where Element == UInt8 {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}
