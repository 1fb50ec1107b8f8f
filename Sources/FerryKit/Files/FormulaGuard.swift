/// Spreadsheet programs run a cell that starts with = + - @ (or a tab or CR that hides one) as a
/// formula. Free-text cells get a leading ' on export; the import takes that ' off again, so a round
/// trip is exact. Phone columns hold E.164 and are never touched.
public enum FormulaGuard {
    static let triggers: Set<Character> = ["=", "+", "-", "@", "\t", "\r"]

    public static func guarded(_ text: String) -> String {
        guard let first = text.first, triggers.contains(first) else { return text }
        return "'" + text
    }

    public static func unguarded(_ text: String) -> String {
        guard text.first == "'", let second = text.dropFirst().first, triggers.contains(second) else { return text }
        return String(text.dropFirst())
    }
}
