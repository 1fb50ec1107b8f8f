/// One number found in a legacy field.
public struct ParsedPhone: Equatable, Sendable {
    public let e164: String
    public let extensionDigits: String?
    /// The type an annotation gave it ("(mobile)", "Fax:"), if any.
    public let typeHint: PhoneType?
    /// The piece of the field it came from.
    public let fragment: String
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
    /// Longer fields are rejected unparsed: the longest plausible one (several labelled numbers with
    /// extensions) is far shorter, and parsing time grows with the length.
    public static let maximumFieldBytes = 256

    public init(labels: PhoneLabels = .standard) {
        self.labels = labels
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
        if case .number(let phone) = whole {
            result.numbers = [phone]
            return result
        }
        let pieces = splitIntoPieces(value)
        guard pieces.count > 1, case .rejected(let wholeRejection) = whole else {
            if case .rejected(let rejection) = whole { result.rejected = [rejection] }
            return result
        }
        result.wasSplit = true
        for piece in pieces {
            if let reason = rejectionWithoutDigits(piece) {
                result.rejected.append(RejectedFragment(fragment: piece, reason: reason, detail: nil))
                continue
            }
            switch parseSegment(piece, region: region) {
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
        let verdict = PhoneNumberParser.parse(annotated.cleaned, defaultRegion: region)
        return verdictOutcome(verdict, segment: segment, typeHint: annotated.typeHint)
    }

    private func verdictOutcome(_ verdict: LibPhoneVerdict, segment: String, typeHint: PhoneType?) -> SegmentOutcome {
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
            return .number(
                ParsedPhone(
                    e164: e164, extensionDigits: verdict.extensionDigits.map(asciiDigits),
                    typeHint: typeHint, fragment: segment))
        case .notANumber: reason = .notANumber
        case .invalidCountryCode: reason = .invalidCountryCode
        case .tooShort: reason = .tooShort
        case .tooLong: reason = .tooLong
        case .invalidForRegion: reason = .invalidForRegion
        }
        return .rejected(RejectedFragment(fragment: segment, reason: reason, detail: verdict.e164))
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
            // A single letter is a label only as "M:" ; elsewhere it is a vanity letter or "x".
            if word.count == 1, let known = meaning, known != .libraryExtension, !labelPunctuationFollows {
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
            if characters[index].isLetter {
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

    private static let separators: Set<Character> = ["\n", "\r", "\r\n", "/", ",", ";", "|", "、", "，", "；", "／", "｜"]

    /// Cuts a field at separators, at joining words ("or", "ou") and before a label that
    /// follows a number ("H: 650-253-0000 W: 415-555-0132").
    func splitIntoPieces(_ value: String) -> [String] {
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
            if Self.separators.contains(character) {
                cut()
                index += 1
                continue
            }
            if character.isLetter, index == 0 || !characters[index - 1].isLetter {
                var end = index
                while end < characters.count, characters[end].isLetter { end += 1 }
                let word = String(characters[index..<end])
                let meaning = labels.meaning(of: word)
                let followedByColon = end < characters.count && (characters[end] == ":" || characters[end] == ".")
                let standsAlone =
                    index > 0 && characters[index - 1].isWhitespace
                    && end < characters.count && characters[end].isWhitespace
                if meaning == .conjunction, digitSeen, standsAlone {
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
        unicodeScalars.first?.properties.numericType == .decimal
    }
}
