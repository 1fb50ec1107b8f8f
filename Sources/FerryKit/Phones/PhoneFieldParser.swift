/// One number found in a legacy field.
public struct ParsedPhone: Equatable, Sendable {
    public let e164: String
    public let extensionDigits: String?
    /// The type an annotation gave it ("(mobile)", "Fax:"), if any.
    public let typeHint: PhoneType?
    /// The piece of the field it came from.
    public let fragment: String
    /// Written in North American national format (`702-478-7965`) outside North America, and valid as
    /// a North American number too: which one was meant the value cannot say (this is that reading).
    public var alsoReadsAs: String? = nil
    /// Not valid in its region, only of a possible length there (loaded under `NumberAcceptance.possible`).
    public var possibleOnly = false
}

/// A piece of a field that did not yield a number, and why.
public struct RejectedFragment: Equatable, Sendable {
    public let fragment: String
    public let reason: PhoneRejectionReason
    public let detail: String?
}

public struct PhoneFieldResult: Equatable, Sendable {
    public var numbers: [ParsedPhone] = []
    public var rejected: [RejectedFragment] = []
    /// The field did not parse as one number and was cut at separators.
    public var wasSplit = false

    /// The reason the field as a whole is not loaded (nil when it yields a number).
    public var fieldRejection: PhoneRejectionReason? { numbers.isEmpty ? rejected.first?.reason : nil }
}

/// Turns one free-text phone field into numbers: strips annotations (using them as types),
/// splits fields holding several numbers, and asks libphonenumber about each piece.
public struct PhoneFieldParser: Sendable {
    public let labels: PhoneLabels
    public let acceptance: NumberAcceptance
    /// Longer fields are rejected unparsed: the longest plausible one (several labelled numbers with
    /// extensions) is far shorter, and parsing time grows with the length.
    public static let maximumFieldBytes = 256

    public init(labels: PhoneLabels = .standard, acceptance: NumberAcceptance = .valid) {
        self.labels = labels
        self.acceptance = acceptance
    }

    public func parse(_ raw: String, region: String) -> PhoneFieldResult {
        var result = PhoneFieldResult()
        if raw.utf8.count > Self.maximumFieldBytes {
            let shown = String(raw.prefix(40)) + "…"
            result.rejected = [
                RejectedFragment(
                    fragment: shown, reason: .fieldTooLong,
                    detail: "\(raw.utf8.count) bytes; at most \(Self.maximumFieldBytes)")
            ]
            return result
        }
        let value = raw.trimmingWhitespace()
        if let reason = rejectionWithoutDigits(value) {
            result.rejected = [RejectedFragment(fragment: value, reason: reason, detail: nil)]
            return result
        }
        // The whole field first: "030/123456" is one German number, not two.
        let whole = parseSegment(value, region: region)
        if case .number(let phone) = whole, !phone.possibleOnly {
            result.numbers = [phone]
            return result
        }
        let pieces = splitIntoPieces(value, region: region)
        // A whole field that is only of a possible length ("0301234 / 0301235" runs to 14 digits) is not
        // one number when it splits: its pieces are judged instead.
        guard pieces.count > 1 else {
            switch whole {
            case .number(let phone): result.numbers = [phone]
            case .rejected(let rejection): result.rejected = [rejection]
            }
            return result
        }
        let wholeRejection: RejectedFragment
        switch whole {
        case .rejected(let rejection): wholeRejection = rejection
        case .number(let phone):
            wholeRejection = RejectedFragment(fragment: value, reason: .invalidForRegion, detail: phone.e164)
        }
        result.wasSplit = true
        for piece in pieces {
            if let reason = rejectionWithoutDigits(piece.text) {
                result.rejected.append(RejectedFragment(fragment: piece.text, reason: reason, detail: nil))
                continue
            }
            switch piece.outcome ?? parseSegment(piece.text, region: region) {
            case .number(let phone): result.numbers.append(phone)
            case .rejected(let rejection): result.rejected.append(rejection)
            }
        }
        if result.numbers.isEmpty, result.rejected.isEmpty {
            result.rejected = [wholeRejection]
        }
        return result
    }

    // MARK: One piece

    enum SegmentOutcome: Equatable {
        case number(ParsedPhone)
        case rejected(RejectedFragment)
    }

    func parseSegment(_ segment: String, region: String) -> SegmentOutcome {
        // An RFC 3966 URI ("tel:+1-650-253-0000;phone-context=...") is libphonenumber's own format.
        if segment.utf8.starts(with: "tel:".utf8) || segment.utf8.starts(with: "TEL:".utf8)
            || segment.utf8.starts(with: "Tel:".utf8)
        {
            return verdictOutcome(
                PhoneNumberParser.parse(segment, defaultRegion: region), segment: segment, typeHint: nil)
        }
        // Most values are plain digits and punctuation: no annotation to strip.
        let annotated =
            segment.mayContainLetters
            ? stripAnnotations(segment)
            : Annotated(cleaned: segment, typeHint: nil, unknownWords: [])
        if !annotated.unknownWords.isEmpty {
            return .rejected(
                RejectedFragment(
                    fragment: segment, reason: .unrecognizedText,
                    detail: annotated.unknownWords.joined(separator: " ")))
        }
        guard annotated.cleaned.containsDecimalDigit else {
            return .rejected(RejectedFragment(fragment: segment, reason: .notANumber, detail: nil))
        }
        // Capitals left in place are a vanity number's letters (1 800 FLOWERS), which libphonenumber reads
        // as keypad digits. When the digits alone are already a valid number, the capitals are not part of
        // it ("0049 30 811503 STRASSE"): unrecognized text, never digits.
        if annotated.cleaned.mayContainLetters {
            let cleaned = Array(annotated.cleaned)
            let vanityRuns = letterRuns(in: cleaned[...]).filter { isVanityWord(String(cleaned[$0])) }
            if !vanityRuns.isEmpty {
                var withoutVanity = cleaned
                for run in vanityRuns.reversed() { withoutVanity.removeSubrange(run) }
                if PhoneNumberParser.parse(String(withoutVanity), defaultRegion: region).outcome == .valid {
                    return .rejected(
                        RejectedFragment(
                            fragment: segment, reason: .unrecognizedText,
                            detail: vanityRuns.map { String(cleaned[$0]) }.joined(separator: " ")))
                }
            }
        }
        if let din = hyphenExtension(annotated.cleaned, region: region) {
            return .number(
                ParsedPhone(
                    e164: din.e164, extensionDigits: din.digits, typeHint: annotated.typeHint, fragment: segment))
        }
        let verdict = PhoneNumberParser.parse(annotated.cleaned, defaultRegion: region)
        var outcome = verdictOutcome(verdict, segment: segment, typeHint: annotated.typeHint)
        if case .number(var phone) = outcome, let reading = northAmericanReading(annotated.cleaned, region: region),
            reading != phone.e164
        {
            phone.alsoReadsAs = reading
            outcome = .number(phone)
        }
        return outcome
    }

    /// DIN 5008 (and Austria's ÖNORM A 1080) set an extension apart with a hyphen after the grouped
    /// number: `(030) 282 53 78-524` is 030 2825378, extension 524. Only where the part before the
    /// hyphen is a German or Austrian number by itself; `030-1234567` has no such part and stays whole.
    private func hyphenExtension(_ cleaned: String, region: String) -> (e164: String, digits: String)? {
        // Only where the convention is: a German or Austrian tenant, or such a number written internationally
        // (elsewhere "(650) 253-0000" would cost a second parse of every value for nothing).
        guard
            region == "DE" || region == "AT" || cleaned.hasPrefix("+49") || cleaned.hasPrefix("+43")
                || cleaned.hasPrefix("0049") || cleaned.hasPrefix("0043"),
            cleaned.utf8.contains(UInt8(ascii: "-")), let hyphen = cleaned.lastIndex(of: "-")
        else { return nil }
        let digits = cleaned[cleaned.index(after: hyphen)...]
        let base = String(cleaned[..<hyphen]).trimmingWhitespace()
        guard (1...5).contains(digits.count), digits.allSatisfy(\.isDecimalDigit),
            base.contains(where: { $0 == " " || $0 == ")" }), !base.contains("-")
        else { return nil }
        let verdict = PhoneNumberParser.parse(base, defaultRegion: region)
        guard verdict.outcome == .valid, verdict.extensionDigits == nil, let e164 = verdict.e164, isE164(e164),
            e164.hasPrefix("+49") || e164.hasPrefix("+43")
        else { return nil }
        return (e164, asciiDigits(String(digits)))
    }

    private static let northAmericanRegions: Set<String> = [
        "US", "CA", "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO", "GD", "GU", "JM", "KN", "KY", "LC", "MP", "MS",
        "PR", "SX", "TC", "TT", "VC", "VG", "VI",
    ]

    /// The North American number a value written as `NXX-NXX-XXXX` or `(NXX) NXX-XXXX` would be, when
    /// it is read outside North America and is valid there too.
    private func northAmericanReading(_ cleaned: String, region: String) -> String? {
        // Most values fail these byte checks (ten ASCII digits, the first 2-9, no plus): nothing is allocated for them.
        var digits = 0
        var first: UInt8 = 0
        for byte in cleaned.utf8 {
            if byte == UInt8(ascii: "+") { return nil }
            if byte >= 0x30 && byte <= 0x39 {
                if digits == 0 { first = byte }
                digits += 1
            }
        }
        guard digits == 10, first >= UInt8(ascii: "2"), region != "US", region != "CA",
            !Self.northAmericanRegions.contains(region.uppercased())
        else { return nil }
        let groups = cleaned.split(whereSeparator: { !$0.isASCII || !$0.isNumber }).map(\.count)
        let separators = cleaned.filter { !$0.isNumber }
        guard groups == [3, 3, 4], let first = cleaned.first(where: \.isNumber), !"01".contains(first),
            separators.allSatisfy({ "-.() ".contains($0) })
        else { return nil }
        let verdict = PhoneNumberParser.parse(cleaned, defaultRegion: "US")
        guard verdict.outcome == .valid, let e164 = verdict.e164 else { return nil }
        return e164
    }

    private func verdictOutcome(_ verdict: LibPhoneVerdict, segment: String, typeHint: PhoneType?) -> SegmentOutcome {
        func number(_ e164: String, possibleOnly: Bool = false) -> SegmentOutcome {
            .number(
                ParsedPhone(
                    e164: e164, extensionDigits: verdict.extensionDigits.map(asciiDigits), typeHint: typeHint,
                    fragment: segment, possibleOnly: possibleOnly))
        }
        let reason: PhoneRejectionReason
        switch verdict.outcome {
        case .valid:
            // libphonenumber calls some numbers valid that E.164 does not allow (more than 15 digits, as
            // when two numbers run together): what the target cannot hold is rejected, never written.
            guard let e164 = verdict.e164, isE164(e164) else {
                let digits = verdict.e164?.utf8.dropFirst().count ?? 0
                return .rejected(
                    RejectedFragment(
                        fragment: segment, reason: digits > 15 ? .tooLong : .notANumber,
                        detail: "\(verdict.e164 ?? "") is not E.164 (at most 15 digits)"))
            }
            return number(e164)
        case .notANumber: reason = .notANumber
        case .invalidCountryCode: reason = .invalidCountryCode
        case .tooShort: reason = .tooShort
        case .tooLong: reason = .tooLong
        case .invalidForRegion:
            if acceptance == .possible, verdict.isPossible, let e164 = verdict.e164, isE164(e164),
                !isPlaceholder(e164)
            {
                return number(e164, possibleOnly: true)
            }
            reason = .invalidForRegion
        }
        return .rejected(RejectedFragment(fragment: segment, reason: reason, detail: verdict.e164))
    }

    /// "000-000-0000" is of a possible length, and no number: a national number of one repeated digit
    /// (after a country code of one to three digits) is a placeholder, never loaded as merely possible.
    private func isPlaceholder(_ e164: String) -> Bool {
        let digits = Array(e164.utf8.dropFirst())
        return (1...3).contains { codeLength in
            let national = digits.dropFirst(codeLength)
            return national.count >= 6 && national.allSatisfy { $0 == national.first }
        }
    }

    // MARK: Annotations

    struct Annotated: Equatable {
        var cleaned: String
        var typeHint: PhoneType?
        var unknownWords: [String]
    }

    /// Removes label words (using them as the type) and rewrites extension words that
    /// libphonenumber does not know, so that no letter of an annotation becomes a digit.
    func stripAnnotations(_ segment: String) -> Annotated {
        var characters = Array(segment)
        var typeHint: PhoneType?
        var customLabel: String?
        var unknownWords: [String] = []

        func note(_ type: PhoneType) { if typeHint == nil { typeHint = type } }

        // 1. Parenthesised groups without digits are labels: "(mobile)", "(w)", "(Assistant)".
        var index = 0
        while index < characters.count {
            guard characters[index] == "(", let close = characters[index...].firstIndex(of: ")") else {
                index += 1
                continue
            }
            let content = characters[(index + 1)..<close]
            if content.contains(where: \.isDecimalDigit) {
                index = close + 1
                continue
            }
            let words = letterRuns(in: content).map { String(content[$0]) }
            if !words.isEmpty {
                let meanings = words.map { labels.meaning(of: $0) }
                if meanings.allSatisfy({ $0 != nil && $0 != .conjunction }) {
                    for case .type(let type)? in meanings { note(type) }
                } else {
                    customLabel = customLabel ?? String(content).trimmingWhitespace()
                }
            }
            characters.replaceSubrange(index...close, with: [" "])
            index += 1
        }

        // 2. Words elsewhere.
        let firstNumeral = characters.firstIndex(where: { $0.isDecimalDigit || $0 == "+" }) ?? characters.count
        var leadingUnknown: [String] = []
        var removals: [(Range<Int>, String)] = []
        for run in letterRuns(in: characters[...]) {
            let word = String(characters[run])
            let isLeading = run.lowerBound < firstNumeral
            var end = run.upperBound
            var labelPunctuationFollows = false
            while end < characters.count, characters[end] == ":" || characters[end] == "." {
                if characters[end] == ":" { labelPunctuationFollows = true }
                end += 1
            }
            // 1-800-CALL-NOW: upper-case letters joined to the number are a vanity number, not a label.
            let joinedToNumber =
                run.lowerBound > 0
                && (characters[run.lowerBound - 1].isDecimalDigit || characters[run.lowerBound - 1] == "-")
            if !isLeading, joinedToNumber, !labelPunctuationFollows, isVanityWord(word) {
                continue
            }
            var meaning = labels.meaning(of: word)
            // A single letter is a label only as "M:" (or an extension word as "p. 12"); elsewhere it is a
            // vanity letter or "x".
            let abbreviated = end > run.upperBound && characters[run.upperBound] == "."
            if word.count == 1, let known = meaning, known != .libraryExtension, !labelPunctuationFollows,
                !(known == .localExtension && abbreviated)
            {
                meaning = nil
            }
            switch meaning {
            case .generic?:
                removals.append((run.lowerBound..<end, " "))
            case .type(let type)?:
                note(type)
                removals.append((run.lowerBound..<end, " "))
            case .libraryExtension?:
                break
            case .localExtension?:
                removals.append((run.lowerBound..<end, " ext. "))
            case .conjunction?, nil:
                if isLeading {
                    leadingUnknown.append(word)
                } else if meaning == nil, isVanityWord(word) {
                    break
                } else {
                    unknownWords.append(word)
                }
            }
        }
        for (range, replacement) in removals.reversed() {
            characters.replaceSubrange(range, with: Array(replacement))
        }

        // 3. Unknown words before the number are a custom label only in label form: "Pager: ...".
        if !leadingUnknown.isEmpty {
            let leadingEnd = characters.firstIndex(where: { $0.isDecimalDigit || $0 == "+" }) ?? characters.count
            if let colon = characters[..<leadingEnd].lastIndex(of: ":") {
                let label = String(segment.prefix(while: { $0 != ":" })).trimmingWhitespace()
                if !label.isEmpty, label.count <= 40 {
                    customLabel = customLabel ?? label
                }
                characters.removeSubrange(..<(colon + 1))
            } else {
                unknownWords = leadingUnknown + unknownWords
            }
        }
        let hint = typeHint ?? customLabel.map { PhoneType.customLabel($0) }
        return Annotated(cleaned: String(characters).trimmingWhitespace(), typeHint: hint, unknownWords: unknownWords)
    }

    /// Upper-case ASCII letters standing among digits: 1-800-FLOWERS.
    private func isVanityWord(_ word: String) -> Bool {
        word.allSatisfy { $0.isASCII && $0.isUppercase }
    }

    private func letterRuns(in characters: ArraySlice<Character>) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start: Int?
        for index in characters.indices {
            if characters[index].isLetterOfAnyScript {
                if start == nil { start = index }
            } else if let begin = start {
                runs.append(begin..<index)
                start = nil
            }
        }
        if let begin = start { runs.append(begin..<characters.endIndex) }
        return runs
    }

    // MARK: Splitting

    /// Cut first: these never stand inside one number.
    private static let strongSeparators: Set<Character> = [
        "\n", "\r", "\r\n", "\t", ",", ";", "|", "&", "、", "，", "；", "｜", "＆",
    ]
    /// Asked of every character of a field that did not parse whole: ASCII is answered without hashing.
    private static func isStrongSeparator(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return strongSeparators.contains(character) }
        switch ascii {
        case 0x0A, 0x0D, 0x09, UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "|"), UInt8(ascii: "&"): return true
        default: return false
        }
    }
    /// Cut only inside a piece that is not one number already: "030/1234567" is one German number,
    /// "650-253-0000 / 415-555-0132" two.
    private static let weakSeparators: Set<Character> = ["/", "／"]

    struct Piece: Equatable {
        let text: String
        /// The piece's parse, when splitting already asked libphonenumber.
        var outcome: SegmentOutcome? = nil
    }

    /// Cuts a field into the pieces that may each be one number: at strong separators, at runs of
    /// spaces, at joining words ("or", "ou"), before a label that follows a number ("H: 650-253-0000
    /// W: 415-555-0132"), after a label in parentheses that follows one ("N (work) M (mobile)"); then
    /// a piece that is not a number is cut again at slashes. `value` is one that did not parse as a whole.
    func splitIntoPieces(_ value: String, region: String) -> [Piece] {
        let strong = splitAtStrongSeparators(value)
        return strong.flatMap { piece -> [Piece] in
            let slashed = piece.split(whereSeparator: { Self.weakSeparators.contains($0) })
            guard slashed.count > 1 else { return [Piece(text: piece)] }
            // The whole value was parsed already (and is not one number): only a smaller piece is asked.
            let outcome = strong.count == 1 ? nil : parseSegment(piece, region: region)
            if let outcome, case .number = outcome { return [Piece(text: piece, outcome: outcome)] }
            return slashed.map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }.map { Piece(text: $0) }
        }
    }

    /// The pieces as cut at everything but slashes (see `splitIntoPieces`).
    func splitAtStrongSeparators(_ value: String) -> [String] {
        var pieces: [String] = []
        var current: [Character] = []
        var digitSeen = false
        let characters = Array(value)
        var index = 0
        func cut() {
            let piece = String(current).trimmingWhitespace()
            if !piece.isEmpty { pieces.append(piece) }
            current.removeAll()
            digitSeen = false
        }
        while index < characters.count {
            let character = characters[index]
            if Self.isStrongSeparator(character) {
                cut()
                index += 1
                continue
            }
            // Two spaces or more after a number: numbers set apart (a single space groups digits).
            if character.isAnyWhitespace, digitSeen, index + 1 < characters.count, characters[index + 1].isAnyWhitespace
            {
                while index < characters.count, characters[index].isAnyWhitespace { index += 1 }
                cut()
                continue
            }
            // "(work)" after a number labels that number: what follows is another.
            if character == "(", digitSeen, let close = characters[index...].firstIndex(of: ")"),
                !characters[(index + 1)..<close].contains(where: \.isDecimalDigit),
                characters[(close + 1)...].contains(where: \.isDecimalDigit)
            {
                current.append(contentsOf: characters[index...close])
                index = close + 1
                cut()
                continue
            }
            if character.isLetterOfAnyScript, index == 0 || !characters[index - 1].isLetterOfAnyScript {
                var end = index
                while end < characters.count, characters[end].isLetterOfAnyScript { end += 1 }
                let word = String(characters[index..<end])
                let meaning = labels.meaning(of: word)
                let followedByColon = end < characters.count && (characters[end] == ":" || characters[end] == ".")
                let standsAlone =
                    index > 0 && characters[index - 1].isAnyWhitespace
                    && end < characters.count && characters[end].isAnyWhitespace
                if labels.joins(word), digitSeen, standsAlone, !followedByColon {
                    cut()
                    index = end
                    continue
                }
                if digitSeen, followedByColon, case .type? = meaning {
                    cut()
                }
                current.append(contentsOf: characters[index..<end])
                index = end
                continue
            }
            if character.isDecimalDigit { digitSeen = true }
            current.append(character)
            index += 1
        }
        cut()
        return pieces
    }

    // MARK: Values without digits

    private static let placeholders: Set<String> = [
        "n/a", "na", "n.a.", "n.a", "none", "null", "nil", "nan", "undefined", "tbd", "tba", "unknown", "no phone",
        "keine", "k.a.", "x", "xx", "xxx", "-", "--", "---", "?", "??", "???", ".", "..", "...",
    ]

    private func rejectionWithoutDigits(_ value: String) -> PhoneRejectionReason? {
        if value.isEmpty { return .emptyToken }
        if value.containsDecimalDigit { return nil }
        if Self.placeholders.contains(value.lowercased()) { return .emptyToken }
        return value.contains(where: \.isLetter) ? .notANumber : .emptyToken
    }
}

extension String {
    /// Any script's decimal digit; ASCII text is answered from its bytes.
    var containsDecimalDigit: Bool {
        var nonASCII = false
        for byte in utf8 {
            if byte >= 0x30 && byte <= 0x39 { return true }
            if byte >= 0x80 { nonASCII = true }
        }
        return nonASCII && contains(where: \.isDecimalDigit)
    }

    /// False only when the text surely has no letter (ASCII without A-Z, a-z).
    var mayContainLetters: Bool {
        utf8.contains { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 >= 0x80 }
    }
}

/// Digits of any script as ASCII ("٣٣" → "33", "１２" → "12"): extensions are stored in ASCII.
func asciiDigits(_ text: String) -> String {
    String(
        String.UnicodeScalarView(
            text.unicodeScalars.map { scalar in
                guard !scalar.isASCII, scalar.properties.numericType == .decimal,
                    let value = scalar.properties.numericValue,
                    let ascii = Unicode.Scalar(0x30 + UInt32(value))
                else { return scalar }
                return ascii
            }))
}

extension Character {
    /// Any script's decimal digit (ASCII, full-width, Arabic-Indic, Devanagari ...), as libphonenumber reads them.
    var isDecimalDigit: Bool {
        // The parser asks this of nearly every character of every value: ASCII is answered without a
        // Unicode property lookup.
        if let ascii = asciiValue { return ascii >= 0x30 && ascii <= 0x39 }
        // A digit carrying a combining mark ("0" and U+0365) is one Character, and no digit: its mark
        // would otherwise ride along into an extension as if it were one.
        let scalars = unicodeScalars
        return scalars.count == 1 && scalars.first?.properties.numericType == .decimal
    }

    /// `isWhitespace`, with ASCII answered without a Unicode property lookup (see `isDecimalDigit`).
    var isAnyWhitespace: Bool {
        if let ascii = asciiValue { return ascii == 0x20 || (ascii >= 0x09 && ascii <= 0x0D) }
        return isWhitespace
    }

    /// `isLetter`, with ASCII answered without a Unicode property lookup (see `isDecimalDigit`).
    var isLetterOfAnyScript: Bool {
        if let ascii = asciiValue { return (ascii | 0x20) >= 0x61 && (ascii | 0x20) <= 0x7A }
        return isLetter
    }
}
