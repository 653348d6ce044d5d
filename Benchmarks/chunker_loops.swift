// Same-process A/B of FastCDC inner loops: the byte-at-a-time loop repo used before, the
// two-bytes-per-step loop it uses now (Sources/RepoPrimitives/Chunker.swift), and a
// four-bytes-per-step variant that measured no faster. All three must cut at the same places
// ("agree: true"). Gear table and data are random; parameters are repo's defaults (256 KiB avg).
//
//   swiftc -O Benchmarks/chunker_loops.swift -o /tmp/chunker_loops && /tmp/chunker_loops
//
// The shared build machine's speed swings between processes, which is why the loops are
// compared inside one process, three times over.
import Foundation

var rng = SystemRandomNumberGenerator()
let gear = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
for i in 0..<256 { gear[i] = rng.next() }
let n = 64 << 20
let data = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
for i in 0..<n { data[i] = UInt8(truncatingIfNeeded: rng.next() as UInt64) }
let minS = 64 << 10, avg = 256 << 10, maxS = 1 << 20
let bits = avg.trailingZeroBitCount
let ms = ~UInt64(0) << UInt64(64 - (bits + 2)), ml = ~UInt64(0) << UInt64(64 - (bits - 2))

@inline(never) func cut1(_ p: UnsafePointer<UInt8>, _ len: Int) -> Int {
    if len <= minS { return len }
    let limit = min(len, maxS), normal = min(avg, limit)
    var fp: UInt64 = 0; var i = minS
    while i < normal { fp = (fp &<< 1) &+ gear[Int(p[i])]; if fp & ms == 0 { return i + 1 }; i += 1 }
    while i < limit { fp = (fp &<< 1) &+ gear[Int(p[i])]; if fp & ml == 0 { return i + 1 }; i += 1 }
    return limit
}

@inline(__always) func scan2(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int, _ fp: inout UInt64, _ mask: UInt64) -> Int? {
    let g = gear; var f = fp, k = i
    while k &+ 1 < end {
        let a = g[Int(p[k])], b = g[Int(p[k &+ 1])]
        let f1 = (f &<< 1) &+ a
        let f2 = (f &<< 2) &+ ((a &<< 1) &+ b)
        if (f1 & mask) == 0 || (f2 & mask) == 0 { return (f1 & mask) == 0 ? k &+ 1 : k &+ 2 }
        f = f2; k &+= 2
    }
    if k < end { f = (f &<< 1) &+ g[Int(p[k])]; if f & mask == 0 { return k &+ 1 }; k &+= 1 }
    fp = f; i = k; return nil
}
@inline(never) func cut2(_ p: UnsafePointer<UInt8>, _ len: Int) -> Int {
    if len <= minS { return len }
    let limit = min(len, maxS), normal = min(avg, limit)
    var fp: UInt64 = 0; var i = minS
    if let c = scan2(p, &i, normal, &fp, ms) { return c }
    if let c = scan2(p, &i, limit, &fp, ml) { return c }
    return limit
}

@inline(__always) func scan2m(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int, _ fp: inout UInt64, _ mask: UInt64) -> Int? {
    let g = gear; var f = fp, k = i
    while k &+ 1 < end {
        let a = g[Int(p[k])], b = g[Int(p[k &+ 1])]
        let f1 = (f &<< 1) &+ a
        let f2 = (f &<< 2) &+ ((a &<< 1) &+ b)
        if Swift.min(f1 & mask, f2 & mask) == 0 { return (f1 & mask) == 0 ? k &+ 1 : k &+ 2 }
        f = f2; k &+= 2
    }
    if k < end { f = (f &<< 1) &+ g[Int(p[k])]; if f & mask == 0 { return k &+ 1 }; k &+= 1 }
    fp = f; i = k; return nil
}
@inline(never) func cut2m(_ p: UnsafePointer<UInt8>, _ len: Int) -> Int {
    if len <= minS { return len }
    let limit = min(len, maxS), normal = min(avg, limit)
    var fp: UInt64 = 0; var i = minS
    if let c = scan2m(p, &i, normal, &fp, ms) { return c }
    if let c = scan2m(p, &i, limit, &fp, ml) { return c }
    return limit
}
@inline(__always) func scan4(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int, _ fp: inout UInt64, _ mask: UInt64) -> Int? {
    let g = gear; var f = fp, k = i
    while k &+ 3 < end {
        let a = g[Int(p[k])], b = g[Int(p[k &+ 1])], c = g[Int(p[k &+ 2])], d = g[Int(p[k &+ 3])]
        let ab = (a &<< 1) &+ b
        let abc = (ab &<< 1) &+ c
        let abcd = (abc &<< 1) &+ d
        let f1 = (f &<< 1) &+ a
        let f2 = (f &<< 2) &+ ab
        let f3 = (f &<< 3) &+ abc
        let f4 = (f &<< 4) &+ abcd
        if Swift.min(Swift.min(f1 & mask, f2 & mask), Swift.min(f3 & mask, f4 & mask)) == 0 {
            if (f1 & mask) == 0 { return k &+ 1 }
            if (f2 & mask) == 0 { return k &+ 2 }
            if (f3 & mask) == 0 { return k &+ 3 }
            return k &+ 4
        }
        f = f4; k &+= 4
    }
    while k < end { f = (f &<< 1) &+ g[Int(p[k])]; if f & mask == 0 { return k &+ 1 }; k &+= 1 }
    fp = f; i = k; return nil
}
@inline(never) func cut4(_ p: UnsafePointer<UInt8>, _ len: Int) -> Int {
    if len <= minS { return len }
    let limit = min(len, maxS), normal = min(avg, limit)
    var fp: UInt64 = 0; var i = minS
    if let c = scan4(p, &i, normal, &fp, ms) { return c }
    if let c = scan4(p, &i, limit, &fp, ml) { return c }
    return limit
}

func run(_ name: String, _ f: (UnsafePointer<UInt8>, Int) -> Int) -> [Int] {
    var cuts: [Int] = []
    let t0 = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<3 {
        cuts = []
        var off = 0
        while off < n { let c = f(UnsafePointer(data + off), n - off); cuts.append(c); off += c }
    }
    let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    print(name, String(format: "%.0f MB/s", Double(3 * n) / dt / 1e6), cuts.count)
    return cuts
}
for _ in 0..<3 {
    let a = run("1-byte", cut1), b = run("2-byte", cut2), d = run("2-byte, one min test", cut2m), c = run("4-byte", cut4)
    print("agree:", a == b && b == c && c == d)
}
