import RepoPrimitives
public import RepoRepository
public import RepoSnapshot
import Foundation

/// Run records (FORMAT.md §30): sealed JSON objects in `checks/` and `drills/`, one per
/// `check` or drill, written after the run and read by `repo status`. Each write trims its
/// folder so it cannot grow forever: per host, the newest `recordsPerHost` records stay, and
/// so do the newest passing one and (checks) the newest passing full read, however old.
extension Repository {
    /// Records kept per host and kind, besides the newest passing ones.
    public static let recordsPerHost = 10

    /// Every readable check record with its object name, oldest first. Unreadable objects are
    /// reported through `warn` and skipped: a record is a report, never a reason to fail.
    public func checkRecords() throws -> [(name: String, record: CheckRecord)] {
        try runRecords(kind: .check, decode: CheckRecord.decode, time: \.time).map { (name: $0.0, record: $0.1) }
    }

    /// Every readable drill record with its object name, oldest first (as `checkRecords`).
    public func drillRecords() throws -> [(name: String, record: DrillRecord)] {
        try runRecords(kind: .drill, decode: DrillRecord.decode, time: \.time).map { (name: $0.0, record: $0.1) }
    }

    /// What saving a record did: the object written, and why older records could not be
    /// trimmed (nil when they were: a host that may not delete leaves that to the next writer).
    public struct SavedRecord: Sendable {
        public var name: String
        public var trimFailure: String?
    }

    /// Stores a check record, then trims `checks/` as far as it can.
    ///
    /// - Throws: only when the record itself cannot be written.
    @discardableResult
    public func saveCheckRecord(_ record: CheckRecord) throws -> SavedRecord {
        let id = try saveObject(try record.encoded(), kind: .check)
        let trimmed = Result {
            let all = try checkRecords()
            let keep = Self.recordsToKeep(all.map { ($0.name, $0.record.host, $0.record.time, [$0.record.ok, $0.record.ok && $0.record.readAll]) })
            for r in all where !keep.contains(r.name) { try backend.delete(r.name) }
        }
        return SavedRecord(name: SealedObject.Kind.check.folder + "/" + id.hex, trimFailure: Self.failure(trimmed))
    }

    /// Stores a drill record, then trims `drills/` as far as it can (as `saveCheckRecord`).
    @discardableResult
    public func saveDrillRecord(_ record: DrillRecord) throws -> SavedRecord {
        let id = try saveObject(try record.encoded(), kind: .drill)
        let trimmed = Result {
            let all = try drillRecords()
            let keep = Self.recordsToKeep(all.map { ($0.name, $0.record.host, $0.record.time, [$0.record.ok]) })
            for r in all where !keep.contains(r.name) { try backend.delete(r.name) }
        }
        return SavedRecord(name: SealedObject.Kind.drill.folder + "/" + id.hex, trimFailure: Self.failure(trimmed))
    }

    private static func failure(_ r: Result<Void, Error>) -> String? {
        if case .failure(let e) = r { return "\(e)" }
        return nil
    }

    /// The names the trimming rule keeps, of records given as (name, host, time, flags): per
    /// host the newest `recordsPerHost`, and for each flag the newest record that has it.
    /// "Newest" orders by time, then name, like snapshots (§13).
    static func recordsToKeep(_ records: [(name: String, host: String, time: String, flags: [Bool])]) -> Set<String> {
        var keep = Set<String>()
        let byHost = Dictionary(grouping: records, by: { $0.host })
        for (_, list) in byHost {
            let newestFirst = list.sorted { (Timestamp.parse($0.time) ?? .distantPast, $0.name) > (Timestamp.parse($1.time) ?? .distantPast, $1.name) }
            for r in newestFirst.prefix(recordsPerHost) { keep.insert(r.name) }
            let flags = newestFirst.first?.flags.count ?? 0
            for f in 0..<flags {
                if let r = newestFirst.first(where: { $0.flags.count > f && $0.flags[f] }) { keep.insert(r.name) }
            }
        }
        return keep
    }

    /// The readable records of `kind`, oldest first (by `time`, then name).
    private func runRecords<T>(kind: SealedObject.Kind, decode: ([UInt8]) throws -> T, time: KeyPath<T, String>) throws -> [(String, T)] {
        var out: [(String, T)] = []
        for obj in try backend.list(prefix: kind.folder + "/") {
            guard Hash256(hex: String(obj.name.dropFirst(kind.folder.count + 1))) != nil else { continue }
            do {
                out.append((obj.name, try decode(try loadObject(obj.name, kind: kind))))
            } catch {
                warn("\(obj.name) is unreadable and was skipped: \(error)")
            }
        }
        return out.sorted { (Timestamp.parse($0.1[keyPath: time]) ?? .distantPast, $0.0) < (Timestamp.parse($1.1[keyPath: time]) ?? .distantPast, $1.0) }
    }
}
