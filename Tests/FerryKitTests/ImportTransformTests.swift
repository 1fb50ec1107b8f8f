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

    func transform(header: [String], tenants: [String] = []) throws -> ContactImportTransform {
        let mapping = try mapping()
        let resolved = try ImportHeader.resolve(
            record(1, header), encoding: .utf8, mapping: mapping, file: "f.csv", tenantFromFlag: !tenants.isEmpty)
        return ContactImportTransform(header: resolved, encoding: .utf8, selectedTenants: tenants, mapping: mapping)
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

    @Test func tenantFlagSelectsRowsOrFillsAnEmptyCell() throws {
        let other = "00000000-0000-4000-8000-000000000002"
        let one = try transform(header: ["Tenant", "Full Name", "Email"], tenants: [Self.tenant])
        guard case .contact(let filled) = one.transform(record(2, ["", "Ada", "a@example.com"])) else {
            Issue.record("an empty tenant cell takes the one --tenant")
            return
        }
        #expect(filled.tenant == Self.tenant)
        #expect(one.transform(record(3, [other, "Ada", "a@example.com"])) == .otherTenant(line: 3, tenant: other))
        #expect(one.transform(record(4, ["not-a-uuid", "Ada", "a@example.com"])).isRejected)

        let two = try transform(header: ["Tenant", "Full Name", "Email"], tenants: [Self.tenant, other.uppercased()])
        guard case .contact(let second) = two.transform(record(5, [other, "Ada", "a@example.com"])) else {
            Issue.record("a selected tenant's row loads")
            return
        }
        #expect(second.tenant == other)
        guard case .rejected(_, let reason) = two.transform(record(6, ["", "Ada", "a@example.com"])) else {
            Issue.record("with several --tenant an empty cell has no tenant")
            return
        }
        #expect(reason.hasPrefix("invalid tenant: tenant is empty (several --tenant given"))

        let none = try transform(header: ["Full Name", "Email"], tenants: [Self.tenant])
        guard case .contact(let assigned) = none.transform(record(7, ["Ada", "a@example.com"])) else {
            Issue.record("without a tenant column every row goes to the --tenant")
            return
        }
        #expect(assigned.tenant == Self.tenant)
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

extension ImportRowOutcome {
    var isRejected: Bool {
        if case .rejected = self { return true }
        return false
    }
}
