import Foundation

extension JSONEncoder {
    /// Sorted keys, so two documents of the same data are the same bytes.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `sorted`, indented for files people read.
    static var prettySorted: JSONEncoder {
        let encoder = JSONEncoder.sorted
        encoder.outputFormatting.insert(.prettyPrinted)
        return encoder
    }
}
