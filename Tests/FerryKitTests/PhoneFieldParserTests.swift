import Testing
@testable import FerryKit

/// One legacy value and what ferry must make of it.
struct FieldCase: CustomTestStringConvertible, Sendable {
    let raw: String
    let region: String
    /// (E.164, extension, type hint) for each number expected, in order.
    let numbers: [(String, String?, PhoneType?)]
    let rejection: PhoneRejectionReason?
    let split: Bool

    var testDescription: String { "\"\(raw)\" [\(region)]" }

    static func number(
        _ raw: String, _ region: String, _ e164: String, ext: String? = nil, type: PhoneType? = nil
    ) -> FieldCase {
        FieldCase(raw: raw, region: region, numbers: [(e164, ext, type)], rejection: nil, split: false)
    }

    static func several(_ raw: String, _ region: String, _ numbers: [(String, String?, PhoneType?)]) -> FieldCase {
        FieldCase(raw: raw, region: region, numbers: numbers, rejection: nil, split: true)
    }

    static func rejected(_ raw: String, _ region: String, _ reason: PhoneRejectionReason) -> FieldCase {
        FieldCase(raw: raw, region: region, numbers: [], rejection: reason, split: false)
    }
}

let mobile = PhoneType.canonical(.mobile)
let work = PhoneType.canonical(.work)
let home = PhoneType.canonical(.home)
let fax = PhoneType.canonical(.fax)

let fieldCases: [FieldCase] = [
    // National and international formats
    .number("(650) 253-0000", "US", "+16502530000"),
    .number("650.253.0000", "US", "+16502530000"),
    .number("6502530000", "US", "+16502530000"),
    .number("+1 650 253 0000", "US", "+16502530000"),
    .number("1-650-253-0000", "US", "+16502530000"),
    .number("011 44 20 7946 0958", "US", "+442079460958"),
    .number("020 7946 0958", "GB", "+442079460958"),
    .number("+44 (0)20 7946 0958", "GB", "+442079460958"),
    .number("0044 20 7946 0958", "DE", "+442079460958"),
    .number("07400 123456", "GB", "+447400123456"),
    .number("+49 (0) 30 123456", "DE", "+4930123456"),
    .number("0171 1234567", "DE", "+491711234567"),
    .number("01 23 45 67 89", "FR", "+33123456789"),
    .number("+61 (0) 3 9123 4567", "AU", "+61391234567"),
    .number("(11) 96123-4567", "BR", "+5511961234567"),
    .number("090(1234)5678", "JP", "+819012345678"),
    .number("+86 10 1234 5678", "US", "+861012345678"),
    .number("  650-253-0000  ", "US", "+16502530000"),
    // One number that looks like two: the whole field wins
    .number("030/123456", "DE", "+4930123456"),
    .number("0151/23456789", "DE", "+4915123456789"),
    .number("650 / 253 0000", "US", "+16502530000"),
    // Other scripts and punctuation libphonenumber reads
    .number("０９０１２３４５６７８", "JP", "+819012345678"),
    .number("650‒253‒0000", "US", "+16502530000"),
    .number("📞 650-253-0000", "US", "+16502530000"),
    .number("'6502530000", "US", "+16502530000"),
    .number("=\"+442079460958\"", "GB", "+442079460958"),
    .number("tel:+1-650-253-0000", "US", "+16502530000"),
    .number("tel:650-253-0000;phone-context=+1", "US", "+16502530000"),
    // Extensions
    .number("650-253-0000 x12", "US", "+16502530000", ext: "12"),
    .number("650-253-0000 ext. 5", "US", "+16502530000", ext: "5"),
    .number("650-253-0000;ext=5", "US", "+16502530000", ext: "5"),
    .number("(650) 253-0000 #77", "US", "+16502530000", ext: "77"),
    .number("650-253-0000 (ext 44)", "US", "+16502530000", ext: "44"),
    .number("020 7946 0958 ext. 201", "GB", "+442079460958", ext: "201"),
    .number("022 2345 6789 extn 11", "IN", "+912223456789", ext: "11"),
    // Extension words libphonenumber does not know: never turned into digits
    .number("+49 30 123456 App. 78", "DE", "+4930123456", ext: "78"),
    .number("030 123456 Durchwahl 78", "DE", "+4930123456", ext: "78"),
    .number("+33 1 23 45 67 89 poste 12", "FR", "+33123456789", ext: "12"),
    .number("(11) 2345-6789 ramal 200", "BR", "+551123456789", ext: "200"),
    // Labels and annotations become the type
    .number("650-253-0000 (mobile)", "US", "+16502530000", type: mobile),
    .number("Cell: 650-253-0000", "US", "+16502530000", type: mobile),
    .number("M: 650-253-0000", "US", "+16502530000", type: mobile),
    .number("Fax: 030 123457", "DE", "+4930123457", type: fax),
    .number("fax 030 123457", "DE", "+4930123457", type: fax),
    .number("Tel: +44 (0)20 7946 0958", "GB", "+442079460958"),
    .number("Phone: 650-253-0000", "US", "+16502530000"),
    .number("Tél : 06 12 34 56 78", "FR", "+33612345678"),
    .number("Cel: (11) 96123-4567", "BR", "+5511961234567", type: mobile),
    .number("電話 03-1234-5678", "JP", "+81312345678"),
    .number("650-253-0000 (home)", "US", "+16502530000", type: home),
    .number("Office: 650-253-0000", "US", "+16502530000", type: work),
    .number("Pager: 650 253 0000", "US", "+16502530000", type: .custom("Pager")),
    .number("650-253-0000 (Assistant)", "US", "+16502530000", type: .custom("Assistant")),
    // Vanity numbers: letters standing for digits
    .number("1-800-FLOWERS", "US", "+18003569377"),
    .number("1-800-CALL-NOW", "US", "+18002255669"),
    .number("0800 REVERSE", "GB", "+448007383773"),
    .number("1-800-FLOWERS ext. 12", "US", "+18003569377", ext: "12"),
    // Several numbers in one field
    .several("650-253-0000 / 415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    .several("650-253-0000, 415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    .several("650-253-0000; 415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    .several("650-253-0000 | 415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    .several("650-253-0000 or 415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    .several("650-253-0000\n415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    .several("H: 650-253-0000 W: 415-555-0132", "US", [("+16502530000", nil, home), ("+14155550132", nil, work)]),
    .several(
        "(650) 253-0000 (home), (415) 555-0132 (cell)", "US",
        [("+16502530000", nil, home), ("+14155550132", nil, mobile)]),
    .several("Tel. 030 123456, Fax 030 123457", "DE", [("+4930123456", nil, nil), ("+4930123457", nil, fax)]),
    .several("01 23 45 67 89 ou 06 12 34 56 78", "FR", [("+33123456789", nil, nil), ("+33612345678", nil, nil)]),
    .several("03-1234-5678、090-1234-5678", "JP", [("+81312345678", nil, nil), ("+819012345678", nil, nil)]),
    .several("020 7946 0958 / 07700 900123", "GB", [("+442079460958", nil, nil)]),
    // Rejected, with a reason
    .rejected("", "US", .emptyToken),
    .rejected("   ", "US", .emptyToken),
    .rejected("n/a", "US", .emptyToken),
    .rejected("N/A", "US", .emptyToken),
    .rejected("NULL", "US", .emptyToken),
    .rejected("-", "US", .emptyToken),
    .rejected("???", "US", .emptyToken),
    .rejected("()", "US", .emptyToken),
    .rejected("call me", "US", .notANumber),
    .rejected("call reception", "US", .notANumber),
    .rejected("ask reception", "US", .notANumber),
    .rejected("xxx-xxx-xxxx", "US", .notANumber),
    .rejected("#ERROR!", "US", .notANumber),
    .rejected("6.50253E+09", "US", .notANumber),
    .rejected("000-000-0000", "US", .invalidForRegion),
    .rejected("123-456-7890", "US", .invalidForRegion),
    .rejected("555-555-5555", "US", .invalidForRegion),
    .rejected("07700 900123", "GB", .invalidForRegion),
    .rejected("911", "US", .tooShort),
    .rejected("650-253-000", "US", .tooShort),
    .rejected("+1 650 253 0000 0000", "US", .tooLong),
    .rejected("+882 13 1234 5678", "US", .invalidForRegion),
    .rejected("+0 650 253 0000", "US", .invalidCountryCode),
    .rejected("020 7946 0958", "ZZ", .invalidCountryCode),
    .rejected("650-253-0000 call after 5pm", "US", .unrecognizedText),
    .rejected("sip:+16502530000@example.com", "US", .unrecognizedText),

    // Real data in the tenants' languages (issue 17): a slash after the area code inside one of
    // several numbers, "&" and runs of spaces between numbers, a label after each number.
    .several("030/1234567 ou 0171 2345678", "DE", [("+49301234567", nil, nil), ("+491712345678", nil, nil)]),
    .several("030/1234567 oder 0171/2345678", "DE", [("+49301234567", nil, nil), ("+491712345678", nil, nil)]),
    .several("01 42 68 53 00 & 06 12 34 56 78", "FR", [("+33142685300", nil, nil), ("+33612345678", nil, nil)]),
    .several("020 7946 0018    07911 123456", "GB", [("+442079460018", nil, nil), ("+447911123456", nil, nil)]),
    .several("020 7946 0018\t07911 123456", "GB", [("+442079460018", nil, nil), ("+447911123456", nil, nil)]),
    .several(
        "020 7946 0018 (work) 07911 123456 (mobile)", "GB",
        [("+442079460018", nil, work), ("+447911123456", nil, mobile)]),
    .several(
        "01 42 68 53 00 (bureau) 06 12 34 56 78 (portable)", "FR",
        [("+33142685300", nil, work), ("+33612345678", nil, mobile)]),
    .several("650-253-0000 / 415-555-0132", "US", [("+16502530000", nil, nil), ("+14155550132", nil, nil)]),
    // National extension conventions: DIN 5008's hyphen, French "poste" and "p.".
    .number("(030) 282 53 78-524", "DE", "+49302825378", ext: "524"),
    .number("+49 30 2825378-524", "GB", "+49302825378", ext: "524"),
    .number("01 58858-0", "AT", "+43158858", ext: "0"),
    .number("030-2825378", "DE", "+49302825378"),
    .number("01 42 68 53 00 poste 123", "FR", "+33142685300", ext: "123"),
    .number("01 42 68 53 00 p. 123", "FR", "+33142685300", ext: "123"),
    // Labels in French, German and British usage.
    .number("Port. 06 12 34 56 78", "FR", "+33612345678", type: mobile),
    .number("Portable : 06 12 34 56 78", "FR", "+33612345678", type: mobile),
    .number("Mobiltelefon: 0171 2345678", "DE", "+491712345678", type: mobile),
    .number("Mob: 07911 123456", "GB", "+447911123456", type: mobile),
    .number("T: 020 7946 0018", "GB", "+442079460018"),
    .number("M: 07911 123456", "GB", "+447911123456", type: mobile),
]

@Suite("Phone field parser")
struct PhoneFieldParserTests {
    let parser = PhoneFieldParser()

    @Test(arguments: fieldCases)
    func parsesField(_ example: FieldCase) {
        let result = parser.parse(example.raw, region: example.region)
        #expect(result.numbers.map(\.e164) == example.numbers.map(\.0), "numbers of \(example.raw)")
        #expect(result.numbers.map(\.extensionDigits) == example.numbers.map(\.1), "extensions of \(example.raw)")
        #expect(result.numbers.map(\.typeHint) == example.numbers.map(\.2), "types of \(example.raw)")
        #expect(result.fieldRejection == example.rejection, "rejection of \(example.raw): \(result.rejected)")
        #expect(result.wasSplit == example.split, "split of \(example.raw)")
    }

    @Test func aNorthAmericanNumberOutsideNorthAmericaIsMarkedAmbiguous() {
        let german = parser.parse("702-478-7965", region: "DE")
        #expect(german.numbers.map(\.e164) == ["+497024787965"])
        #expect(german.numbers.first?.alsoReadsAs == "+17024787965")
        // Written the national way, or read in North America, it is not ambiguous.
        #expect(parser.parse("07024 787965", region: "DE").numbers.first?.alsoReadsAs == nil)
        #expect(parser.parse("702-478-7965", region: "US").numbers.first?.alsoReadsAs == nil)
        #expect(parser.parse("030 123 4567", region: "DE").numbers.first?.alsoReadsAs == nil)
    }

    /// Under `accept: possible` a field that is only possible as a whole is not one number when it
    /// splits: its pieces are judged one by one.
    @Test func aWholeFieldThatIsOnlyPossibleIsSplitWhenItCanBe() {
        let value = "0171 123 / 0171 124"
        let whole = PhoneNumberParser.parse(value, defaultRegion: "DE")
        #expect(whole.outcome == .invalidForRegion && whole.isPossible)
        let possible = PhoneFieldParser(acceptance: .possible).parse(value, region: "DE")
        #expect(possible.wasSplit)
        #expect(possible.numbers.map(\.e164) == ["+49171123", "+49171124"])
        #expect(possible.numbers.allSatisfy { $0.possibleOnly })
        let strict = parser.parse(value, region: "DE")
        #expect(strict.numbers.isEmpty && strict.rejected.allSatisfy { $0.reason == .invalidForRegion })
    }

    @Test func annotationLettersNeverBecomeDigits() {
        // libphonenumber alone reads "App" as 277; ferry must not.
        let verdict = PhoneNumberParser.parse("+49 30 123456 App. 78", defaultRegion: "DE")
        #expect(verdict.e164 == "+493012345627778")
        let result = parser.parse("+49 30 123456 App. 78", region: "DE")
        #expect(result.numbers.map(\.e164) == ["+4930123456"])
    }

    @Test func nothingOutsideE164IsEverANumber() {
        // Values fuzzing found stored as numbers outside E.164 (16 and 17 digits).
        for (raw, region) in [
            ("+49 87041009216836", "DE"), ("0049 30 811503 STRASSE", "DE"), ("030/377163 030 746431", "DE"),
        ] {
            let result = parser.parse(raw, region: region)
            #expect(result.numbers.allSatisfy { isE164($0.e164) }, "\(raw): \(result.numbers)")
        }
        #expect(parser.parse("+49 87041009216836", region: "DE").fieldRejection == .tooLong)
        // A word apart from a complete number is text, not keypad digits; a vanity number still works.
        let street = parser.parse("0049 30 811503 STRASSE", region: "DE")
        #expect(street.fieldRejection == .unrecognizedText && street.rejected.first?.detail == "STRASSE", "\(street)")
        #expect(parser.parse("1 800 FLOWERS", region: "US").numbers.map(\.e164) == ["+18003569377"])
        #expect(
            isE164("+989601") && isE164("+442079460958") && !isE164("+4987041009216836") && !isE164("+0123456")
                && !isE164("+١٢٣٤٥٦٧") && !isE164("4930123456"))
    }

    @Test func aFieldLongerThanAnyPhoneFieldIsRejectedUnparsed() {
        let digits = String(repeating: "1234567890", count: 2_000)
        let clock = ContinuousClock()
        var result = PhoneFieldResult()
        let elapsed = clock.measure { result = parser.parse(digits, region: "DE") }
        #expect(result.fieldRejection == .fieldTooLong)
        #expect(result.rejected.first?.detail == "20000 bytes; at most 256")
        #expect(result.rejected.first?.fragment.count == 41, "the report shows the start, not 20,000 digits")
        #expect(elapsed < .seconds(1), "libphonenumber is never asked about it: \(elapsed)")
        let longest =
            "Office: +1 (650) 253-0000 ext. 1234 / Mobile: +1 (650) 555-0132 / Home: +1 (415) 555-0199 / Fax: +1 (650) 253-0001"
        #expect(longest.utf8.count < PhoneFieldParser.maximumFieldBytes)
        #expect(parser.parse(longest, region: "US").numbers.count == 4)
    }

    @Test func extensionsAreStoredInASCIIDigits() {
        #expect(parser.parse("+1 650 253 0000 ext ٣٣", region: "US").numbers.first?.extensionDigits == "33")
        #expect(parser.parse("+1 650 253 0000 x １２", region: "US").numbers.first?.extensionDigits == "12")
        #expect(asciiDigits("٠١٢٣٤٥٦٧٨٩ ０９ १२") == "0123456789 09 12")
        // A digit carrying a combining mark is no digit: it never makes a DIN 5008 extension (found by
        // FuzzPhones, where the mark reached the stored extension).
        for value in ["877715 34-0\u{365}5556", "(030) 282 53 78-5\u{301}24"] {
            let result = parser.parse(value, region: "DE")
            for number in result.numbers {
                #expect(
                    number.extensionDigits?.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } ?? true,
                    "\(number.extensionDigits.debugDescription) from \(value.debugDescription)")
            }
        }
        #expect(parser.parse("(030) 282 53 78-524", region: "DE").numbers.first?.extensionDigits == "524")
    }

    @Test func rejectedFragmentsOfASplitFieldAreKept() {
        let result = parser.parse("+44 20 7946 0958 (w), +44 7700 900123 (m)", region: "GB")
        #expect(result.numbers.map(\.e164) == ["+442079460958"])
        #expect(result.rejected.map(\.reason) == [.invalidForRegion])
        #expect(result.rejected.first?.fragment == "+44 7700 900123 (m)")
    }

    @Test func mappingLabelsExtendTheDictionary() {
        let labels = PhoneLabels.standard.adding([
            "bipper": .type(.custom("Pager")), "zentrale": .type(.canonical(.work)),
        ])
        let custom = PhoneFieldParser(labels: labels)
        #expect(custom.parse("Bipper: 650-253-0000", region: "US").numbers.first?.typeHint == .custom("Pager"))
        #expect(custom.parse("030 123456 (Zentrale)", region: "DE").numbers.first?.typeHint == work)
    }
}

@Suite("Phone labels")
struct PhoneLabelTests {
    @Test(arguments: [
        ("Pager", "pager"), ("  Direct   Line ", "direct line"), ("ASSISTANT", "assistant"),
        ("Car\tphone", "car phone"),
    ])
    func normalizesLabels(_ label: String, _ normalized: String) {
        #expect(normalizePhoneLabel(label) == normalized)
    }

    @Test func labelsAreOneTypeWhateverTheirUnicodeForm() {
        let composed = "Pag\u{E9}", decomposed = "Page\u{301}"
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        #expect(Array(normalizePhoneLabel(composed).utf8) == Array(normalizePhoneLabel(decomposed).utf8))
        guard case .custom(let label)? = PhoneType(label: decomposed) as PhoneType? else {
            Issue.record("not custom"); return
        }
        #expect(Array(label.utf8) == Array(composed.utf8), "stored in NFC")
    }

    @Test func canonicalNamesAreNotCustom() {
        #expect(PhoneType(label: " Mobile ") == .canonical(.mobile))
        #expect(PhoneType(label: "Pager") == .custom("Pager"))
    }
}

@Test func trimmingWhitespaceTrimsWhatCharacterCallsWhitespace() {
    // The reference: Character by Character, as the trim was before its ASCII shortcut.
    func reference(_ text: String) -> String {
        var view = Substring(text)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
    let texts = [
        "", " ", "a", " a ", "\t+1 212 555 0100\n", "\u{3000}030 1234\u{3000}", "\u{A0}1\u{A0}", "a\u{301}",
        "\u{301}a", "1\r\n", "\r\n1", "x\u{2028}", "\u{85}x", "(030) 12-34", "é ", " é", "~!", "\u{7F}1\u{7F}",
    ]
    for text in texts { #expect(text.trimmingWhitespace() == reference(text), "\(text.debugDescription)") }
}

@Test func theParsersCharacterClassesAnswerAsTheStandardLibraryDoes() {
    // The parser answers ASCII from the byte (see Character.isDecimalDigit): every ASCII character, the
    // one two-scalar ASCII cluster and a few others must get the standard library's answers.
    let characters =
        (0...127).map { Character(Unicode.Scalar(UInt8($0))) }
        + [
            "\r\n", "\u{85}", "\u{A0}", "\u{3000}", "\u{2028}", "é", "e\u{301}", "Ж", "ー", "٣", "３", "\u{1C}", "\u{7F}",
            "0\u{365}", "٣\u{301}",
        ]
    for character in characters {
        #expect(character.isAnyWhitespace == character.isWhitespace, "\(character.debugDescription)")
        #expect(character.isLetterOfAnyScript == character.isLetter, "\(character.debugDescription)")
        // A digit is one scalar: with a combining mark it is another character.
        let decimal =
            character.unicodeScalars.count == 1 && character.unicodeScalars.first?.properties.numericType == .decimal
        #expect(character.isDecimalDigit == decimal, "\(character.debugDescription)")
    }
}
