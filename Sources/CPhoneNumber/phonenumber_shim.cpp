#include "CPhoneNumber.h"

#include <cstring>
#include <string>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

void copy_truncated(char *destination, size_t capacity, const std::string &source) {
    size_t length = source.size() < capacity - 1 ? source.size() : capacity - 1;
    std::memcpy(destination, source.data(), length);
    destination[length] = '\0';
}

}  // namespace

extern "C" void ferry_phone_parse(const char *text, const char *default_region, ferry_phone_result *out) {
    std::memset(out, 0, sizeof(*out));
    const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
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

