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
    out->possibility = static_cast<int>(util.IsPossibleNumberWithReason(number));
    out->number_type = static_cast<int>(util.GetNumberType(number));
    std::string formatted;
    util.Format(number, PhoneNumberUtil::E164, &formatted);
    copy_truncated(out->e164, sizeof(out->e164), formatted);
    if (number.has_extension()) {
        copy_truncated(out->extension, sizeof(out->extension), number.extension());
    }
    std::string region;
    util.GetRegionCodeForNumber(number, &region);
    copy_truncated(out->region, sizeof(out->region), region);
}

extern "C" int ferry_phone_region_is_supported(const char *region) {
    const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
    return util.GetCountryCodeForRegion(region) != 0 ? 1 : 0;
}

extern "C" int ferry_phone_is_alpha_number(const char *text) {
    return PhoneNumberUtil::GetInstance()->IsAlphaNumber(text) ? 1 : 0;
}

extern "C" const char *ferry_phone_type_name(int number_type) {
    switch (static_cast<PhoneNumberUtil::PhoneNumberType>(number_type)) {
        case PhoneNumberUtil::FIXED_LINE: return "FIXED_LINE";
        case PhoneNumberUtil::MOBILE: return "MOBILE";
        case PhoneNumberUtil::FIXED_LINE_OR_MOBILE: return "FIXED_LINE_OR_MOBILE";
        case PhoneNumberUtil::TOLL_FREE: return "TOLL_FREE";
        case PhoneNumberUtil::PREMIUM_RATE: return "PREMIUM_RATE";
        case PhoneNumberUtil::SHARED_COST: return "SHARED_COST";
        case PhoneNumberUtil::VOIP: return "VOIP";
        case PhoneNumberUtil::PERSONAL_NUMBER: return "PERSONAL_NUMBER";
        case PhoneNumberUtil::PAGER: return "PAGER";
        case PhoneNumberUtil::UAN: return "UAN";
        case PhoneNumberUtil::VOICEMAIL: return "VOICEMAIL";
        default: return "UNKNOWN";
    }
}
