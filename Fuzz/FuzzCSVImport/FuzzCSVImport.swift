import FerryKit
import FuzzSupport
import Foundation

private let mapping: ContactsCSVMapping = {
    let text = """
        job: contacts-csv
        file:
          max_fields: 50
          max_record_bytes: 65536
        tenant:
          header: [Tenant]
        fields:
          full_name: [Full Name]
          email: [Email]
          organization: [Company]
        phones:
          default_region: US
          region_header: [Country]
          columns:
            - headers: [Phone]
              type: work
            - headers: [Mobile]
              type: mobile
        """
    return try! ContactsCSVMapping(file: "fuzz.yaml", text: text)
}()

/// libFuzzer: CSV bytes through the strict reader, header resolution, decoding and the import
/// transform. A file is refused as a whole (CSVSyntaxError / ImportFileError) or every record gets
/// exactly one outcome, its lines rising; no other error escapes, nothing crashes.
@_cdecl("FuzzCSVImport_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzCSVImport)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSVImport(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = "/dev/shm/ferry-fuzz-csv-\(getpid()).csv"
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size)) else { return 0 }
    do {
        let reader = try CSVReader(path: path, dialect: mapping.dialect, encoding: nil, limits: mapping.limits)
        var header: CSVRecord?
        var records: [CSVRecord] = []
        var lastLine = 0
        while let item = try reader.next() {
            let line: Int
            switch item {
            case .blankLine(let blank): line = blank
            case .record(let record):
                line = record.line
                if header == nil { header = record } else { records.append(record) }
            }
            precondition(line > lastLine, "lines must rise: \(line) after \(lastLine)")
            lastLine = line
        }
        guard let header else { return 0 }
        let resolved = try ImportHeader.resolve(
            header, encoding: reader.encoding, mapping: mapping, file: path, tenantFromFlag: false)
        let selected = "00000000-0000-4000-8000-000000000001"
        let every = ContactImportTransform(
            header: resolved, encoding: reader.encoding, selectedTenants: [], mapping: mapping)
        let one = ContactImportTransform(
            header: resolved, encoding: reader.encoding, selectedTenants: [selected], mapping: mapping)
        for record in records {
            for (transform, only) in [(every, nil), (one, selected)] {
                switch transform.transform(record) {
                case .rejected(let line, let reason):
                    precondition(line == record.line && !reason.isEmpty, "a rejection names its line and reason")
                case .otherTenant(let line, let tenant):
                    precondition(only != nil && line == record.line && tenant != only, "skipped only when not selected")
                case .contact(let contact):
                    precondition(contact.line == record.line && !contact.email.isEmpty)
                    precondition(only == nil || contact.tenant == only, "a selected run loads only its tenant")
                    precondition(contact.phones.counts.addsUp, "phone accounting: \(contact.phones.counts)")
                    precondition(contact.phones.rows.allSatisfy { isE164($0.e164) })
                }
            }
        }
    } catch is CSVSyntaxError {
    } catch is ImportFileError {
    } catch {
        preconditionFailure("unexpected error: \(type(of: error)) \(error)")
    }
    return 0
}
