import FerryKit
import FuzzSupport

/// libFuzzer: phone strings through the field parser and the contact transform. The first byte picks the
/// region; the rest is the legacy value (UTF-8, invalid bytes replaced). Checked on every input: the
/// value is counted exactly once, every number written is E.164, every extension is ASCII digits, and
/// exactly one row of a contact with rows is the default.
@_cdecl("FuzzPhones_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzPhones)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPhones(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let regions = ["US", "GB", "DE", "FR", "ES", "JP", "IN", "BR", "AU", "ZZ", "XX", ""]
    let region = regions[Int(data[0]) % regions.count]
    let value = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    let transform = PhoneTransform(
        columns: [
            PhoneSourceColumn(name: "phone", type: .canonical(.work)),
            PhoneSourceColumn(name: "mobile", type: .canonical(.mobile)),
        ],
        defaultRegion: "US")
    let contact = LegacyPhoneContact(
        tenant: "t", contactKey: "k", region: region, values: [value, value.isEmpty ? nil : "+1 650 253 0000"])
    let outcome = transform.transform(contact)
    precondition(outcome.counts.addsUp && outcome.counts.read == 2, "accounting: \(outcome.counts)")
    for row in outcome.rows {
        precondition(isE164(row.e164), "not E.164: \(row.e164) from \(value.debugDescription)")
        precondition(
            row.extensionDigits.map { $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && !$0.isEmpty } ?? true,
            "extension \(row.extensionDigits ?? "") from \(value.debugDescription)")
    }
    precondition(outcome.rows.isEmpty || outcome.rows.filter(\.isDefault).count == 1, "defaults in \(outcome.rows)")
    return 0
}
