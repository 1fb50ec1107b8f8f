/// The plan report as one self-contained HTML file (no external assets) with inline SVG charts,
/// readable at 1280 px, that a DBA can open from an email attachment.
enum PlanReportHTML {
    static func render(_ report: PlanReport) -> String {
        let header = report.header
        var body = "<h1>\(e(report.title))</h1><p class=note>\(e(report.changeNote))</p>"
        body += "<div class=summary>" + report.summaryLines.map { "<div>\(e($0))</div>" }.joined() + "</div>"
        body += "<table class=kv>"
        body += row(
            ["mapping", "<code>\(e(header.mappingFile))</code> (sha256 <code>\(e(header.mappingSHA256))</code>)"],
            raw: true)
        body += row(["database", e(report.databaseText)], raw: true)
        body += row(["generated", e("\(header.generatedAt) by ferry \(header.ferryVersion)")], raw: true)
        body += row(["apply", e(report.batchesText)], raw: true)
        body += row(["duration", e(report.estimateText)], raw: true)
        body += row(["locks", header.locks.map(e).joined(separator: "<br>")], raw: true)
        body += "</table>"

        body +=
            "<h2>Tables</h2><table><tr><th>table<th class=n>insert<th class=n>update<th class=n>delete<th class=n>unchanged</tr>"
        for t in report.tables {
            body += row(
                ["<code>\(e(t.table))</code>"] + [t.insert, t.update, t.delete, t.unchanged].map { formatCount($0) },
                raw: true, numericFrom: 1)
        }
        body += "</table>"

        body += "<h2>Tenants</h2>" + tenantChart(report.tenants, labels: report.tenantLabels)
        body += "<table><tr><th>tenant" + report.tenantLabels.map { "<th class=n>\(e($0))" }.joined() + "</tr>"
        for t in report.tenants {
            let c = t.counts
            body += row(
                [(t.name.map { "\(e($0)) " } ?? "") + "<code>\(e(t.tenant))</code>"]
                    + [
                        c.contactsScanned, c.contactsWithNumbers, c.rowsToInsert, c.valuesRejected,
                        c.contactsSkippedExisting,
                    ].map { formatCount($0) }, raw: true, numericFrom: 1)
        }
        body += "</table>"

        body += "<h2>Anomalies</h2>" + barChart(report.anomalies.map { ($0.name, $0.count) })
        body += "<table><tr><th>class<th class=n>count<th>examples</tr>"
        for a in report.anomalies {
            let examples = a.examples.prefix(3).map {
                "<code>\(e($0.contactKey))</code> \(e(quotedRaw($0.raw))) → \(e($0.detail))\(e($0.occurrencesText))"
            }
            body += row(
                [e(a.name), formatCount(a.count), examples.joined(separator: "<br>")], raw: true, numericFrom: 1,
                numericTo: 1)
        }
        body += "</table>"
        if let organizations = report.organizationsToCreate, !organizations.isEmpty {
            body +=
                "<h2>Organizations to create (\(formatCount(organizations.count)))</h2><ul>"
                + organizations.map { "<li>\(e($0))" }.joined() + "</ul>"
        }
        for listing in report.listings ?? [] {
            body +=
                "<h2>\(e(listing.title)) (\(formatCount(listing.total)))</h2><ul>"
                + listing.entries.map { "<li>\(e($0))" }.joined() + (listing.moreText.map { "<li>\(e($0))" } ?? "")
                + "</ul>"
        }
        if !report.customTypesToCreate.isEmpty {
            body +=
                "<h2>Custom phone types to create</h2><ul>" + report.customTypesToCreate.map { "<li>\(e($0))" }.joined()
                + "</ul>"
        }

        body += "<h2>Samples, before → after</h2><table><tr><th>contact<th>why<th>before<th>after</tr>"
        for s in report.samples {
            let before = s.legacyValues.sorted { $0.key < $1.key }.map {
                "\(e($0.key)): <code>\(e(shownValue($0.value)))</code>"
            }
            let after =
                s.after.map { $0.map(e) }
                ?? (s.rows.isEmpty
                    ? ["<i>no phone rows</i>"]
                    : s.rows.map {
                        "<code>\(e($0.phoneNumber))</code>\($0.extensionDigits.map { " ext. \(e($0))" } ?? "") \(e($0.type))\($0.isDefault ? " <b>default</b>" : "")"
                    })
            body += row(
                [
                    "<code>\(e(s.tenant))/\(e(s.contactKey))</code>", e(s.classes.joined(separator: ", ")),
                    before.joined(separator: "<br>"), after.joined(separator: "<br>"),
                ], raw: true)
        }
        body += "</table>"

        body += "<h2>Constraint checks</h2><table><tr><th>constraint<th class=n>violations</tr>"
        for c in report.checks {
            let mark =
                c.verdict == .held
                ? "<span class=ok>✓</span>" : c.verdict == .violated ? "<span class=bad>✗</span>" : c.verdict.rawValue
            body +=
                "<tr><td>\(mark) \(e(c.constraint))<td class=n>\(c.explanationText.map(e) ?? String(c.violations))</tr>"
        }
        body += "</table><h2>Accounting</h2>"
        for a in report.accounting {
            body +=
                "<p><code>\(e(a.sourceTable))</code>: read \(formatCount(a.read)) = to load \(formatCount(a.toLoad)) + rejected \(formatCount(a.rejected)) + skipped \(formatCount(a.skipped))\(e(a.skippedParts)) "
                + (a.addsUp ? "<span class=ok>✓ adds up</span>" : "<span class=bad>✗ does not add up</span>") + "</p>"
        }
        if let statements = report.statements {
            body +=
                "<h2>Appendix: the SQL apply runs (once per session, then per batch)</h2>"
                + statements.map { "<pre class=sql>\(e($0))</pre>" }.joined()
        }
        body +=
            "<h2>Sign-off</h2><div class=signoff>" + report.signOffLines.map { "<div>\(e($0))</div>" }.joined()
            + "</div>"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(report.title))</title>
            <style>
            body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;max-width:1200px;margin:24px auto;padding:0 20px}
            h1{font-size:24px;margin:0 0 4px}.summary{border:2px solid #1d2330;border-radius:6px;padding:10px 14px;margin:12px 0;font-weight:600;background:#f8fafc}
            .signoff{border:1px dashed #8a93a5;padding:10px 14px;line-height:2}
            pre.sql{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f4f6f9;padding:8px 10px;border-radius:4px;white-space:pre-wrap}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
            table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceff4;vertical-align:top}
            th{background:#f4f6f9;font-weight:600}.n{text-align:right;font-variant-numeric:tabular-nums}
            code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f4f6f9;padding:1px 4px;border-radius:3px;word-break:break-all}
            .kv td:first-child{width:110px;font-weight:600}.note{color:#4a5568}.ok{color:#1b7f3b;font-weight:700}.bad{color:#c53030;font-weight:700}
            svg{display:block;margin:8px 0}svg text{font:12px system-ui,sans-serif;fill:#1d2330}
            </style></head><body>
            \(body)
            </body></html>

            """
    }

    /// A horizontal bar chart: one bar per class, labelled with its count.
    static func barChart(_ bars: [(String, Int)]) -> String {
        guard let maximum = bars.map(\.1).max(), maximum > 0 else { return "" }
        let rowHeight = 22, labelWidth = 300, barWidth = 760
        var svg =
            "<svg role=img aria-label=\"anomalies by class\" width=\"\(labelWidth + barWidth + 80)\" height=\"\(bars.count * rowHeight + 8)\">"
        for (index, bar) in bars.enumerated() {
            let y = index * rowHeight + 4
            let width = max(2, bar.1 * barWidth / maximum)
            let colour = bar.0.hasPrefix("rejected") ? "#e07a5f" : "#3d7ea6"
            // The label column is 300 px: a long class name is cut there, whole in its tooltip and in the table below.
            let label = bar.0.count > 42 ? String(bar.0.prefix(41)) + "…" : bar.0
            svg +=
                "<text x=\"\(labelWidth - 8)\" y=\"\(y + 14)\" text-anchor=\"end\"><title>\(e(bar.0))</title>\(e(label))</text>"
            svg +=
                "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(width)\" height=\"\(rowHeight - 6)\" rx=\"2\" fill=\"\(colour)\"/>"
            svg += "<text x=\"\(labelWidth + width + 6)\" y=\"\(y + 14)\">\(formatCount(bar.1))</text>"
        }
        return svg + "</svg>"
    }

    /// Per tenant: the first, third and fourth counts (for phones: contacts, rows to insert, values rejected), side by side.
    static func tenantChart(_ tenants: [PlanReport.TenantRow], labels: [String]) -> String {
        let series: [(String, String, (TenantCounts) -> Int)] = [
            (labels[0], "#9aa5b1", { $0.contactsScanned }), (labels[2], "#3d7ea6", { $0.rowsToInsert }),
            (labels[3], "#e07a5f", { $0.valuesRejected }),
        ]
        guard let maximum = tenants.flatMap({ t in series.map { $0.2(t.counts) } }).max(), maximum > 0 else {
            return ""
        }
        let group = 3 * 18 + 14, labelWidth = 300, barWidth = 760
        var svg =
            "<svg role=img aria-label=\"volumes per tenant\" width=\"\(labelWidth + barWidth + 80)\" height=\"\(tenants.count * group + 30)\">"
        for (offset, entry) in series.enumerated() {
            svg +=
                "<rect x=\"\(labelWidth + offset * 150)\" y=\"4\" width=\"12\" height=\"12\" fill=\"\(entry.1)\"/><text x=\"\(labelWidth + offset * 150 + 18)\" y=\"14\">\(entry.0)</text>"
        }
        for (index, tenant) in tenants.enumerated() {
            let top = 26 + index * group
            svg +=
                "<text x=\"\(labelWidth - 8)\" y=\"\(top + 30)\" text-anchor=\"end\">\(e(String((tenant.name ?? tenant.tenant).suffix(36))))</text>"
            for (offset, entry) in series.enumerated() {
                let value = entry.2(tenant.counts)
                let width = max(2, value * barWidth / maximum)
                let y = top + offset * 18
                svg +=
                    "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(width)\" height=\"14\" rx=\"2\" fill=\"\(entry.1)\"/>"
                svg += "<text x=\"\(labelWidth + width + 6)\" y=\"\(y + 12)\">\(formatCount(value))</text>"
            }
        }
        return svg + "</svg>"
    }

    private static func row(
        _ cells: [String], raw: Bool, numericFrom: Int = Int.max, numericTo: Int = Int.max
    ) -> String {
        "<tr>"
            + cells.enumerated().map { index, text in
                "<td\(index >= numericFrom && index <= numericTo ? " class=n" : "")>\(raw ? text : e(text))"
            }.joined() + "</tr>"
    }

    /// HTML-escapes text from the database: legacy values are arbitrary.
    static func e(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
