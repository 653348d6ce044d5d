public import RepoPrimitives
public import RepoIndex

/// Which parts of which packs to read for a window of a stream's chunks (`Dump`): the blobs it
/// needs, grouped per pack into regions that one ranged read each fetches
/// (`Repository.loadBlobs(inOnePack:reader:)`).
///
/// A stream stored by several workers alternates between as many packs, so the chunks of a
/// stretch of the stream lie in a few packs, interleaved with each other but mostly side by side
/// within each pack. Reading each pack's part as one region costs a request per pack and window
/// instead of one per run of adjacent chunks. Inside a pack, a blob joins the region before it
/// when the gap between them is at most `maximumGap` bytes and at least `minimumFill` of the
/// region's span is still needed; otherwise it starts a new region, so blobs scattered by
/// deduplication are read on their own rather than with everything between them.
struct PackRegionPlan {
    /// One ranged read: `blobs`, of one pack, in ascending offset order; `range` runs from the
    /// first one's start to the last one's end (bytes in the pack).
    struct Region: Equatable {
        var pack: Hash256
        var blobs: [BlobLocation]
        var range: Range<Int>
        /// Stored bytes of the blobs (the part of `range` that is needed).
        var neededBytes: Int
    }

    /// The regions, pack by pack in the order the window first needs each pack, and by offset
    /// within a pack.
    private(set) var regions: [Region] = []

    /// Largest stretch of unneeded bytes read inside a region: 1 MiB, a few milliseconds of
    /// transfer, less than another request costs on object storage.
    static let maximumGap = 1 << 20
    /// Smallest share of a region's span that must be needed.
    static let minimumFill = 0.5

    /// Plans the reads of `locations` (blobs a window needs; repeated blobs are read once).
    init(_ locations: [BlobLocation], maximumGap: Int = PackRegionPlan.maximumGap, minimumFill: Double = PackRegionPlan.minimumFill) {
        var order: [Hash256] = []
        var byPack: [Hash256: [BlobLocation]] = [:]
        for loc in locations {
            if byPack[loc.pack] == nil { order.append(loc.pack) }
            byPack[loc.pack, default: []].append(loc)
        }
        for pack in order {
            var previousOffset = -1
            var current: Region?
            for loc in byPack[pack]!.sorted(by: { $0.entry.offset < $1.entry.offset }) {
                let e = loc.entry
                if e.offset == previousOffset { continue }   // the same blob again
                previousOffset = e.offset
                if var r = current, e.offset >= r.range.upperBound, e.offset - r.range.upperBound <= maximumGap {
                    let span = e.offset + e.length - r.range.lowerBound
                    if Double(r.neededBytes + e.length) >= minimumFill * Double(span) {
                        r.blobs.append(loc)
                        r.range = r.range.lowerBound..<(e.offset + e.length)
                        r.neededBytes += e.length
                        current = r
                        continue
                    }
                }
                if let r = current { regions.append(r) }
                current = Region(pack: pack, blobs: [loc], range: e.offset..<(e.offset + e.length), neededBytes: e.length)
            }
            if let r = current { regions.append(r) }
        }
    }
}
