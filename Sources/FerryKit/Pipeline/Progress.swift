import Foundation

/// A one-line progress display (rows/s and ETA) on a terminal; silent when stderr is not a TTY.
public final class ProgressLine {
    private let label: String
    private let total: Int?
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool

    public init(label: String, total: Int?, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    public func update(done: Int, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.25 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        let rate = Double(done) / elapsed
        var text = "\(label): \(formatCount(done))"
        if let total, total > 0 {
            let percent = min(100, Double(done) * 100 / Double(total))
            text += " / ~\(formatCount(total)) (\(String(format: "%.0f", percent))%)"
            if rate > 0, done < total {
                text += ", ETA \(formatDuration(Double(total - done) / rate))"
            }
        }
        text += ", \(formatCount(Int(rate)))/s"
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
    }

    public func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}

public func formatCount(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var grouped = ""
    for (offset, character) in digits.enumerated() {
        if offset > 0, (digits.count - offset) % 3 == 0 { grouped.append(",") }
        grouped.append(character)
    }
    return value < 0 ? "-" + grouped : grouped
}

public func formatDuration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    if total >= 3600 { return String(format: "%d:%02d:%02d", total / 3600, total % 3600 / 60, total % 60) }
    return String(format: "%d:%02d", total / 60, total % 60)
}
