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
