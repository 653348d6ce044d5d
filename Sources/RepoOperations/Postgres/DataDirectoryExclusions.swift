/// What a base backup leaves out of a PostgreSQL data directory, and what a restore must
/// recreate (FORMAT.md §28.2). The list is PostgreSQL's own: "Making a Base Backup Using the
/// Low Level API" (section "Backing Up the Data Directory") names the directories whose
/// contents are recreated at server start, `pgsql_tmp*`, `pg_internal.init`, `postmaster.pid`
/// and `postmaster.opts`; pg_basebackup ("pg_basebackup", Notes; `basebackup.c`) leaves out the
/// same plus temporary relations, the non-init forks of unlogged relations (reset from their
/// init fork at the end of recovery) and leftover backup and temporary files.
public enum DataDirectoryExclusions {
    /// Directories kept, empty: their contents are rebuilt at server start or must not be
    /// restored (`pg_wal` comes from the WAL archive; `pg_replslot` slots would hold back WAL on
    /// the restored cluster). A symlinked `pg_wal` (`initdb --waldir`) is stored as a directory.
    public static let emptiedDirectories = ["pg_dynshmem", "pg_notify", "pg_replslot", "pg_serial", "pg_snapshots",
                                            "pg_stat_tmp", "pg_subtrans", "pg_wal"]

    /// Directories a restore creates (mode 0700) when missing: the emptied ones and
    /// `pg_wal/archive_status`, which the server expects.
    public static let directoriesToRecreate = emptiedDirectories + ["pg_wal/archive_status"]

    /// Files left out at the top of the data directory. `backup_label` and `tablespace_map`
    /// are left out too: a base backup stores the ones `pg_backup_stop` returns instead.
    public static let topLevelFiles: Set<String> = [
        "postmaster.pid", "postmaster.opts", "backup_label", "backup_label.old", "tablespace_map",
        "tablespace_map.old", "backup_manifest", "backup_manifest.tmp", "postgresql.auto.conf.tmp",
        "current_logfiles.tmp",
    ]

    /// Rules for `Backup.entryRules` over the data directory at `dataDirectory` (absolute,
    /// normalized): by directory path, which names to leave out or keep empty.
    public static func rules(dataDirectory: String) -> (_ directory: [UInt8], _ names: [[UInt8]]) -> [[UInt8]: Backup.EntryRule] {
        let root = Array(dataDirectory.utf8)
        let base = FileSystem.join(root, Array("base".utf8))
        let emptied = Set(emptiedDirectories.map { Array($0.utf8) })
        let files = Set(topLevelFiles.map { Array($0.utf8) })
        return { directory, names in
            var rules: [[UInt8]: Backup.EntryRule] = [:]
            let isRoot = directory == root
            // base/<database oid>/ holds relation files.
            let isDatabase = directory.count > base.count + 1 && directory.starts(with: base)
                && directory[base.count] == UInt8(ascii: "/") && !directory[(base.count + 1)...].contains(UInt8(ascii: "/"))
            let unlogged = isDatabase ? Set(names.compactMap(initForkRelation)) : []
            for name in names {
                if isRoot && emptied.contains(name) {
                    rules[name] = .emptyDirectory
                } else if isRoot && files.contains(name) {
                    rules[name] = .exclude
                } else if name.starts(with: Array("pgsql_tmp".utf8)) || name.starts(with: Array("pg_internal.init".utf8)) {
                    rules[name] = .exclude
                } else if isDatabase && (isTemporaryRelation(name) || isNonInitFork(name, of: unlogged)) {
                    rules[name] = .exclude
                }
            }
            return rules
        }
    }

    /// `t<backend>_<relfilenode>[_fork][.segment]`: a temporary relation's file.
    static func isTemporaryRelation(_ name: [UInt8]) -> Bool {
        guard name.first == UInt8(ascii: "t") else { return false }
        let rest = name.dropFirst()
        guard let underscore = rest.firstIndex(of: UInt8(ascii: "_")), underscore > rest.startIndex,
              rest[..<underscore].allSatisfy(isDigit) else { return false }
        return relationFile(Array(rest[(underscore + 1)...])) != nil
    }

    /// The relfilenode of `<relfilenode>_init`, an unlogged relation's init fork.
    static func initForkRelation(_ name: [UInt8]) -> [UInt8]? {
        guard let (relation, fork) = relationFile(name), fork == Array("_init".utf8), !name.contains(UInt8(ascii: ".")) else {
            return nil
        }
        return relation
    }

    /// Whether `name` is a main, fsm or vm fork (any segment) of a relation in `unlogged`.
    static func isNonInitFork(_ name: [UInt8], of unlogged: Set<[UInt8]>) -> Bool {
        guard !unlogged.isEmpty, let (relation, fork) = relationFile(name) else { return false }
        return fork != Array("_init".utf8) && unlogged.contains(relation)
    }

    /// Splits `<digits>[_fsm|_vm|_init][.<digits>]` into the relfilenode and the fork suffix
    /// (empty for the main fork); nil for any other name ("Database File Layout").
    static func relationFile(_ name: [UInt8]) -> (relation: [UInt8], fork: [UInt8])? {
        var body = name[...]
        if let dot = body.firstIndex(of: UInt8(ascii: ".")) {
            let segment = body[(dot + 1)...]
            guard !segment.isEmpty, segment.allSatisfy(isDigit) else { return nil }
            body = body[..<dot]
        }
        let digits = body.prefix(while: isDigit)
        guard !digits.isEmpty else { return nil }
        let fork = Array(body[digits.endIndex...])
        guard fork.isEmpty || fork == Array("_fsm".utf8) || fork == Array("_vm".utf8) || fork == Array("_init".utf8) else {
            return nil
        }
        return (Array(digits), fork)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}
