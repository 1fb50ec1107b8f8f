import CLibCSV
import Foundation

/// Writes RFC 4180 CSV (CRLF line ends, fields quoted when they need it, quotes doubled by libcsv),
/// buffered, to a file or standard output (see `OutputFile` for how each kind of path is written).
public final class CSVWriter {
    private let output: OutputFile
    private let dialect: CSVDialect
    private var buffer: [UInt8] = []
    private var scratch: [UInt8] = []
    public private(set) var rowsWritten = 0

    /// `path` nil or "-" writes to standard output.
    public init(path: String?, dialect: CSVDialect = CSVDialect()) throws {
        self.dialect = dialect
        output = try OutputFile(path: path ?? "-")
        buffer.reserveCapacity(1 << 16)
    }

    public func writeRow(_ fields: [String?]) throws {
        try writeRow(fields.map { $0.map { Array($0.utf8)[...] } })
    }

    /// Fields as bytes, written as they are (a reject file keeps the input's own bytes). nil is an empty field.
    public func writeRow(_ fields: [ArraySlice<UInt8>?]) throws {
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.append(dialect.delimiter) }
            guard let field, !field.isEmpty else { continue }
            if needsQuotes(field) {
                // csv_write2 quotes and doubles; it needs at most 2n+2 bytes.
                scratch = [UInt8](repeating: 0, count: field.count * 2 + 2)
                let written = field.withUnsafeBytes { source in
                    scratch.withUnsafeMutableBytes { destination in
                        csv_write2(
                            destination.baseAddress, destination.count, source.baseAddress, source.count, dialect.quote)
                    }
                }
                buffer.append(contentsOf: scratch[..<written])
            } else {
                buffer.append(contentsOf: field)
            }
        }
        buffer.append(contentsOf: [0x0D, 0x0A])
        rowsWritten += 1
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func needsQuotes(_ field: ArraySlice<UInt8>) -> Bool {
        // Leading or trailing spaces are quoted too: many readers trim them otherwise.
        field.first == 0x20 || field.last == 0x20 || field.first == 0x09 || field.last == 0x09
            || field.contains { $0 == dialect.delimiter || $0 == dialect.quote || $0 == 0x0A || $0 == 0x0D }
    }

    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try output.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and puts the file in place.
    public func close() throws {
        try flush()
        try output.commit()
    }
}
