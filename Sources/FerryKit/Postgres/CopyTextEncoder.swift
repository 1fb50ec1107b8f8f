/// Encodes rows in PostgreSQL's COPY text format: tab-separated, `\N` for NULL, and
/// backslash escapes for the characters the format reserves.
public struct CopyTextEncoder {
    public private(set) var bytes: [UInt8] = []

    public init(reservingCapacity capacity: Int = 1 << 16) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func appendRow(_ fields: [String?]) {
        for (index, field) in fields.enumerated() {
            if index > 0 { bytes.append(0x09) }
            guard let field else {
                bytes.append(0x5C); bytes.append(0x4E)  // \N
                continue
            }
            // Most fields hold nothing to escape: copied whole rather than a byte at a time.
            if !field.utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
                bytes.append(contentsOf: field.utf8)
                continue
            }
            for byte in field.utf8 {
                switch byte {
                case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
                case 0x09: bytes.append(0x5C); bytes.append(0x74)
                case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
                case 0x0D: bytes.append(0x5C); bytes.append(0x72)
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(0x0A)
    }

    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }
}

/// Reads one field of COPY text format back: undoes the backslash escapes.
public enum CopyTextDecoder {
    public static func field(_ line: UnsafeRawBufferPointer) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(line.count)
        var escaped = false
        for byte in line {
            if escaped {
                switch byte {
                case 0x6E: bytes.append(0x0A)  // \n
                case 0x74: bytes.append(0x09)  // \t
                case 0x72: bytes.append(0x0D)  // \r
                case 0x62: bytes.append(0x08)  // \b
                case 0x66: bytes.append(0x0C)  // \f
                case 0x76: bytes.append(0x0B)  // \v
                default: bytes.append(byte)
                }
                escaped = false
            } else if byte == 0x5C {
                escaped = true
            } else {
                bytes.append(byte)
            }
        }
        return bytes
    }
}
