import FerryKit
import FuzzSupport

/// libFuzzer: mapping files through the loader and validation of every job (the first byte picks the
/// job, so each input costs one YAML parse). A mapping either loads or fails with a MappingError that
/// names the file; nothing else may escape, and nothing may crash.
@_cdecl("FuzzMapping_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzMapping)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMapping(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // Bytes that are not UTF-8 are refused before YAML sees them (a unit test covers where).
    guard size > 0, let text = String(validating: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    else { return 0 }
    let file = "fuzz.yaml"
    let loaders: [() throws -> Void] = [
        { _ = try PhonesMapping(file: file, text: text) }, { _ = try ContactsCSVMapping(file: file, text: text) },
        { _ = try CustomersMapping(file: file, text: text) },
        { _ = try ServiceRequestsMapping(file: file, text: text) },
    ]
    do {
        try loaders[Int(data[0]) % loaders.count]()
    } catch let error as MappingError {
        precondition(error.file == file, "the error names another file: \(error)")
    } catch {
        preconditionFailure("not a MappingError: \(type(of: error)) \(error)")
    }
    return 0
}
