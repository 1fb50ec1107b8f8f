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

/// How much of one record the reader keeps: a hostile or broken file cannot take the import's memory
/// with one endless record. Past a limit the record's fields are dropped as they arrive and the record
/// comes out `oversized`, to be rejected with its line.
public struct CSVLimits: Equatable, Sendable {
    public var maxFieldBytes = 1 << 20
    public var maxFieldsPerRecord = 1_000
    public var maxRecordBytes = 4 << 20

    public init() {}
}

/// One record as it stood in the file: the line it starts on and its fields' bytes, untouched
/// (no trimming, empty stays empty). Bytes are in the field encoding the `TextDecoder` reports.
public struct CSVRecord: Equatable, Sendable {
    public let line: Int
    public let bytes: [UInt8]
    /// Where each field ends in `bytes`; field i spans fieldEnds[i-1] ..< fieldEnds[i].
    public let fieldEnds: [Int]
    /// Why the record's fields were not kept (it exceeded a `CSVLimits` limit); it has no fields then.
    public var oversized: String? = nil

    public var count: Int { fieldEnds.count }

    public subscript(index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : fieldEnds[index - 1])..<fieldEnds[index]]
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
        let visible = String(
            String.UnicodeScalarView(
                text.unicodeScalars.prefix(201).map { scalar in
                    scalar.value < 0x20
                        ? Unicode.Scalar(0x2400 + scalar.value)! : scalar.value == 0x7F ? "\u{2421}" : scalar
                }))
        return visible.unicodeScalars.count > 200
            ? String(String.UnicodeScalarView(visible.unicodeScalars.prefix(200))) + "…" : visible
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
    /// Line 0: the file as a whole, before any line was read.
    public var description: String { line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)" }
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
    private let limits: CSVLimits
    private var parser = csv_parser()
    private var decoder: TextDecoder
    private let state: ParseState
    private var finished = false
    private static let chunkSize = 256 * 1024

    public init(
        path: String, dialect: CSVDialect = CSVDialect(), encoding: TextEncoding? = nil,
        limits: CSVLimits = CSVLimits()
    ) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CSVSyntaxError(file: path, line: 0, reason: "cannot open the file: \(fileErrorReason(path))")
        }
        self.path = path
        self.handle = handle
        self.dialect = dialect
        self.limits = limits
        state = ParseState(limits: limits)
        fileSize = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0)
        // The first bytes decide: a byte-order mark wins over the declared encoding.
        let head = [UInt8](try handle.read(upToCount: 8192) ?? Data())
        try handle.seek(toOffset: 0)
        decoder = TextDecoder(declared: encoding, head: Array(head.prefix(4)))
        self.encoding = decoder.encoding
        if let binary = Self.binaryKind(head, encoding: decoder.encoding) {
            throw CSVSyntaxError(file: path, line: 0, reason: "not a text file: \(binary)")
        }
        guard csv_init(&parser, UInt8(CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL)) == 0 else {
            throw CSVSyntaxError(file: path, line: 0, reason: "libcsv could not start")
        }
        csv_set_delim(&parser, dialect.delimiter)
        csv_set_quote(&parser, dialect.quote)
        // Spaces are data: libcsv trims spaces and tabs around unquoted fields unless told otherwise.
        csv_set_space_func(&parser) { _ in 0 }
    }

    /// What makes the file's first bytes binary data rather than text, if anything: a known file
    /// signature, or NUL bytes in more than a tenth of a sample (UTF-16 text has them by nature).
    static func binaryKind(_ head: [UInt8], encoding: TextEncoding) -> String? {
        let signatures: [([UInt8], String)] = [
            ([0x7F, 0x45, 0x4C, 0x46], "it starts like an ELF executable"), ([0x1F, 0x8B], "it is gzip-compressed"),
            ([0x50, 0x4B, 0x03, 0x04], "it is a ZIP archive (an .xlsx workbook is one: save it as CSV)"),
            (Array("%PDF".utf8), "it is a PDF document"), ([0x89, 0x50, 0x4E, 0x47], "it is a PNG image"),
            ([0xFF, 0xD8, 0xFF], "it is a JPEG image"),
            ([0xD0, 0xCF, 0x11, 0xE0], "it is an old Office document (.xls)"),
        ]
        for (signature, kind) in signatures where head.starts(with: signature) { return kind }
        guard encoding != .utf16LE, encoding != .utf16BE, head.count >= 64 else { return nil }
        let nuls = head.filter { $0 == 0 }.count
        return nuls * 10 > head.count ? "\(nuls) of its first \(head.count) bytes are NUL" : nil
    }

    deinit {
        csv_free(&parser)
        try? handle.close()
    }

    /// The next record or blank line, nil at the end of the file.
    public func next() throws -> CSVItem? {
        while !state.hasReady {
            if finished { return nil }
            try feed()
        }
        return state.takeReady()
    }

    private func feed() throws {
        let context = Unmanaged.passUnretained(state).toOpaque()
        guard let chunk = try handle.read(upToCount: Self.chunkSize), !chunk.isEmpty else {
            let rest = decoder.decode([], final: true)
            if !rest.isEmpty { try parse(rest, context: context) }
            let status = csv_fini(&parser, CSVReader.fieldEnded, CSVReader.recordEnded, context)
            finished = true
            if status != 0 {
                throw CSVSyntaxError(
                    file: path, line: state.recordLine,
                    reason:
                        "a quoted field opened on this line is never closed (unbalanced quote; the file ends inside it)"
                )
            }
            return
        }
        bytesRead += chunk.count
        try parse(decoder.decode([UInt8](chunk), final: false), context: context)
        if csv_get_buffer_size(&parser) > limits.maxFieldBytes {
            throw CSVSyntaxError(
                file: path, line: state.recordLine,
                reason:
                    "a field starting on this line is longer than \(limits.maxFieldBytes / 1024) KiB; most likely a quote opened here is never closed"
            )
        }
    }

    private func parse(_ bytes: [UInt8], context: UnsafeMutableRawPointer) throws {
        let parsed = bytes.withUnsafeBytes { buffer in
            csv_parse(&parser, buffer.baseAddress, buffer.count, CSVReader.fieldEnded, CSVReader.recordEnded, context)
        }
        if parsed != bytes.count {
            let reason =
                csv_error(&parser) == CSV_EPARSE
                ? "malformed quoting: a quote inside a quoted field must be doubled, and a closing quote must be followed by the delimiter or a line end"
                : String(cString: csv_strerror(csv_error(&parser)))
            throw CSVSyntaxError(
                file: path, line: state.recordLine, reason: "in the record starting on this line: " + reason)
        }
    }

    private static let fieldEnded: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void = {
        data, length, context in
        let state = Unmanaged<ParseState>.fromOpaque(context!).takeUnretainedValue()
        state.endField(
            data.map { UnsafeRawBufferPointer(start: $0, count: length) }
                ?? UnsafeRawBufferPointer(start: nil, count: 0))
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
    /// Items parsed but not yet taken, from `readyHead` on: a queue, so that a chunk of many blank
    /// lines costs time in proportion to them (removing each from the front cost the square).
    private var ready: [CSVItem] = []
    private var readyHead = 0
    /// The line the record being read started on.
    var recordLine = 1
    private var breaksInFields = 0
    private var lastTerminator: Int32 = -1
    private let limits: CSVLimits
    /// Fields and bytes of the current record, also those no longer kept.
    private var fieldCount = 0
    private var byteCount = 0
    private var overflow: String?

    init(limits: CSVLimits) {
        self.limits = limits
    }

    var hasReady: Bool { readyHead < ready.count }

    func takeReady() -> CSVItem {
        let item = ready[readyHead]
        readyHead += 1
        if readyHead == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyHead = 0
        }
        return item
    }

    func endField(_ buffer: UnsafeRawBufferPointer) {
        var previous: UInt8 = 0
        for byte in buffer {
            if byte == 0x0A, previous != 0x0D { breaksInFields += 1 }
            if byte == 0x0D { breaksInFields += 1 }
            previous = byte
        }
        fieldCount += 1
        byteCount += buffer.count
        if overflow == nil {
            if fieldCount > limits.maxFieldsPerRecord {
                overflow = "more than \(formatCount(limits.maxFieldsPerRecord)) fields"
            } else if byteCount > limits.maxRecordBytes {
                overflow = "more than \(formatCount(limits.maxRecordBytes)) bytes"
            }
            if overflow != nil {
                bytes = []
                fieldEnds = []
            }
        }
        guard overflow == nil else { return }
        if buffer.count > 0 { bytes.append(contentsOf: buffer) }
        fieldEnds.append(bytes.count)
    }

    func endRecord(terminator: Int32) {
        defer { lastTerminator = terminator }
        if fieldCount == 0 {
            // libcsv reports the LF of a CRLF as an empty row of its own.
            if terminator == 0x0A, lastTerminator == 0x0D { return }
            ready.append(.blankLine(line: recordLine))
            recordLine += 1
            return
        }
        if let overflow {
            var record = CSVRecord(line: recordLine, fields: [])
            record.oversized =
                "the record has \(overflow) (\(formatCount(fieldCount)) fields, \(formatCount(byteCount)) bytes)"
            ready.append(.record(record))
        } else {
            // The record gets exact-size copies and the scratch buffers stay the parser's alone. Handing
            // the scratch over made `removeAll(keepingCapacity:)` allocate a new one at least as large for
            // every record, and malloc's rounding let that size creep up: after a million rows each
            // 170-byte record held an 888-byte buffer, so memory grew with the file. (`Array(bytes[...])`
            // is no copy: a slice of the whole array hands back the same buffer.)
            ready.append(
                .record(
                    CSVRecord(
                        line: recordLine, bytes: bytes.withUnsafeBufferPointer { Array($0) },
                        fieldEnds: fieldEnds.withUnsafeBufferPointer { Array($0) })))
        }
        recordLine += breaksInFields + 1
        bytes.removeAll(keepingCapacity: overflow == nil)
        fieldEnds.removeAll(keepingCapacity: overflow == nil)
        breaksInFields = 0
        fieldCount = 0
        byteCount = 0
        overflow = nil
    }
}
