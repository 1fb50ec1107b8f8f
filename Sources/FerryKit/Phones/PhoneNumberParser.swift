import CPhoneNumber

/// What libphonenumber says about one string. This file is the only code that sees the C shim.
public struct LibPhoneVerdict: Equatable, Sendable {
    public enum Outcome: Equatable, Sendable {
        case valid
        case notANumber
        case invalidCountryCode
        case tooShort
        case tooLong
        /// Parsed, of a possible length, but not a number assigned in its region.
        case invalidForRegion
    }

    public let outcome: Outcome
    /// E.164 form when the text parsed (even when not valid).
    public let e164: String?
    public let extensionDigits: String?
    /// Not valid, but of a length its region's numbers can have, dialled in full (not a local-only
    /// number): what an application that checks "is possible" accepts.
    public var isPossible = false
}

public enum PhoneNumberParser {
    /// Which PhoneNumberUtil answers.
    public enum Instance: Sendable {
        /// The calling thread's own instance while the shim has one to give, else the library's shared
        /// one: what the pipeline uses.
        case perThread
        /// The library's process-wide instance, exactly as the library builds it.
        case library
        /// One instance built the way the per-thread ones are (with the shim's own matcher), shared
        /// behind a lock: tests compare it with `.library`.
        case spareOwn
    }

    public static func parse(_ text: String, defaultRegion: String, instance: Instance = .perThread) -> LibPhoneVerdict
    {
        var result = ferry_phone_result()
        text.withCString { textPointer in
            defaultRegion.withCString { regionPointer in
                switch instance {
                case .perThread: ferry_phone_parse(textPointer, regionPointer, &result)
                case .library: ferry_phone_parse_with_library_instance(textPointer, regionPointer, &result)
                case .spareOwn: ferry_phone_parse_with_spare_own_instance(textPointer, regionPointer, &result)
                }
            }
        }
        switch ferry_parse_status(rawValue: UInt32(result.parse_status)) {
        case FERRY_PARSE_OK:
            break
        case FERRY_PARSE_INVALID_COUNTRY_CODE:
            return LibPhoneVerdict(outcome: .invalidCountryCode, e164: nil, extensionDigits: nil)
        case FERRY_PARSE_TOO_SHORT_AFTER_IDD, FERRY_PARSE_TOO_SHORT_NSN:
            return LibPhoneVerdict(outcome: .tooShort, e164: nil, extensionDigits: nil)
        case FERRY_PARSE_TOO_LONG_NSN:
            return LibPhoneVerdict(outcome: .tooLong, e164: nil, extensionDigits: nil)
        default:
            return LibPhoneVerdict(outcome: .notANumber, e164: nil, extensionDigits: nil)
        }
        let e164 = fixedString(result.e164)
        let extensionText = fixedString(result.extension)
        let outcome: LibPhoneVerdict.Outcome
        var isPossible = false
        if result.is_valid == 1 {
            outcome = .valid
        } else {
            let possibility = ferry_possibility(rawValue: UInt32(result.possibility))
            isPossible = possibility == FERRY_POSSIBLE
            switch possibility {
            case FERRY_POSSIBLE_TOO_SHORT: outcome = .tooShort
            case FERRY_POSSIBLE_TOO_LONG: outcome = .tooLong
            case FERRY_POSSIBLE_INVALID_COUNTRY_CODE: outcome = .invalidCountryCode
            default: outcome = .invalidForRegion
            }
        }
        return LibPhoneVerdict(
            outcome: outcome, e164: e164, extensionDigits: extensionText.isEmpty ? nil : extensionText,
            isPossible: isPossible)
    }

    /// The libphonenumber release ferry was built with, and its regular-expression engine.
    public static var libraryVersion: String { String(cString: ferry_phone_library_version()) }

    public static func isSupportedRegion(_ region: String) -> Bool {
        region.withCString { ferry_phone_region_is_supported($0) == 1 }
    }

    private static func fixedString<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let length = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes.prefix(length), as: UTF8.self)
        }
    }
}
