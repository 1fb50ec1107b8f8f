import Testing
@testable import FerryKit

@Suite("Contract verdicts and tenant isolation settings (no database)")
struct ContractVerdictTests {
    let transform = PhoneTransform(
        columns: [PhoneSourceColumn(name: "phone_number", type: .canonical(.work))], defaultRegion: "US")

    func verdict(_ raw: String?, _ rows: [(String, String?)]) -> LegacyValueVerdict {
        let contact = LegacyPhoneContact(tenant: "t", contactKey: "k", values: [raw], alreadyHasPhones: true)
        return transform.contractVerdict(
            contact, existing: Set(rows.map { PhoneTransform.phoneRowKey(e164: $0.0, extension: $0.1) }))
    }

    @Test func aValueWhoseNumbersAreAllInThePhoneRowsIsMigrated() {
        #expect(verdict("(415) 555-0100", [("+14155550100", nil)]) == .migrated)
        #expect(verdict("415-555-0100 / 415-555-0101", [("+14155550101", nil), ("+14155550100", nil)]) == .migrated)
        // The contact having phones does not matter: the value itself is judged (alreadyHasPhones is ignored).
    }

    @Test func aNumberMissingFromThePhoneRowsIsNamed() {
        #expect(verdict("415-555-0100 / 415-555-0101", [("+14155550100", nil)]) == .missing(numbers: ["+14155550101"]))
        // An extension is part of the number: the row without it does not hold the value.
        #expect(verdict("415-555-0100 ext. 12", [("+14155550100", nil)]) == .missing(numbers: ["+14155550100 ext. 12"]))
        #expect(verdict("415-555-0100 ext. 12", [("+14155550100", "12")]) == .migrated)
    }

    @Test func anUnreadableValueIsRejectedWithItsReason() {
        guard case .rejected(let reason) = verdict("12345", []) else { Issue.record("not rejected"); return }
        #expect(reason.contains("phone_number '12345'"))
        // Part of a value lost is a loss too, even when the rest is migrated.
        let british = PhoneTransform(
            columns: [PhoneSourceColumn(name: "phone_number", type: .canonical(.work))], defaultRegion: "GB")
        let contact = LegacyPhoneContact(tenant: "t", contactKey: "k", values: ["020 7946 0958 / 07700 900123"])
        let loaded = british.transform(contact).rows.map {
            PhoneTransform.phoneRowKey(e164: $0.e164, extension: $0.extensionDigits)
        }
        #expect(loaded.count == 1)
        guard case .rejected(let part) = british.contractVerdict(contact, existing: Set(loaded)) else {
            Issue.record("part not rejected"); return
        }
        #expect(part.hasPrefix("part of phone_number '020 7946 0958 / 07700 900123'"))
    }

    @Test func placeholdersAndEmptyValuesHoldNothingToMigrate() {
        #expect(verdict("n/a", []) == .nothingToMigrate)
        #expect(verdict("   ", []) == .nothingToMigrate)
        #expect(verdict("", []) == .nothingToMigrate)
        #expect(verdict(nil, []) == .nothingToMigrate)
        #expect(!LegacyValueVerdict.missing(numbers: ["+1"]).isMigrated)
    }

    @Test func rowLevelSecurityIsOnByDefaultAndCanBeTurnedOff() throws {
        #expect(
            try PhonesMapping(file: "m.yaml", text: MappingTests.minimal).isolation.tenantSetting
                == "app.current_tenant")
        let custom = try PhonesMapping(
            file: "m.yaml", text: MappingTests.minimal + "\nsecurity:\n  tenant_setting: crm.tenant_id\n")
        #expect(custom.isolation.tenantSetting == "crm.tenant_id")
        let off = try PhonesMapping(
            file: "m.yaml", text: MappingTests.minimal + "\nsecurity:\n  row_level_security: false\n")
        #expect(off.isolation.tenantSetting == nil)
        #expect(
            off.isolation.policySQL(TableName(schema: nil, name: "t"), tenantColumn: "tenant", tenantType: "uuid")
                .isEmpty)
        let sql = custom.isolation.policySQL(
            TableName(schema: nil, name: "t"), tenantColumn: "tenant", tenantType: "uuid")
        #expect(sql.contains("ENABLE ROW LEVEL SECURITY"))
        #expect(sql.contains("nullif(current_setting('crm.tenant_id', true), '')::uuid"))
    }

    @Test func aSettingNameThatIsNotPlainIsAnErrorWithALine() {
        for bad in ["current_tenant", "app.tenant'; DROP TABLE x; --", "app..x", "1app.x"] {
            #expect {
                try PhonesMapping(
                    file: "m.yaml", text: MappingTests.minimal + "\nsecurity:\n  tenant_setting: \"\(bad)\"\n")
            } throws: { error in
                let message = String(describing: error)
                return message.contains("m.yaml:9") && message.contains("tenant_setting")
            }
        }
    }
}
