import CLibCSV
import Foundation

/// Delimiter and quote of a CSV file.
public struct CSVDialect: Equatable, Sendable {
    public var delimiter: UInt8
    public var quote: UInt8

    public init(delimiter: UInt8 = UInt8(ascii: ","), quote: UInt8 = UInt8(ascii: "\"")) {
        self.delimiter = delimiter
        self.quote = quote
    }
}

/// One record as it stood in the file: the line it starts on and its fields' bytes, untouched
/// (no trimming, empty stays empty). Bytes are in the field encoding the `TextDecoder` reports.
public struct CSVRecord: Equatable, Sendable {
    public let line: Int
    public let bytes: [UInt8]
    /// Where each field ends in `bytes`; field i spans fieldEnds[i-1] ..< fieldEnds[i].
    public let fieldEnds: [Int]

    public var count: Int { fieldEnds.count }

    public subscript(index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : fieldEnds[index - 1]) ..< fieldEnds[index]]
    }

    public init(line: Int, fields: [[UInt8]]) {
        self.line = line
        var bytes: [UInt8] = [], ends: [Int] = []
        for field in fields {
            bytes += field
            ends.append(bytes.count)
        }
        self.bytes = bytes
        self.fieldEnds = ends
    }

    /// The fields as a reviewer reads them in a report: comma-separated, bytes that are not UTF-8 shown
    /// as U+FFFD, control characters as their Unicode pictures (␀, ␉; PostgreSQL's jsonb refuses a NUL),
    /// cut after 200 characters.
    public var displayText: String {
        let text = (0..<count).map { String(decoding: self[$0], as: UTF8.self) }.joined(separator: ",")
        let visible = String(String.UnicodeScalarView(text.unicodeScalars.prefix(201).map { scalar in
            scalar.value < 0x20 ? Unicode.Scalar(0x2400 + scalar.value)! : scalar.value == 0x7F ? "\u{2421}" : scalar
        }))
        return visible.unicodeScalars.count > 200 ? String(String.UnicodeScalarView(visible.unicodeScalars.prefix(200))) + "…" : visible
    }

    fileprivate init(line: Int, bytes: [UInt8], fieldEnds: [Int]) {
        self.line = line
        self.bytes = bytes
        self.fieldEnds = fieldEnds
    }
}

public enum CSVItem: Equatable, Sendable {
    case record(CSVRecord)
    /// An empty line: counted, never silently skipped.
    case blankLine(line: Int)
}

/// The file is not CSV from `line` on: nothing after it can be trusted, so the whole file is refused.
public struct CSVSyntaxError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int
    public let reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}

/// Streams records out of a CSV file through libcsv in strict mode. Memory stays bounded by one
/// read chunk plus the longest field (itself capped): the file is never held whole.
public final class CSVReader {
    public let path: String
    public let dialect: CSVDialect
    /// The encoding the bytes are read in; UTF-16 is transcoded to UTF-8 before parsing.
    public let encoding: TextEncoding
    public private(set) var bytesRead = 0
    public let fileSize: Int

    private let handle: FileHandle
    private let maxFieldBytes: Int
    private var parser = csv_parser()
    private var decoder: TextDecoder
    private let state = ParseState()
    private var finished = false
    private static let chunkSize = 256 * 1024

    public init(path: String, dialect: CSVDialect = CSVDialect(), encoding: TextEncoding? = nil,
                maxFieldBytes: Int = 1 << 20) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CSVSyntaxError(file: path, line: 0, reason: "cannot open the file for reading")
        }
        self.path = path
        self.handle = handle
        self.dialect = dialect
        self.maxFieldBytes = maxFieldBytes
        fileSize = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0)
        // The first bytes decide: a byte-order mark wins over the declared encoding.
        let head = try handle.read(upToCount: 4) ?? Data()
        try handle.seek(toOffset: 0)
        decoder = TextDecoder(declared: encoding, head: [UInt8](head))
        self.encoding = decoder.encoding
        guard csv_init(&parser, UInt8(CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL)) == 0 else {
            throw CSVSyntaxError(file: path, line: 0, reason: "libcsv could not start")
        }
        csv_set_delim(&parser, dialect.delimiter)
        csv_set_quote(&parser, dialect.quote)
        // Spaces are data: libcsv trims spaces and tabs around unquoted fields unless told otherwise.
        csv_set_space_func(&parser) { _ in 0 }
    }

    deinit {
        csv_free(&parser)
        try? handle.close()
    }

    /// The next record or blank line, nil at the end of the file.
    public func next() throws -> CSVItem? {
        while state.ready.isEmpty {
            if finished { return nil }
            try feed()
        }
        return state.ready.removeFirst()
    }

    private func feed() throws {
        let context = Unmanaged.passUnretained(state).toOpaque()
        guard let chunk = try handle.read(upToCount: Self.chunkSize), !chunk.isEmpty else {
            let rest = decoder.decode([], final: true)
            if !rest.isEmpty { try parse(rest, context: context) }
            let status = csv_fini(&parser, CSVReader.fieldEnded, CSVReader.recordEnded, context)
            finished = true
            if status != 0 {
                throw CSVSyntaxError(file: path, line: state.recordLine,
                                     reason: "a quoted field opened on this line is never closed (unbalanced quote; the file ends inside it)")
            }
            return
        }
        bytesRead += chunk.count
        try parse(decoder.decode([UInt8](chunk), final: false), context: context)
        if csv_get_buffer_size(&parser) > maxFieldBytes {
            throw CSVSyntaxError(file: path, line: state.recordLine,
                                 reason: "a field starting on this line is longer than \(maxFieldBytes / 1024) KiB; most likely a quote opened here is never closed")
        }
    }

    private func parse(_ bytes: [UInt8], context: UnsafeMutableRawPointer) throws {
        let parsed = bytes.withUnsafeBytes { buffer in
            csv_parse(&parser, buffer.baseAddress, buffer.count, CSVReader.fieldEnded, CSVReader.recordEnded, context)
        }
        if parsed != bytes.count {
            let reason = csv_error(&parser) == CSV_EPARSE
                ? "malformed quoting: a quote inside a quoted field must be doubled, and a closing quote must be followed by the delimiter or a line end"
                : String(cString: csv_strerror(csv_error(&parser)))
            throw CSVSyntaxError(file: path, line: state.recordLine, reason: "in the record starting on this line: " + reason)
        }
    }

    private static let fieldEnded: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void = { data, length, context in
        let state = Unmanaged<ParseState>.fromOpaque(context!).takeUnretainedValue()
        if let data, length > 0 {
            state.append(UnsafeRawBufferPointer(start: data, count: length))
        }
        state.fieldEnds.append(state.bytes.count)
    }

    private static let recordEnded: @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void = { terminator, context in
        Unmanaged<ParseState>.fromOpaque(context!).takeUnretainedValue().endRecord(terminator: terminator)
    }
}

/// What the libcsv callbacks build up, and the line arithmetic: a record's line is where it starts,
/// whatever line breaks its quoted fields hold; CRLF is one line end, a bare CR or LF is one too.
private final class ParseState {
    var bytes: [UInt8] = []
    var fieldEnds: [Int] = []
    var ready: [CSVItem] = []
    /// The line the record being read started on.
    var recordLine = 1
    private var breaksInFields = 0
    private var lastTerminator: Int32 = -1

    func append(_ buffer: UnsafeRawBufferPointer) {
        var previous: UInt8 = 0
        for byte in buffer {
            if byte == 0x0A, previous != 0x0D { breaksInFields += 1 }
            if byte == 0x0D { breaksInFields += 1 }
            previous = byte
        }
        bytes.append(contentsOf: buffer)
    }

    func endRecord(terminator: Int32) {
        defer { lastTerminator = terminator }
        if fieldEnds.isEmpty {
            // libcsv reports the LF of a CRLF as an empty row of its own.
            if terminator == 0x0A, lastTerminator == 0x0D { return }
            ready.append(.blankLine(line: recordLine))
            recordLine += 1
            return
        }
        // The record gets exact-size copies and the scratch buffers stay the parser's alone. Handing
        // the scratch over made `removeAll(keepingCapacity:)` allocate a new one at least as large for
        // every record, and malloc's rounding let that size creep up: after a million rows each
        // 170-byte record held an 888-byte buffer, so memory grew with the file. (`Array(bytes[...])`
        // is no copy: a slice of the whole array hands back the same buffer.)
        let copied = CSVRecord(line: recordLine, bytes: bytes.withUnsafeBufferPointer { Array($0) },
                               fieldEnds: fieldEnds.withUnsafeBufferPointer { Array($0) })
        ready.append(.record(copied))
        recordLine += breaksInFields + 1
        bytes.removeAll(keepingCapacity: true)
        fieldEnds.removeAll(keepingCapacity: true)
        breaksInFields = 0
    }
}
