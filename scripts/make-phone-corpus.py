#!/usr/bin/env python3
"""Writes Tests/Corpus/phones/<language>.tsv: legacy phone values as people write them in English
(GB, US), German, French, Spanish and Japanese, each with the rows ferry must make of it.

Every case is built from a number whose E.164 form is written here by hand (national formats after
the national numbering plans: Ofcom, NANPA, BNetzA and DIN 5008, ARCEP, CNMC, MIC), spelled the ways
people spell it, with the labels and extension words of the language. The expected rows come from
that construction, never from ferry. Columns: region, value, expected, note. Expected is
"E164[ xEXT]|type" joined by " ; ", "reject:REASON" (ferry's own reasons), or "reject" where
the reason is libphonenumber's verdict on a fragment (too short, invalid for its region). A value without a label takes the column's
type, work.
"""
import os

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Corpus", "phones")


def row(e164, ext=None, kind="work"):
    return e164 + (" x" + ext if ext else "") + "|" + kind


class Corpus:
    def __init__(self, language):
        self.language, self.cases, self.seen = language, [], set()

    def add(self, region, value, expected, note):
        if (region, value) in self.seen:
            return
        self.seen.add((region, value))
        self.cases.append((region, value, expected, note))

    def without_numbers(self, region, cases):
        """Values with no number: ("value", "reason") where ferry decides the reason, "" where
        libphonenumber's verdict on the fragment does."""
        for value, reason in cases:
            self.add(region, value, "reject:" + reason if reason else "reject", "no number")

    def write(self):
        path = os.path.join(OUT, self.language + ".tsv")
        with open(path, "w", encoding="utf-8") as out:
            out.write("region\tvalue\texpected\tnote\n")
            for case in self.cases:
                out.write("\t".join(case) + "\n")
        return len(self.cases)


def landline_spellings(region, cc, area, local, groups, intl_groups):
    """National and international spellings of one number: (value, note)."""
    national = area + " " + groups
    yield national, "national, grouped"
    yield area + local, "national, digits only"
    yield area + "/" + local, "area code, slash"
    yield "(" + area + ") " + groups, "area code in parentheses"
    yield area + "-" + local, "area code, hyphen"
    yield "+" + cc + " " + intl_groups, "international"
    yield "+" + cc + " (0)" + intl_groups, "international with trunk zero in parentheses"
    yield "00" + cc + " " + intl_groups, "international, 00 prefix"
    yield "+" + cc + intl_groups.replace(" ", ""), "international, digits only"


# --- German ---------------------------------------------------------------------------------------
de = Corpus("de")
german_landlines = [
    # area, local number, grouped (DIN 5008: blocks of the local number as written), E.164
    ("030", "1234567", "1234567", "+49301234567"),
    ("030", "28253780", "28253780", "+493028253780"),
    ("089", "12345678", "12345678", "+498912345678"),
    ("040", "4123456", "4123456", "+49404123456"),
    ("0221", "1234567", "1234567", "+492211234567"),
    ("069", "12345678", "12345678", "+496912345678"),
    ("0711", "1234567", "1234567", "+497111234567"),
    ("0211", "1234567", "1234567", "+492111234567"),
    ("0341", "1234567", "1234567", "+493411234567"),
    ("06221", "123456", "123456", "+496221123456"),
]
german_mobiles = [
    ("0151", "12345678", "+4915112345678"),
    ("0160", "1234567", "+491601234567"),
    ("0170", "1234567", "+491701234567"),
    ("0171", "2345678", "+491712345678"),
    ("0176", "12345678", "+4917612345678"),
    ("0152", "23456789", "+4915223456789"),
]
for area, local, grouped, e164 in german_landlines:
    for value, note in landline_spellings("DE", "49", area, local, grouped, area[1:] + " " + local):
        de.add("DE", value, row(e164), note)
    de.add("DE", "Tel.: " + area + " " + local, row(e164), "label Tel.:")
    de.add("DE", "Telefon " + area + " " + local, row(e164), "label Telefon")
    de.add("DE", "Fax: " + area + " " + local, row(e164, kind="fax"), "label Fax:")
    de.add("DE", "Büro: " + area + " " + local, row(e164), "label Büro:")
    de.add("DE", "privat " + area + " " + local, row(e164, kind="home"), "label privat")
    de.add("DE", area + " " + local + " Durchwahl 12", row(e164, "12"), "extension word Durchwahl")
    de.add("DE", area + " " + local + "-12", row(e164, "12"), "DIN 5008 extension after a hyphen")
    de.add("DE", "+49 " + area[1:] + " " + local + " App. 78", row(e164, "78"), "extension word App.")
for area, local, e164 in german_mobiles:
    de.add("DE", area + " " + local, row(e164), "mobile, national")
    de.add("DE", area + "/" + local, row(e164), "mobile, slash")
    de.add("DE", area + "-" + local, row(e164), "mobile, hyphen")
    de.add("DE", "+49 " + area[1:] + " " + local, row(e164), "mobile, international")
    de.add("DE", "Mobil: " + area + " " + local, row(e164, kind="mobile"), "label Mobil:")
    de.add("DE", "Handy " + area + " " + local, row(e164, kind="mobile"), "label Handy")
    de.add("DE", "Mobiltelefon: " + area + " " + local, row(e164, kind="mobile"), "label Mobiltelefon:")
    de.add("DE", "mobil " + area + " " + local, row(e164, kind="mobile"), "label mobil")
for (area, local, _, e164), (marea, mlocal, me164) in zip(german_landlines, german_mobiles):
    both = row(e164) + " ; " + row(me164)
    de.add("DE", f"{area} {local} oder {marea} {mlocal}", both, "two numbers, oder")
    de.add("DE", f"{area}/{local} oder {marea} {mlocal}", both, "two numbers, slash inside the first")
    de.add("DE", f"{area} {local}; {marea} {mlocal}", both, "two numbers, semicolon")
    de.add("DE", f"{area} {local} / {marea} {mlocal}", both, "two numbers, spaced slash")
    de.add("DE", f"Tel. {area} {local}, Handy {marea} {mlocal}",
           row(e164) + " ; " + row(me164, kind="mobile"), "two labelled numbers")
de.without_numbers("DE", [("k.A.", "empty-ish token"), ("keine", "empty-ish token"), ("-", "empty-ish token"),
                      ("keine Angabe", "not a number"), ("siehe Zentrale", "not a number"),
                      ("unbekannt", "not a number"), ("030", ""), ("0", "")])

# --- French ---------------------------------------------------------------------------------------
fr = Corpus("fr")
french = [
    ("01", "42 68 53 00", "+33142685300"), ("01", "45 67 89 12", "+33145678912"),
    ("02", "40 12 34 56", "+33240123456"), ("03", "88 12 34 56", "+33388123456"),
    ("04", "91 12 34 56", "+33491123456"), ("05", "61 23 45 67", "+33561234567"),
    ("04", "72 12 34 56", "+33472123456"), ("09", "72 12 34 56", "+33972123456"),
]
french_mobiles = [
    ("06", "12 34 56 78", "+33612345678"), ("07", "81 23 45 67", "+33781234567"),
    ("06", "98 76 54 32", "+33698765432"), ("07", "52 12 34 56", "+33752123456"),
    ("06", "45 23 67 89", "+33645236789"), ("07", "66 12 34 56", "+33766123456"),
    ("06", "30 12 34 56", "+33630123456"), ("06", "70 11 22 33", "+33670112233"),
]
for (prefix, rest, e164) in french:
    number = prefix + " " + rest
    digits = (prefix + rest).replace(" ", "")
    spellings = [
        (number, "national, pairs"), (digits, "national, digits only"),
        (number.replace(" ", "."), "national, dots"), (number.replace(" ", "-"), "national, hyphens"),
        ("+33 " + prefix[1:] + " " + rest, "international"), ("+33 (0)" + prefix[1:] + " " + rest, "international, trunk zero"),
        ("0033 " + prefix[1:] + " " + rest, "international, 00 prefix"),
        ("Tél. : " + number, "label Tél. :"), ("Tél : " + number, "label Tél :"), ("Tel " + number, "label Tel"),
        ("Téléphone : " + number, "label Téléphone :"),
    ]
    for value, note in spellings:
        fr.add("FR", value, row(e164), note)
    fr.add("FR", "Fax : " + number, row(e164, kind="fax"), "label Fax :")
    fr.add("FR", "Bureau : " + number, row(e164), "label Bureau :")
    fr.add("FR", "Domicile : " + number, row(e164, kind="home"), "label Domicile :")
    fr.add("FR", number + " poste 123", row(e164, "123"), "extension word poste")
    fr.add("FR", number + " p. 45", row(e164, "45"), "extension abbreviation p.")
for (prefix, rest, e164) in french_mobiles:
    number = prefix + " " + rest
    fr.add("FR", number, row(e164), "mobile, pairs")
    fr.add("FR", number.replace(" ", "."), row(e164), "mobile, dots")
    fr.add("FR", "+33 " + prefix[1:] + " " + rest, row(e164), "mobile, international")
    fr.add("FR", "Portable : " + number, row(e164, kind="mobile"), "label Portable :")
    fr.add("FR", "Port. " + number, row(e164, kind="mobile"), "label Port.")
    fr.add("FR", "Mobile : " + number, row(e164, kind="mobile"), "label Mobile :")
    fr.add("FR", "GSM " + number, row(e164, kind="mobile"), "label GSM")
for (prefix, rest, e164), (mprefix, mrest, me164) in zip(french, french_mobiles):
    a, b = prefix + " " + rest, mprefix + " " + mrest
    both = row(e164) + " ; " + row(me164)
    fr.add("FR", f"{a} ou {b}", both, "two numbers, ou")
    fr.add("FR", f"{a} & {b}", both, "two numbers, &")
    fr.add("FR", f"{a} / {b}", both, "two numbers, slash")
    fr.add("FR", f"{a} (bureau) {b} (portable)", row(e164) + " ; " + row(me164, kind="mobile"),
           "a label after each number")
    fr.add("FR", f"Tél. {a}, Port. {b}", row(e164) + " ; " + row(me164, kind="mobile"), "two labelled numbers")
fr.without_numbers("FR", [("néant", "not a number"), ("n/a", "empty-ish token"), ("-", "empty-ish token"),
                      ("voir standard", "not a number"), ("inconnu", "not a number"), ("01", "")])

# --- English (GB and US) --------------------------------------------------------------------------
en = Corpus("en")
british = [
    ("020", "7946 0018", "+442079460018"), ("020", "7123 4567", "+442071234567"),
    ("0121", "234 5678", "+441212345678"), ("0131", "496 0018", "+441314960018"),
    ("0161", "496 0018", "+441614960018"), ("0113", "496 0018", "+441134960018"),
]
british_mobiles = [
    ("07911", "123456", "+447911123456"), ("07400", "123456", "+447400123456"),
    ("07700", "123456", "+447700123456"), ("07812", "345678", "+447812345678"),
    ("07954", "321098", "+447954321098"), ("07508", "765432", "+447508765432"),
]
for area, rest, e164 in british:
    national = area + " " + rest
    for value, note in [
        (national, "national"), ((area + rest).replace(" ", ""), "national, digits only"),
        ("(" + area + ") " + rest, "area code in parentheses"), ("+44 " + area[1:] + " " + rest, "international"),
        ("+44 (0)" + area[1:] + " " + rest, "international, trunk zero"), ("0044 " + area[1:] + " " + rest, "00 prefix"),
        ("Tel: " + national, "label Tel:"), ("T: " + national, "label T:"), ("Phone: " + national, "label Phone:"),
        ("Office: " + national, "label Office:"),
    ]:
        en.add("GB", value, row(e164), note)
    en.add("GB", "Fax: " + national, row(e164, kind="fax"), "label Fax:")
    en.add("GB", "F: " + national, row(e164, kind="fax"), "label F:")
    en.add("GB", "Home: " + national, row(e164, kind="home"), "label Home:")
    en.add("GB", national + " ext. 204", row(e164, "204"), "extension ext.")
    en.add("GB", national + " x204", row(e164, "204"), "extension x")
for area, rest, e164 in british_mobiles:
    national = area + " " + rest
    en.add("GB", national, row(e164), "mobile")
    en.add("GB", "+44 " + area[1:] + " " + rest, row(e164), "mobile, international")
    en.add("GB", "Mob: " + national, row(e164, kind="mobile"), "label Mob:")
    en.add("GB", "M: " + national, row(e164, kind="mobile"), "label M:")
    en.add("GB", "Mobile: " + national, row(e164, kind="mobile"), "label Mobile:")
for (area, rest, e164), (marea, mrest, me164) in zip(british, british_mobiles):
    a, b = area + " " + rest, marea + " " + mrest
    both = row(e164) + " ; " + row(me164)
    en.add("GB", f"{a} or {b}", both, "two numbers, or")
    en.add("GB", f"{a}    {b}", both, "two numbers apart by spaces")
    en.add("GB", f"{a} (work) {b} (mobile)", row(e164) + " ; " + row(me164, kind="mobile"), "a label after each")
    en.add("GB", f"T: {a} M: {b}", row(e164) + " ; " + row(me164, kind="mobile"), "two labelled numbers")
american = [
    ("650", "253", "0000", "+16502530000"), ("212", "555", "0123", "+12125550123"),
    ("415", "555", "0132", "+14155550132"), ("201", "555", "0123", "+12015550123"),
    ("312", "555", "0147", "+13125550147"), ("617", "555", "0180", "+16175550180"),
]
for area, exchange, line, e164 in american:
    for value, note in [
        (f"({area}) {exchange}-{line}", "parentheses"), (f"{area}-{exchange}-{line}", "hyphens"),
        (f"{area}.{exchange}.{line}", "dots"), (f"{area} {exchange} {line}", "spaces"),
        (f"{area}{exchange}{line}", "digits only"), (f"+1 {area} {exchange} {line}", "international"),
        (f"1-{area}-{exchange}-{line}", "long-distance prefix"), (f"+1 ({area}) {exchange}-{line}", "international, parentheses"),
        (f"Phone: ({area}) {exchange}-{line}", "label Phone:"), (f"Work: {area}-{exchange}-{line}", "label Work:"),
    ]:
        en.add("US", value, row(e164), note)
    en.add("US", f"Cell: {area}-{exchange}-{line}", row(e164, kind="mobile"), "label Cell:")
    en.add("US", f"({area}) {exchange}-{line} (mobile)", row(e164, kind="mobile"), "label after")
    en.add("US", f"Fax: ({area}) {exchange}-{line}", row(e164, kind="fax"), "label Fax:")
    en.add("US", f"{area}-{exchange}-{line} ext. 12", row(e164, "12"), "extension ext.")
    en.add("US", f"{area}-{exchange}-{line} x 12", row(e164, "12"), "extension x")
en.without_numbers("US", [("n/a", "empty-ish token"), ("none", "empty-ish token"), ("TBD", "empty-ish token"),
                      ("call reception", "not a number"), ("ask front desk", "not a number"), ("911", "")])

# --- Spanish (basics) -----------------------------------------------------------------------------
es = Corpus("es")
for prefix, rest, e164, mobile in [
    ("91", "123 45 67", "+34911234567", False), ("93", "123 45 67", "+34931234567", False),
    ("96", "123 45 67", "+34961234567", False), ("612", "34 56 78", "+34612345678", True),
    ("699", "12 34 56", "+34699123456", True), ("722", "12 34 56", "+34722123456", True),
]:
    number = prefix + " " + rest
    kind = "mobile" if mobile else "work"
    es.add("ES", number, row(e164), "nacional")
    es.add("ES", number.replace(" ", ""), row(e164), "nacional, sólo dígitos")
    es.add("ES", "+34 " + number, row(e164), "internacional")
    es.add("ES", "0034 " + number, row(e164), "internacional, 00")
    es.add("ES", "Tel.: " + number, row(e164), "etiqueta Tel.:")
    es.add("ES", ("Móvil: " if mobile else "Teléfono: ") + number, row(e164, kind=kind), "etiqueta")
    es.add("ES", number + " ext. 21", row(e164, "21"), "extensión ext.")
es.add("ES", "91 123 45 67 o 612 34 56 78", row("+34911234567") + " ; " + row("+34612345678"), "dos números, o")
es.add("ES", "Fax: 91 123 45 67", row("+34911234567", kind="fax"), "etiqueta Fax:")

# --- Japanese (basics) ----------------------------------------------------------------------------
ja = Corpus("ja")
for number, e164, mobile in [
    ("03-1234-5678", "+81312345678", False), ("06-6123-4567", "+81661234567", False),
    ("045-123-4567", "+81451234567", False), ("090-1234-5678", "+819012345678", True),
    ("080-1234-5678", "+818012345678", True), ("070-1234-5678", "+817012345678", True),
]:
    kind = "mobile" if mobile else "work"
    ja.add("JP", number, row(e164), "国内")
    ja.add("JP", number.replace("-", ""), row(e164), "国内、数字のみ")
    ja.add("JP", "+81 " + number[1:].replace("-", " "), row(e164), "国際")
    ja.add("JP", "(" + number.split("-")[0] + ")" + "-".join(number.split("-")[1:]), row(e164), "市外局番を括弧で")
    ja.add("JP", number.translate(str.maketrans("0123456789-", "０１２３４５６７８９－")), row(e164), "全角")
    ja.add("JP", ("携帯: " if mobile else "電話: ") + number, row(e164, kind=kind), "ラベル")
ja.add("JP", "03-1234-5678 内線 123", row("+81312345678", "123"), "内線")
ja.add("JP", "FAX: 03-1234-5679", row("+81312345679", kind="fax"), "ラベル FAX")

os.makedirs(OUT, exist_ok=True)
for corpus in (en, de, fr, es, ja):
    print(corpus.language, corpus.write())
