import Testing
import Foundation
@testable import FerryKit

@Test func scratchDump() throws {
    let dirs = ["../shared/corpora/csv/csv-spectrum/csvs", "../shared/corpora/csv/csv-spectrum/unmerged-prs/csvs", "../shared/corpora/csv/csvkit-examples-edge"]
    for dir in dirs {
        for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where !name.hasSuffix(".txt") {
            let path = dir + "/" + name
            var out = "== \(name): "
            do {
                let reader = try CSVReader(path: path)
                out += "[\(reader.encoding)] "
                while let item = try reader.next() {
                    switch item {
                    case .blankLine(let line): out += " <blank \(line)>"
                    case .record(let r): out += " L\(r.line):" + (0..<r.count).map { i in (try? FieldText.decode(r[i], as: reader.encoding)).map { "\"\($0.debugDescription.dropFirst().dropLast())\"" } ?? "!ERR" }.joined(separator: ",")
                    }
                }
            } catch { out += " ERROR \(error)" }
            FileHandle.standardError.write(Data((out + "\n").utf8))
        }
    }
}
