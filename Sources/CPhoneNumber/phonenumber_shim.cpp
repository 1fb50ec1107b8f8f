#include "CPhoneNumber.h"

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace i18n {
namespace phonenumbers {
// PhoneNumberUtil befriends its test fixture by this name; ferry borrows the name to build instances
// besides the process-wide singleton (see UtilPool).
class PhoneNumberUtilTest {
 public:
  static PhoneNumberUtil *Create() { return new PhoneNumberUtil(); }
};
}  // namespace phonenumbers
}  // namespace i18n

namespace {

// Every PhoneNumberUtil keeps its compiled patterns in a cache behind one mutex, and each lookup
// copies and hashes the whole pattern (often over a kilobyte) while holding it. With the singleton, the
// transform threads queued there: a 200,000-contact plan took 3.35 s on two cores; with an instance of
// its own for each parsing thread, 2.95 s.
// An instance costs about 2 MB, and up to 10 MB once its cache holds every region's patterns, so at
// most kMaxOwnInstances are built; threads beyond them share the singleton (and its mutex), which keeps
// memory bounded on a machine with many cores. Instances are never destroyed: the constructor installs
// its own logger as the library's global one, so deleting an instance could leave that global dangling.
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

}  // namespace

extern "C" void ferry_phone_parse(const char *text, const char *default_region, ferry_phone_result *out) {
    std::memset(out, 0, sizeof(*out));
    const PhoneNumberUtil &util = UtilForThisThread();
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

extern "C" int ferry_phone_region_is_supported(const char *region) {
    const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
    return util.GetCountryCodeForRegion(region) != 0 ? 1 : 0;
}

