import Foundation

/// An example a DBA can look up: which contact, which column, what it held, and why it is listed.
public struct ValueExample: Codable, Equatable, Sendable {
    public let tenant: String
    public let contactKey: String
    public let column: String
    public let raw: String
    public let detail: String
    /// How many values of the class had this same raw value and reason (nil: one).
    public var occurrences: Int? = nil

    /// " (×3)" when the same value occurred more than once, for the renderers.
    public var occurrencesText: String { (occurrences ?? 1) > 1 ? " (×\(formatCount(occurrences!)))" : "" }

    /// "n/a" three times is one example seen three times, not three examples.
    func sameCase(as other: ValueExample) -> Bool {
        raw == other.raw && detail == other.detail && column == other.column
    }
}

public struct CountWithExamples: Codable, Equatable, Sendable {
    public static let examplesKept = 5

    public var count = 0
    /// Up to `examplesKept` distinct examples, each with how often it occurred.
    public var examples: [ValueExample] = []

    mutating func add(_ example: ValueExample) {
        merge(CountWithExamples(count: 1, examples: [example]))
    }

    /// Adds another count of the same class (a batch's, say): its examples join these, the same case
    /// once with both occurrence counts.
    mutating func merge(_ other: CountWithExamples) {
        count += other.count
        for example in other.examples {
            if let index = examples.firstIndex(where: { $0.sameCase(as: example) }) {
                examples[index].occurrences = (examples[index].occurrences ?? 1) + (example.occurrences ?? 1)
            } else if examples.count < Self.examplesKept {
                examples.append(example)
            }
        }
    }
}

/// One contact before → after: its legacy values and the phone rows that would be written.
public struct ContactSample: Codable, Equatable, Sendable {
    public struct Row: Codable, Equatable, Sendable {
        public let phoneNumber: String
        public let extensionDigits: String?
        public let type: String
        public let isDefault: Bool
        public let displayOrder: Int
    }

    public let tenant: String
    public let contactKey: String
    public let legacyValues: [String: String?]
    public let rows: [Row]
    /// For jobs that write something other than phone rows: what the record looks like after, one line each.
    public var after: [String]? = nil
    /// The anomaly classes this contact shows (why it was chosen).
    public let classes: [String]
}

/// Which records a plan shows before → after: the first record of every class not shown yet (records
/// arrive in key order, so the same data gives the same samples) and the first few plain ones, up to
/// a maximum.
struct SampleSelection<Class: Hashable> {
    private var shownClasses = Set<Class>()
    private var plainShown = 0
    private var shown = 0
    private let plainWanted: Int
    private let maximum: Int

    init(plainWanted: Int = 3, maximum: Int = .max) {
        self.plainWanted = plainWanted
        self.maximum = maximum
    }

    /// Whether to show a record of these classes (a plain record has none); counted as shown when it is.
    mutating func shows(_ classes: some Collection<Class>, isPlain: Bool) -> Bool {
        guard shown < maximum else { return false }
        let plain = isPlain && plainShown < plainWanted
        guard plain || classes.contains(where: { !shownClasses.contains($0) }) else { return false }
        if plain { plainShown += 1 }
        shownClasses.formUnion(classes)
        shown += 1
        return true
    }
}
