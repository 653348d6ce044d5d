import BenchmarkSupport
import RepoPrimitives
import RepoRepository

// Deterministic inputs, so every run measures the same bytes. Globals in this file are
// created lazily, on first use: each benchmark runs in its own process and only pays for the
// inputs it touches.

enum Inputs {
    /// Incompressible bytes.
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            let raw = UnsafeMutableRawBufferPointer(buf)
            var i = 0
            while i + 8 <= count {
                raw.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count { buf[i] = UInt8(truncatingIfNeeded: rng.next()); i += 1 }
            n = count
        }
    }

    /// `count` bytes of pg_dump plain-format text: COPY blocks of three tables whose rows look
    /// like Benchmarks/corpus.py's (ids, words, amounts, timestamps, JSON payloads). Compresses
    /// about as well as a real dump (zstd -3 keeps roughly a third).
    static func sqlDump(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var out: [UInt8] = []
        out.reserveCapacity(count + 4096)
        func put(_ s: String) { out.append(contentsOf: s.utf8) }
        func pad2(_ v: UInt64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        func r(_ n: UInt64) -> UInt64 { rng.next() % n }
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
                     "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
        let tables = [("public.orders", "id, customer_id, status, amount, currency, created_at, note"),
                      ("public.events", "id, device, kind, payload, observed_at"),
                      ("public.customers", "id, name, email, country, balance, updated_at")]
        put("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\n")
        var table = 0
        var id = 1
        while out.count < count {
            let (name, columns) = tables[table % tables.count]
            put("COPY \(name) (\(columns)) FROM stdin;\n")
            for _ in 0..<200_000 where out.count < count {
                switch table % tables.count {
                case 0:
                    put("\(id)\t\(1 + r(200_000))\t\(["new", "paid", "shipped", "returned"][Int(r(4))])\t\(1 + r(100_000)).\(pad2(r(100)))\tEUR\t2024-\(pad2(1 + r(12)))-\(pad2(1 + r(28))) \(pad2(r(24))):\(pad2(r(60))):\(pad2(r(60)))+00\t\(words[Int(r(20))]) \(words[Int(r(20))])\n")
                case 1:
                    put("\(id)\tdev-\(10_000 + r(50_000))\t\(["read", "alarm", "heartbeat", "boot"][Int(r(4))])\t{\"t\": \(r(100)).\(r(10)), \"v\": \(r(1 << 20)), \"tag\": \"\(words[Int(r(20))])\"}\t2024-06-\(pad2(1 + r(28))) \(pad2(r(24))):\(pad2(r(60))):\(pad2(r(60))).\(100_000 + r(900_000))+00\n")
                default:
                    let w = words[Int(r(20))]
                    put("\(id)\t\(w.capitalized()) \(words[Int(r(20))].capitalized())\t\(w).\(id)@example.com\t\(["DE", "FR", "NL", "US", "JP", "BR"][Int(r(6))])\t\(r(100_000)).\(pad2(r(100)))\t2024-\(pad2(1 + r(12)))-\(pad2(1 + r(28)))\n")
                }
                id += 1
            }
            put("\\.\n\n")
            table += 1
        }
        out.removeLast(out.count - count)
        return out
    }

    /// Splits `data` into `size`-byte chunks (the last may be shorter).
    static func chunks(_ data: [UInt8], size: Int) -> [[UInt8]] {
        stride(from: 0, to: data.count, by: size).map { Array(data[$0..<min($0 + size, data.count)]) }
    }
}

private extension String {
    func capitalized() -> String { prefix(1).uppercased() + dropFirst() }
}

// MARK: shared inputs

/// A fixed 32-byte key (real repositories draw theirs at random; speed does not depend on it).
let benchmarkKey: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
let benchmarkMaster = MasterKey(encryption: benchmarkKey, blobID: benchmarkKey.reversed(), chunker: benchmarkKey.map { $0 ^ 0x5A })

let random64MiB = Inputs.randomBytes(64 << 20, seed: 1)
let sql64MiB = Inputs.sqlDump(64 << 20, seed: 2)
/// 16 chunks of 1 MiB of SQL text and of random bytes (the default average chunk size).
let sqlChunks = Inputs.chunks(Inputs.sqlDump(16 << 20, seed: 2), size: 1 << 20)
let randomChunks = Inputs.chunks(Inputs.randomBytes(16 << 20, seed: 3), size: 1 << 20)
