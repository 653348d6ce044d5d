import Foundation

/// Metrics in the Prometheus text exposition format, version 0.0.4 (Prometheus documentation,
/// "Exposition formats"): per family a `# HELP` and a `# TYPE` line, then one line per sample,
/// `name{label="value",…} value`. Families are printed in the order they were added; a family
/// added twice keeps its first HELP and TYPE and collects both sets of samples.
struct PrometheusText {
    enum Kind: String { case gauge, counter }

    struct Sample {
        var labels: [(String, String)]
        var value: Double
    }

    struct Family {
        var name: String
        var help: String
        var kind: Kind
        var samples: [Sample]
    }

    private(set) var families: [Family] = []

    /// Adds one sample of `name` (help is taken from the family's first sample). Names ending
    /// in `_total` are counters, the others gauges, as the naming conventions have it.
    mutating func add(_ name: String, _ help: String, labels: [(String, String)] = [], _ value: Double) {
        let sample = Sample(labels: labels, value: value)
        if let i = families.firstIndex(where: { $0.name == name }) {
            families[i].samples.append(sample)
        } else {
            families.append(Family(name: name, help: help, kind: name.hasSuffix("_total") ? .counter : .gauge, samples: [sample]))
        }
    }

    /// Adds `value` as a sample when it is not nil (an unknown value is left out, not zero).
    mutating func add(_ name: String, _ help: String, labels: [(String, String)] = [], _ value: Double?) {
        guard let value else { return }
        add(name, help, labels: labels, value)
    }

    /// The same metrics with `name="value"` added in front of every sample's labels.
    func labelled(_ name: String, _ value: String) -> PrometheusText {
        var out = self
        for f in out.families.indices {
            for s in out.families[f].samples.indices { out.families[f].samples[s].labels.insert((name, value), at: 0) }
        }
        return out
    }

    mutating func append(_ other: PrometheusText) {
        for f in other.families {
            for s in f.samples { add(f.name, f.help, labels: s.labels, s.value) }
        }
    }

    /// The exposition text, ending in a newline.
    var text: String {
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(Self.escapeHelp(f.help))\n# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.samples {
                out += f.name
                if !s.labels.isEmpty {
                    out += "{" + s.labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                }
                out += " " + Self.format(s.value) + "\n"
            }
        }
        return out
    }

    /// A label value: backslash, double quote and line feed escaped as `\\`, `\"` and `\n`.
    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// HELP text: backslash and line feed escaped.
    static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Integers without a fraction, other values with enough digits to round-trip; `NaN`,
    /// `+Inf`, `-Inf` as the format spells them.
    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
