// What libphonenumber answers to every call ferry's shim makes, one line per input and region, for
// scripts/libphonenumber.sh: built once against the library with RE2 and once with ICU's regular
// expressions, from the same source, the two outputs must be byte for byte the same.
// Input lines: TEXT<TAB>REGION. Each text is read in its region and in a few others.
#include <iostream>
#include <string>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

int main() {
    const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
    const char *other_regions[] = {"US", "DE", "GB", "FR", "JP", "ZZ"};
    std::string line;
    while (std::getline(std::cin, line)) {
        size_t tab = line.find('\t');
        if (tab == std::string::npos) continue;
        std::string text = line.substr(0, tab);
        std::string own_region = line.substr(tab + 1);
        own_region = own_region.substr(0, own_region.find('\t'));
        for (int index = -1; index < 6; ++index) {
            std::string region = index < 0 ? own_region : other_regions[index];
            PhoneNumber number;
            PhoneNumberUtil::ErrorType error = util.Parse(text, region, &number);
            std::cout << text << '\t' << region << '\t' << error;
            if (error == PhoneNumberUtil::NO_PARSING_ERROR) {
                std::string e164;
                util.Format(number, PhoneNumberUtil::E164, &e164);
                std::cout << '\t' << util.IsValidNumber(number) << '\t' << util.IsPossibleNumberWithReason(number)
                          << '\t' << e164 << '\t' << number.extension();
            }
            std::cout << '\n';
        }
    }
    return 0;
}
