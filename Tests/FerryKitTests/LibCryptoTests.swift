import Foundation
import Testing
@testable import FerryKit

@Suite("SHA-256 and random UUIDs through libcrypto")
struct LibCryptoTests {
    @Test func knownDigests() {
        #expect(
            SHA256.hash(data: Data()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hash(data: Data("abc".utf8)).hexString
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// Version 4, the RFC 4122 variant, lowercase, as Foundation and PostgreSQL read them; never repeated,
    /// also across the refill of the drawn bytes (1,024 keys).
    @Test func randomUUIDsAreVersion4AndDistinct() throws {
        var keys = RandomUUIDs()
        var seen = Set<String>()
        for _ in 0..<3000 {
            let key = keys.draw()
            let parsed = try #require(UUID(uuidString: key))
            #expect(parsed.uuidString.lowercased() == key)
            let bytes = Array(key.utf8)
            #expect(bytes.count == 36 && bytes[14] == UInt8(ascii: "4"))
            #expect([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(bytes[19]))
            seen.insert(key)
        }
        #expect(seen.count == 3000)
    }

    @Test func streamingEqualsOneCall() {
        let data = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var hasher = SHA256()
        var offset = 0
        for size in [1, 63, 64, 65, 4096, 100_000] where offset < data.count {
            let end = min(data.count, offset + size)
            hasher.update(data: data[offset..<end])
            offset = end
        }
        hasher.update(data: data[offset...])
        #expect(hasher.finalize() == SHA256.hash(data: data))
    }

    @Test func aMappingsDigestIsSha256sumOfItsFile() throws {
        let path = packageRoot.appendingPathComponent("mappings/phones.yaml").path
        let result = Process()
        result.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        result.arguments = [path]
        let out = Pipe()
        result.standardOutput = out
        try result.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        result.waitUntilExit()
        #expect(try PhonesMapping.load(path: path).sha256 == String(text.prefix(64)))
    }
}
