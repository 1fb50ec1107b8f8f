import Foundation
import Testing
@testable import FerryKit

@Suite("CSV import transform (no database)")
struct ImportTransformTests {
    static let tenant = "00000000-0000-4000-8000-000000000001"

    func mapping() throws -> ContactsCSVMapping {
        try ContactsCSVMapping.load(path: packageRoot.appendingPathComponent("mappings/contacts-csv.yaml").path)
    }

    func record(_ line: Int, _ fields: [String]) -> CSVRecord {
        CSVRecord(line: line, fields: fields.map { Array($0.utf8) })
    }

    func transform(header: [String], tenantFlag: String? = nil) throws -> ContactImportTransform {
        let mapping = try mapping()
        let resolved = try ImportHeader.resolve(
            record(1, header), encoding: .utf8, mapping: mapping, file: "f.csv",
            tenantFromFlag: tenantFlag != nil)
        return ContactImportTransform(header: resolved, encoding: .utf8, tenantFromFlag: tenantFlag, mapping: mapping)
    }

    @Test func headerAliasesIgnoreCaseAndSpacing() throws {
        let header = try ImportHeader.resolve(
            record(3, ["TENANT", "full  name", "E-Mail", "office phone", "Extra"]), encoding: .utf8,
            mapping: try mapping(), file: "f.csv", tenantFromFlag: false)
        #expect(header.fieldIndex[.fullName] == 1)
        #expect(header.fieldIndex[.email] == 2)
        #expect(header.tenantIndex == 0)
        #expect(header.phoneIndexes == [3, nil, nil, nil])
        #expect(header.ignored == ["Extra"])
        #expect(header.line == 3)
    }

    @Test func missingRequiredHeaderNamesWhatItLookedFor() throws {
        #expect {
            _ = try ImportHeader.resolve(
                record(1, ["Tenant", "Name"]), encoding: .utf8, mapping: try mapping(), file: "f.csv",
                tenantFromFlag: false)
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("f.csv:1: missing required header: email (one of: Email, E-mail, Email Address)")
                && text.contains("the file has: 'Tenant', 'Name'")
        }
    }

    @Test func twoColumnsForOneFieldIsAnError() throws {
        #expect(throws: ImportFileError.self) {
            _ = try ImportHeader.resolve(
                record(1, ["Tenant", "Name", "Full Name", "Email"]), encoding: .utf8, mapping: try mapping(),
                file: "f.csv", tenantFromFlag: false)
        }
    }

    @Test func aGoodRowBecomesAContactWithNormalizedPhones() throws {
        let t = try transform(header: ["Tenant", "Full Name", "Email", "Office Phone", "Mobile", "Notes"])
        guard
            case .contact(let contact) = t.transform(
                record(2, [Self.tenant.uppercased(), " Ada ", " Ada@Example.COM ", "(212) 555-0100 x12", "n/a", ""]))
        else {
            Issue.record("rejected")
            return
        }
        #expect(contact.tenant == Self.tenant)
        #expect(contact.email == "ada@example.com")
        #expect(contact.fullName == " Ada ")
        #expect(contact.notes == nil)
        #expect(contact.phones.rows.map(\.e164) == ["+12125550100"])
        #expect(contact.phones.rows.first?.extensionDigits == "12")
        #expect(contact.phones.rows.first?.isDefault == true)
    }

    @Test(arguments: [
        (["x", "Ada", "a@example.com", ""], "invalid tenant: 'x' is not a UUID"),
        ([tenant, "Ada", "no-at.example.com", ""], "invalid email: email has no @: 'no-at.example.com'"),
        ([tenant, "", "a@example.com", ""], "missing full_name: full_name is empty"),
        (
            [tenant, "Ada", "a@example.com", "call reception"],
            "invalid phone: column 'Office Phone': 'call reception' is not a phone number (not a number)"
        ),
        ([tenant, "Ada", "a@example.com"], "wrong number of fields: has 3 fields, the header has 4"),
    ])
    func rejectedRowsSayWhy(fields: [String], reason: String) throws {
        let t = try transform(header: ["Tenant", "Full Name", "Email", "Office Phone"])
        #expect(t.transform(record(7, fields)) == .rejected(line: 7, reason: reason))
    }

    @Test func tenantFlagAndColumnMustAgree() throws {
        let t = try transform(header: ["Tenant", "Full Name", "Email"], tenantFlag: Self.tenant)
        #expect(t.transform(record(2, ["", "Ada", "a@example.com"])).line == 2)
        if case .rejected = t.transform(record(2, ["", "Ada", "a@example.com"])) {
            Issue.record("an empty tenant cell takes the flag")
        }
        guard
            case .rejected(_, let reason) = t.transform(
                record(3, ["00000000-0000-4000-8000-000000000002", "Ada", "a@example.com"]))
        else {
            Issue.record("a different tenant must be rejected")
            return
        }
        #expect(reason.hasPrefix("invalid tenant: tenant '00000000-0000-4000-8000-000000000002' differs from --tenant"))
    }

    @Test(arguments: [
        ("  Bob@Example.com ", "bob@example.com"), ("a@b.co", "a@b.co"),
    ])
    func emailsCanonicalize(raw: String, canonical: String) {
        #expect(EmailAddress.canonical(raw) == .success(canonical))
    }

    @Test(arguments: ["", "a@", "@b.com", "a@b", "a b@c.com", "a@@b.com", "a@-b.com", "a@b..com"])
    func malformedEmailsAreRejected(raw: String) {
        if case .success = EmailAddress.canonical(raw) { Issue.record("\(raw) accepted") }
    }
}
