// How the library was built (its definitions change what its headers declare): first, before its headers.
#include <ferry_libphonenumber_build.h>

#include "CPhoneNumber.h"

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <phonenumbers/matcher_api.h>
#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

using i18n::phonenumbers::MatcherApi;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberDesc;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

// The library's own MatcherApi (RegexBasedMatcher) finds each pattern by hashing its whole text
// (libstdc++'s TR1 hash, a byte at a time, over patterns that are often longer than a kilobyte) behind
// its cache's mutex, then runs it with the library's engine (RE2 in ferry's build; with ICU it built a
// new RegexMatcher for every match); IsValidNumber runs it a dozen times a number. This one answers
// as that one does (a full match, else a match anchored at the start when a prefix match is allowed),
// with ICU's engine (a test compares its verdicts with the library matcher's). It finds a pattern by
// the address of its PhoneNumberDesc (the metadata lives as long as its PhoneNumberUtil) and keeps one
// RegexMatcher per pattern, which measured faster than the library's matcher with either engine
// (docs/performance.md). It is not thread-safe: only instances the pool hands to one thread at a time
// get it, never the shared singleton.
class PatternPerDescMatcher : public MatcherApi {
 public:
  bool MatchNationalNumber(const std::string &number, const PhoneNumberDesc &number_desc,
                           bool allow_prefix_match) const override {
    const std::string &pattern = number_desc.national_number_pattern();
    // As RegexBasedMatcher: an empty pattern matches nothing, not even as a prefix.
    if (pattern.empty()) return false;
    icu::RegexMatcher *matcher = MatcherFor(number_desc, pattern);
    // As IcuRegExp: a pattern ICU cannot compile matches nothing.
    if (matcher == nullptr) return false;
    input_ = icu::UnicodeString::fromUTF8(icu::StringPiece(number.data(), number.size()));
    matcher->reset(input_);
    UErrorCode status = U_ZERO_ERROR;
    if (matcher->matches(0, status) && U_SUCCESS(status)) return true;
    // RegexBasedMatcher answers allow_prefix_match when the start matches, false otherwise: without
    // allow_prefix_match the answer is false either way, so the anchored match is only run with it.
    if (!allow_prefix_match) return false;
    status = U_ZERO_ERROR;
    return matcher->lookingAt(0, status) && U_SUCCESS(status);
  }

 private:
  struct Compiled {
    std::string pattern;  // the text it was compiled from, checked on every use
    std::unique_ptr<icu::RegexPattern> regex;
    std::unique_ptr<icu::RegexMatcher> matcher;
  };

  icu::RegexMatcher *MatcherFor(const PhoneNumberDesc &desc, const std::string &pattern) const {
    Compiled &entry = compiled_[&desc];
    // The address is only a shortcut: a desc at a reused address with another pattern recompiles. A
    // new entry's empty text never equals a pattern (the caller skips empty ones); a pattern ICU could
    // not compile keeps its text and no matcher.
    if (entry.pattern == pattern) return entry.matcher.get();
    entry.pattern = pattern;
    entry.matcher.reset();
    UParseError parse_error;
    UErrorCode status = U_ZERO_ERROR;
    entry.regex.reset(icu::RegexPattern::compile(
        icu::UnicodeString::fromUTF8(icu::StringPiece(pattern.data(), pattern.size())), 0, parse_error, status));
    if (U_FAILURE(status)) {
      entry.regex.reset();
      return nullptr;
    }
    entry.matcher.reset(entry.regex->matcher(status));
    if (U_FAILURE(status)) entry.matcher.reset();
    return entry.matcher.get();
  }

  // Every matcher reads the number from here; each is reset to it before it runs.
  mutable icu::UnicodeString input_;
  mutable std::unordered_map<const PhoneNumberDesc *, Compiled> compiled_;
};

}  // namespace

namespace i18n {
namespace phonenumbers {
// PhoneNumberUtil befriends its test fixture by this name; ferry borrows the name to build instances
// besides the process-wide singleton (see UtilPool) and to give them a faster matcher.
class PhoneNumberUtilTest {
 public:
  static PhoneNumberUtil *Create() {
    PhoneNumberUtil *util = new PhoneNumberUtil();
    util->matcher_api_.reset(new PatternPerDescMatcher());
    return util;
  }
};
}  // namespace phonenumbers
}  // namespace i18n

namespace {

// Every PhoneNumberUtil keeps its compiled patterns in a cache behind one mutex, and each lookup
// copies and hashes the whole pattern (often over a kilobyte) while holding it. With the singleton, the
// transform threads queued there; each parsing thread gets an instance of its own instead.
// An instance's caches grow until they hold every region's patterns (and PatternPerDescMatcher's
// matchers with them; docs/performance.md has the sizes), so at most kMaxOwnInstances are built; threads beyond them
// share the singleton (and its mutex), which keeps memory bounded on a machine with many cores.
// Instances are never destroyed: the constructor installs its own logger as the library's global one,
// so deleting an instance could leave that global dangling.
constexpr size_t kMaxOwnInstances = 8;

class UtilPool {
 public:
  // An idle instance, a new one while fewer than kMaxOwnInstances exist, else nullptr.
  const PhoneNumberUtil *Acquire() {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!idle_.empty()) {
      const PhoneNumberUtil *util = idle_.back();
      idle_.pop_back();
      return util;
    }
    if (built_ == kMaxOwnInstances) return nullptr;
    ++built_;
    return i18n::phonenumbers::PhoneNumberUtilTest::Create();
  }
  void Release(const PhoneNumberUtil *util) {
    std::lock_guard<std::mutex> guard(mutex_);
    idle_.push_back(util);
  }

 private:
  std::mutex mutex_;
  std::vector<const PhoneNumberUtil *> idle_;
  size_t built_ = 0;
};

UtilPool &Pool() {
    static UtilPool *pool = new UtilPool();
    return *pool;
}

// The calling thread's instance, kept while the thread lives (its caches stay warm on its core) and
// handed back to the pool when the thread ends; the singleton when the pool has none to give.
class ThreadUtil {
 public:
  ThreadUtil() : owned_(Pool().Acquire()) {}
  ~ThreadUtil() {
    if (owned_ != nullptr) Pool().Release(owned_);
  }
  const PhoneNumberUtil &Get() const { return owned_ != nullptr ? *owned_ : *PhoneNumberUtil::GetInstance(); }

 private:
  const PhoneNumberUtil *owned_;
};

const PhoneNumberUtil &UtilForThisThread() {
    thread_local ThreadUtil util;
    return util.Get();
}

void copy_truncated(char *destination, size_t capacity, const std::string &source) {
    size_t length = source.size() < capacity - 1 ? source.size() : capacity - 1;
    std::memcpy(destination, source.data(), length);
    destination[length] = '\0';
}

void ParseWith(const PhoneNumberUtil &util, const char *text, const char *default_region, ferry_phone_result *out) {
    std::memset(out, 0, sizeof(*out));
    PhoneNumber number;
    PhoneNumberUtil::ErrorType error = util.Parse(text, default_region, &number);
    out->parse_status = static_cast<int>(error);
    if (error != PhoneNumberUtil::NO_PARSING_ERROR) {
        return;
    }
    out->is_valid = util.IsValidNumber(number) ? 1 : 0;
    if (!out->is_valid) {
        out->possibility = static_cast<int>(util.IsPossibleNumberWithReason(number));
    }
    std::string formatted;
    util.Format(number, PhoneNumberUtil::E164, &formatted);
    copy_truncated(out->e164, sizeof(out->e164), formatted);
    if (number.has_extension()) {
        copy_truncated(out->extension, sizeof(out->extension), number.extension());
    }
}

}  // namespace

extern "C" void ferry_phone_parse(const char *text, const char *default_region, ferry_phone_result *out) {
    ParseWith(UtilForThisThread(), text, default_region, out);
}

extern "C" void ferry_phone_parse_with_library_instance(const char *text, const char *default_region,
                                                        ferry_phone_result *out) {
    ParseWith(*PhoneNumberUtil::GetInstance(), text, default_region, out);
}

extern "C" void ferry_phone_parse_with_spare_own_instance(const char *text, const char *default_region,
                                                          ferry_phone_result *out) {
    static std::mutex mutex;
    static const PhoneNumberUtil *spare = i18n::phonenumbers::PhoneNumberUtilTest::Create();
    std::lock_guard<std::mutex> guard(mutex);
    ParseWith(*spare, text, default_region, out);
}

extern "C" const char *ferry_phone_library_version(void) { return FERRY_LIBPHONENUMBER_VERSION; }

extern "C" int ferry_phone_region_is_supported(const char *region) {
    const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
    return util.GetCountryCodeForRegion(region) != 0 ? 1 : 0;
}

