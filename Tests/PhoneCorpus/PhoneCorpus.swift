import Foundation

/// The multilingual corpus (Tests/Corpus/phones, written by scripts/make-phone-corpus.py): values as
/// people write them in English, German, French, Spanish and Japanese, each with the rows expected
/// from how the case was built. Read by the transform's tests and by the database tests alike.
public enum PhoneCorpus {
    public struct Case: Sendable {
        /// The line in its file (the header is line 1).
        public let line: Int
        public let region: String
        public let value: String
        /// "+E164[ xEXT]|type" per row, " ; " between rows, or "reject[:reason]".
        public let expected: String
        public let note: String
    }

    public static let languages = ["en", "de", "fr", "es", "ja"]

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus/phones")

    public static func cases(_ language: String) throws -> [Case] {
        let text = try String(contentsOf: folder.appendingPathComponent("\(language).tsv"), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).enumerated().dropFirst().map {
            index, line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Case(line: index + 1, region: fields[0], value: fields[1], expected: fields[2], note: fields[3])
        }
    }
}
