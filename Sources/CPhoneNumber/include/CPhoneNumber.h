// A small C face over Google's libphonenumber (C++), so that Swift never sees C++ types.
// One call parses one string; everything the pipeline needs comes back in one plain struct.
#ifndef FERRY_CPHONENUMBER_H
#define FERRY_CPHONENUMBER_H

#ifdef __cplusplus
extern "C" {
#endif

/// Mirrors PhoneNumberUtil::ErrorType.
typedef enum {
    FERRY_PARSE_OK = 0,
    FERRY_PARSE_INVALID_COUNTRY_CODE = 1,
    FERRY_PARSE_NOT_A_NUMBER = 2,
    FERRY_PARSE_TOO_SHORT_AFTER_IDD = 3,
    FERRY_PARSE_TOO_SHORT_NSN = 4,
    FERRY_PARSE_TOO_LONG_NSN = 5,
} ferry_parse_status;

/// Mirrors PhoneNumberUtil::ValidationResult.
typedef enum {
    FERRY_POSSIBLE = 0,
    FERRY_POSSIBLE_LOCAL_ONLY = 1,
    FERRY_POSSIBLE_INVALID_COUNTRY_CODE = 2,
    FERRY_POSSIBLE_TOO_SHORT = 3,
    FERRY_POSSIBLE_INVALID_LENGTH = 4,
    FERRY_POSSIBLE_TOO_LONG = 5,
} ferry_possibility;

typedef struct {
    int parse_status;     // ferry_parse_status
    int is_valid;         // 1 when IsValidNumber
    int possibility;      // ferry_possibility, set only when parsed but not valid (it costs another pass)
    char e164[32];        // "+15551234567" when parse_status == OK
    char extension[48];   // digits only, "" when none
} ferry_phone_result;

/// Parses `text` (UTF-8, NUL-terminated) with `default_region` (ISO 3166 alpha-2, or "ZZ").
void ferry_phone_parse(const char *text, const char *default_region, ferry_phone_result *out);

/// The same with the library's process-wide instance, exactly as the library builds it.
void ferry_phone_parse_with_library_instance(const char *text, const char *default_region, ferry_phone_result *out);

/// The same with one instance of ferry's own (its faster matcher, as the per-thread instances have) kept
/// outside the pool and shared behind a lock: with the call above, lets a test compare the two matchers
/// on any thread, whatever the pool holds.
void ferry_phone_parse_with_spare_own_instance(const char *text, const char *default_region, ferry_phone_result *out);

/// The libphonenumber this shim was built against: "8.12.57+ds-3 (RE2)" (scripts/libphonenumber.sh).
const char *ferry_phone_library_version(void);

/// 1 when libphonenumber has metadata for the region code.
int ferry_phone_region_is_supported(const char *region);

#ifdef __cplusplus
}
#endif

#endif
