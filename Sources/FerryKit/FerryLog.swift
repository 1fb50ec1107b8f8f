import Foundation
import Logging

/// ferry's events (run started and finished, batches, retries, pauses, resumes, errors) go through
/// swift-log; the command line decides how they look (`--log-format text|json`, `-q`, `-v`).
public enum FerryLog {
    public static let logger = Logger(label: "ferry")

    /// A note for the operator: printed unless --quiet.
    @Sendable public static func note(_ message: String) { logger.notice("\(message)") }
}

/// What the command line installs: text ("ferry: message", the event's fields after it) or one JSON
/// object per event, on standard error.
public struct FerryLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let format: Format

    public init(format: Format, level: Logger.Level) {
        self.format = format
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }
        let text = Self.line(level: event.level, message: "\(event.message)", fields: fields, format: format)
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func line(
        level: Logger.Level, message: String, fields: Logger.Metadata, format: Format, now: Date = Date()
    ) -> String {
        switch format {
        case .text:
            let prefix = level >= .error ? "error: " : level >= .warning ? "ferry: warning: " : "ferry: "
            let extra = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return prefix + message + (extra.isEmpty ? "" : " (\(extra))")
        case .json:
            var object: [String: Any] = [
                "time": ISO8601DateFormatter().string(from: now), "level": level.rawValue, "event": message,
            ]
            for (key, value) in fields { object[key] = jsonValue(value) }
            let data =
                (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// A field as JSON: whole numbers and true/false typed (a log pipeline sums and filters them),
    /// nested metadata as objects and arrays, everything else a string.
    static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text):
            if let number = Int(text), String(number) == text { return number }
            if text.contains("."), text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                let number = Double(text)
            {
                return number
            }
            if text == "true" || text == "false" { return text == "true" }
            return text
        case .stringConvertible(let convertible): return jsonValue(.string(convertible.description))
        case .array(let values): return values.map(jsonValue)
        case .dictionary(let fields): return fields.mapValues(jsonValue)
        }
    }
}
