import Foundation

/// A one-line progress display (rows/s and ETA) on a terminal; silent when stderr is not a TTY.
public final class ProgressLine {
    private let label: String
    private let total: Int?
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let enabled: Bool
    /// Rows done before this process started (a resumed run): counted in the total, not in the rate.
    private let alreadyDone: Int

    public init(label: String, total: Int?, enabled: Bool = isatty(STDERR_FILENO) == 1, alreadyDone: Int = 0) {
        self.label = label
        self.total = total
        self.enabled = enabled
        self.alreadyDone = alreadyDone
    }

    public func update(done: Int, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.25 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(start), 0.001)
        FileHandle.standardError.write(
            Data(
                ("\r\u{1B}[2K" + Self.fitted(text(done: done, elapsed: elapsed), columns: Self.terminalColumns())).utf8)
        )
    }

    /// "phones: 12,000 / ~50,000 (24%), ETA 0:31, 1,200/s"; `done` counts this process's rows only.
    func text(done: Int, elapsed: Double) -> String {
        let rate = Double(done) / elapsed
        let all = alreadyDone + done
        var text = "\(label): \(formatCount(all))"
        if let total, total > 0 {
            let percent = min(100, Double(all) * 100 / Double(total))
            text += " / ~\(formatCount(total)) (\(String(format: "%.0f", percent))%)"
            if rate > 0, all < total {
                text += ", ETA \(formatDuration(Double(total - all) / rate))"
            }
        }
        text += ", \(formatCount(Int(rate)))/s"
        if alreadyDone > 0 { text += " (resumed after \(formatCount(alreadyDone)))" }
        return text
    }

    /// A line longer than the terminal wraps, and "\r" then redraws only its last part.
    static func fitted(_ text: String, columns: Int?) -> String {
        guard let columns, columns > 1, text.count >= columns else { return text }
        return String(text.prefix(columns - 2)) + "…"
    }

    static func terminalColumns() -> Int? {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
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
