/// The words that may stand next to a phone number in a legacy field, and what each means.
/// Letters of these words must never reach libphonenumber, which would read them as digits.
public struct PhoneLabels: Sendable {
    public enum Meaning: Equatable, Sendable {
        /// "Tel", "Phone": says nothing about the type.
        case generic
        case type(PhoneType)
        /// An extension word libphonenumber knows ("ext", "x"): left in place for it.
        case libraryExtension
        /// An extension word libphonenumber does not know ("Durchwahl", "poste"): rewritten as "ext.".
        case localExtension
        /// A word that joins two numbers ("or", "ou").
        case conjunction
    }

    private var meanings: [String: Meaning]

    public static let standard = PhoneLabels(meanings: standardMeanings)

    public init(meanings: [String: Meaning]) {
        self.meanings = [:]
        for (word, meaning) in meanings { self.meanings[Self.key(word)] = meaning }
    }

    /// Adds or overrides words, e.g. from a mapping file: `pager: Pager` (custom), `handy: mobile`.
    public func adding(_ extra: [String: Meaning]) -> PhoneLabels {
        var copy = self
        for (word, meaning) in extra { copy.meanings[Self.key(word)] = meaning }
        return copy
    }

    public func meaning(of word: some StringProtocol) -> Meaning? {
        meanings[Self.key(word)]
    }

    /// Whether a word standing alone between two numbers joins them ("or", "ou", the Spanish "o"):
    /// also words that elsewhere are labels ("o" is office as "O:").
    public func joins(_ word: some StringProtocol) -> Bool {
        meaning(of: word) == .conjunction || Self.joiningWords.contains(Self.key(word))
    }

    private static let joiningWords: Set<String> = [
        "or", "ou", "oder", "o", "y", "u", "and", "und", "et", "e", "oppure", "of", "eller", "または", "又は",
    ]

    static func key(_ word: some StringProtocol) -> String {
        String(word).lowercased().trimmingWhitespace()
    }

    private static let standardMeanings: [String: Meaning] = {
        var table: [String: Meaning] = [:]
        for word in [
            "tel", "tél", "tele", "telephone", "téléphone", "telefon", "telefone", "teléfono", "telefono",
            "phone", "ph", "fon", "fone", "nr", "no", "num", "number", "nummer", "numéro",
            "電話", "电话", "tel-no", "t", "telefonnummer", "rufnummer",
        ] {
            table[word] = .generic
        }
        for word in [
            "mobile", "mob", "mobil", "cell", "cellular", "cellphone", "cel", "celular", "handy", "portable",
            "móvil", "movil", "gsm", "携帯", "m", "c", "port", "mobiltelefon", "mobilnummer", "handynummer",
            "mobilfunk", "funk", "natel", "cellulaire", "携帯電話", "ケータイ",
        ] {
            table[word] = .type(.canonical(.mobile))
        }
        for word in [
            "home", "h", "privat", "private", "priv", "residence", "res", "casa", "domicile", "maison", "zuhause",
        ] {
            table[word] = .type(.canonical(.home))
        }
        for word in [
            "work", "w", "office", "o", "business", "bus", "büro", "buero", "bureau", "geschäftlich",
            "dienstlich", "trabalho", "travail", "direct", "main",
        ] {
            table[word] = .type(.canonical(.work))
        }
        for word in ["fax", "f", "telefax", "facsimile"] {
            table[word] = .type(.canonical(.fax))
        }
        for word in ["other", "alt", "alternate", "alternative", "sonstige"] {
            table[word] = .type(.canonical(.other))
        }
        for word in ["ext", "extn", "extension", "xt", "x", "int", "anexo"] {
            table[word] = .libraryExtension
        }
        for word in [
            "durchwahl", "dw", "durchw", "app", "apparat", "nebenstelle", "nst", "poste", "ramal", "interno",
            "toestel", "tst", "wewn", "p", "extensión", "内線",
        ] {
            table[word] = .localExtension
        }
        for word in ["or", "ou", "oder", "o", "y", "and", "und", "et", "e"] where table[word] == nil {
            table[word] = .conjunction
        }
        return table
    }()
}
