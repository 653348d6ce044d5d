import RepoRepository
import CRepoPQ
#if canImport(Glibc)
import Glibc
#endif

/// One session with a PostgreSQL server through libpq (PostgreSQL documentation, "libpq — C
/// Library"). Parameters not given come from libpq's environment (`PGHOST`, `PGPORT`, `PGUSER`,
/// `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`, `PGSSLMODE`, …; "Environment Variables") and its
/// defaults (the Unix socket directory compiled into libpq, the OS user name).
///
/// Not thread-safe: one thread uses a connection at a time. Server notices (`NOTICE`,
/// `WARNING`) are collected in `notices` instead of being printed by libpq.
public final class PostgresConnection {
    private let conn: OpaquePointer
    private let noticeBox: NoticeBox

    /// Connects.
    /// - Parameters:
    ///   - conninfo: a connection string, `key=value …` or `postgresql://…` ("Connection
    ///     Strings"); nil or empty uses the environment alone. Keys given here win over it.
    ///   - applicationName: reported in `pg_stat_activity` unless `conninfo` sets one.
    ///   - overrides: further keywords (`host`, `port`, `user`, `dbname`, …) that apply when
    ///     `conninfo` does not set them.
    /// - Throws: `RepoError(.failure)` with libpq's message (`PQerrorMessage`).
    public init(conninfo: String?, applicationName: String, overrides: [(String, String)] = []) throws {
        guard crepo_pq_load() == 1 else {
            throw RepoError(.failure, "cannot load libpq, PostgreSQL's client library: \(String(cString: crepo_pq_load_error()))",
                            hint: "install it (Debian: apt-get install libpq5)")
        }
        var keys = ["fallback_application_name"] + overrides.map(\.0)
        var values = [applicationName] + overrides.map(\.1)
        if let conninfo, !conninfo.isEmpty {
            keys.append("dbname"); values.append(conninfo)
        }
        let connection: OpaquePointer? = Self.withCStrings(keys) { k in
            Self.withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
        }
        guard let connection else {
            throw RepoError(.failure, "cannot connect to PostgreSQL: out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw RepoError(.failure, "cannot connect to PostgreSQL: \(message)",
                            hint: "libpq reads PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD (or ~/.pgpass); or pass --dsn 'host=… port=… user=…'")
        }
        conn = connection
        noticeBox = NoticeBox()
        PQsetNoticeProcessor(conn, { arg, message in
            guard let arg, let message else { return }
            Unmanaged<NoticeBox>.fromOpaque(arg).takeUnretainedValue().messages.append(PostgresConnection.trimmed(message))
        }, Unmanaged.passUnretained(noticeBox).toOpaque())
    }

    deinit { PQfinish(conn) }

    /// Notices and warnings the server sent so far, oldest first.
    public var notices: [String] { noticeBox.messages }

    /// Whether the session is still open (false once the server or the network dropped it).
    public var isOpen: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Runs one SQL statement with text parameters (`$1`, `$2`, …; nil is SQL NULL) and returns
    /// its rows, each column as text or nil for NULL (an empty array for statements without rows).
    /// - Throws: `RepoError(.failure)` naming `purpose` with the server's or libpq's message.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = [], purpose: String) throws -> [[String?]] {
        let result: OpaquePointer? = Self.withOptionalCStrings(parameters) { params in
            PQexecParams(conn, sql, Int32(parameters.count), nil, params, nil, nil, 0)
        }
        guard let result else {
            throw RepoError(.failure, "PostgreSQL: \(purpose) failed: \(Self.trimmed(PQerrorMessage(conn)))")
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            var message = Self.trimmed(PQresultErrorMessage(result))
            if message.isEmpty { message = Self.trimmed(PQerrorMessage(conn)) }
            let lost = isOpen ? "" : " (the connection was lost)"
            throw RepoError(.failure, "PostgreSQL: \(purpose) failed\(lost): \(message)")
        }
        var rows: [[String?]] = []
        let columns = PQnfields(result)
        for r in 0..<PQntuples(result) {
            rows.append((0..<columns).map { c in
                PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c))
            })
        }
        return rows
    }

    /// The one row of a query that returns exactly one.
    public func row(_ sql: String, _ parameters: [String?] = [], purpose: String) throws -> [String?] {
        let rows = try query(sql, parameters, purpose: purpose)
        guard rows.count == 1 else {
            throw RepoError(.failure, "PostgreSQL: \(purpose) returned \(rows.count) rows instead of one")
        }
        return rows[0]
    }

    // MARK: C strings

    private final class NoticeBox { var messages: [String] = [] }

    fileprivate static func trimmed(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "" }
        var s = String(cString: text)
        while let last = s.last, last == "\n" || last == " " { s.removeLast() }
        return s
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        withOptionalCStrings(strings) { body($0!) }
    }

    /// Calls `body` with a NULL-terminated array of C strings (nil entries stay NULL).
    private static func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0)! } }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { $0.map { UnsafePointer($0) } } + [nil]
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
