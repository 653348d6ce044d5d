public import RepoRepository
public import RepoSnapshot

extension Repository {
    /// Every base backup snapshot (those with a `postgres` record, FORMAT.md §28), oldest first.
    public func baseBackups() throws -> [WALRetention.Backup] {
        try snapshots().compactMap { e in
            e.snapshot.postgres.map { WALRetention.Backup(id: e.id.hex, date: e.date, info: $0) }
        }
    }
}
