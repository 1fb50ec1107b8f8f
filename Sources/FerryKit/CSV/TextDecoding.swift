/// The encodings an input file may be declared in (`--encoding`).
public enum TextEncoding: String, CaseIterable, Sendable {
    case utf8 = "utf-8"
    case latin1 = "latin1"
    case windows1252 = "windows-1252"
    case utf16LE = "utf-16le"
    case utf16BE = "utf-16be"

    /// Accepts the usual spellings; plain `utf-16` means "by its byte-order mark, little-endian without one".
    public init?(name: String) {
        switch name.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "utf-8", "utf8": self = .utf8
        case "latin1", "latin-1", "iso-8859-1", "iso8859-1": self = .latin1
        case "windows-1252", "cp1252", "win1252": self = .windows1252
        case "utf-16", "utf16", "utf-16le", "utf16le": self = .utf16LE
        case "utf-16be", "utf16be": self = .utf16BE
        default: return nil
        }
    }

    public static let names = "utf-8, latin1, windows-1252, utf-16 (utf-16le, utf-16be)"

    /// What the fields' bytes are in after the stream is decoded: UTF-16 is turned into UTF-8 first
    /// (libcsv reads bytes), single-byte encodings are converted field by field.
    var fieldEncoding: TextEncoding {
        switch self {
        case .utf16LE, .utf16BE: return .utf8
        default: return self
        }
    }
}

/// The stream side: drops a byte-order mark and turns UTF-16 into UTF-8. A unit that is not valid
/// UTF-16 (a lone surrogate, an odd trailing byte) becomes byte 0xFF, which no UTF-8 field can hold,
/// so the row that contains it is rejected with its line number instead of the whole file.
struct TextDecoder {
    let encoding: TextEncoding
    private var bomToSkip: Int
    private var carry: [UInt8] = []
    private var pendingHighSurrogate: UInt16?

    /// A byte-order mark wins over the declared encoding: no Latin-1 or UTF-8 file starts with one by accident.
    init(declared: TextEncoding?, head: [UInt8]) {
        if head.starts(with: [0xEF, 0xBB, 0xBF]) {
            encoding = .utf8; bomToSkip = 3
        } else if head.starts(with: [0xFF, 0xFE]) {
            encoding = .utf16LE; bomToSkip = 2
        } else if head.starts(with: [0xFE, 0xFF]) {
            encoding = .utf16BE; bomToSkip = 2
        } else {
            encoding = declared ?? .utf8; bomToSkip = 0
        }
    }

    mutating func decode(_ chunk: [UInt8], final: Bool) -> [UInt8] {
        var input = chunk
        if bomToSkip > 0 {
            let skipped = min(bomToSkip, input.count)
            input.removeFirst(skipped)
            bomToSkip -= skipped
        }
        guard encoding == .utf16LE || encoding == .utf16BE else { return input }
        input = carry + input
        carry = []
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        var index = 0
        while index + 1 < input.count {
            let unit =
                encoding == .utf16LE
                ? UInt16(input[index]) | UInt16(input[index + 1]) << 8
                : UInt16(input[index]) << 8 | UInt16(input[index + 1])
            index += 2
            if let high = pendingHighSurrogate {
                pendingHighSurrogate = nil
                if UTF16.isTrailSurrogate(unit) {
                    let scalar = 0x10000 + (UInt32(high - 0xD800) << 10) + UInt32(unit - 0xDC00)
                    appendUTF8(Unicode.Scalar(scalar)!, to: &output)
                    continue
                }
                output.append(0xFF)
            }
            if UTF16.isLeadSurrogate(unit) {
                pendingHighSurrogate = unit
            } else if UTF16.isTrailSurrogate(unit) {
                output.append(0xFF)
            } else {
                appendUTF8(Unicode.Scalar(unit)!, to: &output)
            }
        }
        carry = Array(input[index...])
        if final {
            if pendingHighSurrogate != nil || !carry.isEmpty { output.append(0xFF) }
            pendingHighSurrogate = nil
            carry = []
        }
        return output
    }

    private func appendUTF8(_ scalar: Unicode.Scalar, to output: inout [UInt8]) {
        UTF8.encode(scalar) { output.append($0) }
    }
}

/// Why a field's bytes are not text in the declared encoding.
public struct FieldDecodingError: Error, Equatable, Sendable {
    public let reason: String
}

/// The field side: bytes in the field encoding → String, or the reason it cannot be.
public enum FieldText {
    public static func decode(
        _ bytes: ArraySlice<UInt8>, as encoding: TextEncoding
    ) throws(FieldDecodingError) -> String {
        if bytes.contains(0) {
            throw FieldDecodingError(reason: "contains a NUL byte (0x00), which PostgreSQL text cannot store")
        }
        if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        switch encoding.fieldEncoding {
        case .latin1:
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        case .windows1252:
            var scalars = String.UnicodeScalarView()
            for byte in bytes {
                guard let scalar = windows1252Scalar(byte) else {
                    throw FieldDecodingError(
                        reason: String(format: "byte 0x%02X is not a character in windows-1252", byte))
                }
                scalars.append(scalar)
            }
            return String(scalars)
        default:
            if let text = String(validating: bytes, as: UTF8.self) { return text }
            let offset = firstInvalidUTF8Offset(bytes)
            let byte = bytes[bytes.startIndex + offset]
            let hint =
                byte == 0xFF
                ? " (invalid UTF-16 in the file)" : " (if the file is Latin-1 or windows-1252, say so with --encoding)"
            throw FieldDecodingError(
                reason: String(format: "byte 0x%02X at position %d is not valid UTF-8", byte, offset + 1) + hint)
        }
    }

    private static func firstInvalidUTF8Offset(_ bytes: ArraySlice<UInt8>) -> Int {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput, .error: return min(offset, bytes.count - 1)
            }
        }
    }

    /// windows-1252 differs from Latin-1 only in 0x80...0x9F; five of those bytes mean nothing.
    private static func windows1252Scalar(_ byte: UInt8) -> Unicode.Scalar? {
        guard (0x80...0x9F).contains(byte) else { return Unicode.Scalar(byte) }
        let table: [UInt32] = [
            0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,
            0x017D, 0,
            0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,
            0x017E, 0x0178,
        ]
        let value = table[Int(byte - 0x80)]
        return value == 0 ? nil : Unicode.Scalar(value)
    }
}
