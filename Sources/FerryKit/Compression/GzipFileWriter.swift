import CZlib
import Foundation

/// Writes a gzip file as it streams (memory stays flat) and keeps the sha256 of the bytes written,
/// so the file can be checked with `sha256sum -c`. The only code that sees zlib.
public final class GzipFileWriter {
    private var stream = z_stream()
    private let output: OutputFile
    private var hasher = SHA256()
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    public let path: String

    public init(path: String) throws {
        self.path = path
        output = try OutputFile(path: path)
        // windowBits 15 + 16: a gzip header and trailer, not a bare zlib stream.
        let status = deflateInit2_(
            &stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw LedgerError("zlib could not start (\(status))") }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        try pump(flush: Z_NO_FLUSH)
    }

    public func write(_ text: String) throws {
        var copy = text
        try copy.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Finishes the gzip stream, puts the file in place, and writes `path.sha256` beside a regular file
    /// (a pipe or a device has no "beside"). Returns the sha256.
    @discardableResult
    public func finish() throws -> String {
        stream.next_in = nil
        stream.avail_in = 0
        try pump(flush: Z_FINISH)
        deflateEnd(&stream)
        try output.commit()
        let digest = hasher.finalize().hexString
        if output.kind == .atomic {
            let name = URL(fileURLWithPath: path).lastPathComponent
            try OutputFile.write("\(digest)  \(name)\n", to: path + ".sha256")
        }
        return digest
    }

    private func pump(flush: Int32) throws {
        repeat {
            let produced: Int = try buffer.withUnsafeMutableBufferPointer { space in
                stream.next_out = space.baseAddress
                stream.avail_out = uInt(space.count)
                let status = deflate(&stream, flush)
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw LedgerError("zlib failed (\(status)) writing \(path)")
                }
                return space.count - Int(stream.avail_out)
            }
            if produced > 0 {
                let chunk = Data(buffer[0..<produced])
                hasher.update(data: chunk)
                try chunk.withUnsafeBytes { try output.write($0) }
            }
        } while stream.avail_out == 0
    }
}
