import ArgumentParser
import RepoStorage
import RepoS3
import RepoKMS
import RepoRepository
import RepoOperations
import Foundation
import RepoLaunch

/// Options every command takes (README, "Commands" and "Environment"), with their environment fallbacks.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("repo"), help: ArgumentHelp("Repository location: a path, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX] (env REPO_REPOSITORY).", valueName: "LOCATION"))
    var repository: String?

    @Option(help: ArgumentHelp("Read the password from the first line of FILE (env REPO_PASSWORD_FILE).", valueName: "FILE"))
    var passwordFile: String?

    @Option(help: ArgumentHelp("Run CMD with /bin/sh and use the first line it prints as the password (env REPO_PASSWORD_COMMAND).", valueName: "CMD"))
    var passwordCommand: String?

    @Option(help: ArgumentHelp("Open the repository with the machine key file FILE instead of a password (env REPO_KEY_FILE; README: Keys).", valueName: "FILE"))
    var keyFile: String?

    @Flag(help: "Open the repository with a KMS key slot: AWS KMS with the usual AWS_* credentials, or --kms-command (env REPO_KMS=1; README: Keys).")
    var kms = false

    @Option(help: ArgumentHelp("Program that wraps and unwraps KMS slot secrets, run with /bin/sh (env REPO_KMS_COMMAND; protocol in README: Keys).", valueName: "CMD"))
    var kmsCommand: String?

    @Option(help: ArgumentHelp("Directory for the local catalog cache (env REPO_CACHE_DIR; default $XDG_CACHE_HOME/repo or ~/.cache/repo).", valueName: "DIR"))
    var cacheDir: String?

    @Flag(help: "Machine-readable JSON output.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Print more detail, and progress even when not on a terminal.")
    var verbose = false

    @Option(help: ArgumentHelp("Trust the PEM certificates in FILE for an https S3 endpoint (env AWS_CA_BUNDLE; default: the system's).", valueName: "FILE"))
    var s3CAFile: String?

    @Flag(help: "Address S3 buckets virtual-hosted style, BUCKET.HOST (env REPO_S3_VIRTUAL_HOSTED=1; default: path style, HOST/BUCKET).")
    var s3VirtualHosted = false

    @Option(help: ArgumentHelp("Store new packs in this S3 storage class, e.g. STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR (env REPO_S3_STORAGE_CLASS; default: the bucket's, STANDARD). Index, snapshots and keys stay in the default class.", valueName: "CLASS"))
    var s3StorageClass: String?

    @Flag(help: "Read without taking a lock (commands that only read; chosen automatically when the repository cannot be written).")
    var noLock = false

    @Option(help: ArgumentHelp("Run CMD with /bin/sh when store, backup, pg-backup, forget, prune, check, drill or copy ends, with a JSON event on stdin (env REPO_NOTIFY_COMMAND; README: Notifications).", valueName: "CMD"))
    var notifyCommand: String?

    @Option(help: ArgumentHelp("Which endings run the notify command: always, failure or success (env REPO_NOTIFY_ON; default always).", valueName: "WHEN"))
    var notifyOn: CommandNotification.When?

    /// The notify command and when it runs, from the options or the environment.
    var notification: (hook: String?, when: CommandNotification.When) {
        let hook = (notifyCommand ?? env["REPO_NOTIFY_COMMAND"]).flatMap { $0.isEmpty ? nil : $0 }
        let when = notifyOn ?? env["REPO_NOTIFY_ON"].flatMap { CommandNotification.When(rawValue: $0.lowercased()) } ?? .always
        return (hook, when)
    }

    /// The repository location as given (for messages and events), nil when none was.
    var locationText: String? { repository ?? env["REPO_REPOSITORY"] }

    @Option(help: ArgumentHelp("Write the command's outcome as Prometheus metrics to FILE when it ends, also on failure; replaced atomically, for node_exporter's textfile collector (README: Monitoring).", valueName: "FILE"))
    var metricsFile: String?

    /// True for the options of a copy's source (`SourceOptions`): the repository variables are
    /// then read with `REPO_FROM_` instead of `REPO_` (REPO_FROM_REPOSITORY, REPO_FROM_PASSWORD,
    /// …); AWS_* are shared.
    var isSource = false

    private var env: [String: String] {
        let all = ProcessInfo.processInfo.environment
        guard isSource else { return all }
        var out = all.filter { !$0.key.hasPrefix("REPO_") || $0.key == "REPO_CACHE_DIR" || $0.key.hasPrefix("REPO_S3_") }
        for (k, v) in all where k.hasPrefix("REPO_FROM_") { out["REPO_" + k.dropFirst("REPO_FROM_".count)] = v }
        return out
    }

    /// What the messages call the repository's password: "source repository" for a copy's source.
    var promptName: String { isSource ? "source repository" : "repository" }

    /// The storage backend the user named.
    func backend() throws -> StorageBackend {
        guard let location = repository ?? env["REPO_REPOSITORY"], !location.isEmpty else {
            throw isSource ? RepoError(.usage, "no source repository given", hint: "pass --from-repo LOCATION or set REPO_FROM_REPOSITORY")
                           : RepoError(.usage, "no repository given", hint: "pass --repo PATH or set REPO_REPOSITORY")
        }
        if location.hasPrefix("file://") { return LocalBackend(path: String(location.dropFirst(7))) }
        let s3: S3Location?
        do { s3 = try S3Location.parse(location) } catch { throw RepoError(.usage, "\(error)") }
        if var s3 {
            s3.virtualHosted = s3VirtualHosted || ["1", "true", "yes"].contains(env["REPO_S3_VIRTUAL_HOSTED"]?.lowercased() ?? "")
            guard let id = env["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw RepoError(.usage, "no S3 credentials for \(s3)", hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)")
            }
            let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            let region = [env["AWS_REGION"], env["AWS_DEFAULT_REGION"]].compactMap { $0 }.first { !$0.isEmpty } ?? "us-east-1"
            let ca = s3CAFile ?? env["AWS_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 }
            if let ca, !FileManager.default.isReadableFile(atPath: ca) {
                throw RepoError(.usage, "CA file \(ca) cannot be read", hint: "--s3-ca-file (or AWS_CA_BUNDLE) names a PEM file of certificates to trust")
            }
            let client = S3Client(location: s3, credentials: S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token),
                                  region: region, caFile: ca)
            let backend = S3Backend(client: client)
            backend.packStorageClass = try Self.storageClass(s3StorageClass ?? env["REPO_S3_STORAGE_CLASS"].flatMap { $0.isEmpty ? nil : $0 })
            return backend
        }
        if location.contains("://") {
            throw RepoError(.usage, "unsupported repository location \(location)",
                            hint: "a local path, file://PATH, or s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]")
        }
        return LocalBackend(path: location)
    }

    /// Checks an S3 storage class name: upper-case letters, digits and `_` (AWS's names and
    /// the custom ones of S3-compatible servers), and not an archive class that needs a restore
    /// request before any read.
    ///
    /// - Throws: `RepoError` `.usage`.
    static func storageClass(_ name: String?) throws -> String? {
        guard let name else { return nil }
        guard !name.isEmpty, name.count <= 64, name.utf8.allSatisfy({ (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }) else {
            throw RepoError(.usage, "\"\(name)\" is not an S3 storage class",
                            hint: "give its name in capitals, e.g. STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING or GLACIER_IR")
        }
        if S3Backend.archiveStorageClasses.contains(name) {
            throw RepoError(.usage, "packs in \(name) cannot be read without restoring each object first, and every restore, check or prune reads packs directly",
                            hint: "use GLACIER_IR (Glacier Instant Retrieval: archive prices, direct reads), or move old objects with a lifecycle rule and restore them before reading")
        }
        return name
    }

    var cacheDirectory: String { Self.cacheDirectory(option: cacheDir) { env[$0] } }

    /// `--cache-dir`, else REPO_CACHE_DIR, else `$XDG_CACHE_HOME/repo`, else `~/.cache/repo`.
    static func cacheDirectory(option: String?, environment env: FastCommandLine.Environment) -> String {
        WALFetchFastPath.cacheDirectory(option: option, environment: env) ?? NSTemporaryDirectory() + "/.cache/repo"
    }

    /// What opens the repository (README, "Environment"), in this order:
    /// 1. `--key-file FILE` or `--kms` (two of them, or one with --password-file or
    ///    --password-command: a usage error);
    /// 2. `--password-command`, `--password-file`: a password flag wins over REPO_KEY_FILE and
    ///    REPO_KMS, as every flag wins over the environment;
    /// 3. `REPO_KEY_FILE`, then `REPO_KMS=1`: over REPO_PASSWORD*, so a host set up with a key
    ///    file or KMS uses it even where a password variable is also set;
    /// 4. the password from the environment or the terminal (`password()`).
    ///
    /// - Throws: `RepoError` `.usage` for conflicting flags, `.failure` for a key file that
    ///   cannot be used (`KeyFile.read`), or what `password()` throws.
    func credential() throws -> Credential {
        let chosen = [keyFile != nil ? "--key-file" : nil, kms ? "--kms" : nil,
                      passwordFile != nil || passwordCommand != nil ? "--password-file/--password-command" : nil].compactMap { $0 }
        if chosen.count > 1 {
            throw RepoError(.usage, "\(chosen.joined(separator: " and ")) both given; a command opens the repository with one of them",
                            hint: "drop all but one")
        }
        if let path = keyFile { return .keyFile(try KeyFile.read(path: path)) }
        if kms { return .kms(try kmsAccess()) }
        if passwordFile == nil && passwordCommand == nil {
            if let path = env["REPO_KEY_FILE"], !path.isEmpty { return .keyFile(try KeyFile.read(path: path)) }
            if ["1", "true", "yes"].contains(env["REPO_KMS"]?.lowercased() ?? "") { return .kms(try kmsAccess()) }
        }
        return .password(try password())
    }

    /// The KMS services for `kms` slots: AWS KMS (credentials and region from AWS_*, endpoint
    /// from AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL as AWS's tools take it, else AWS's own)
    /// and, with --kms-command or REPO_KMS_COMMAND, the external program. REPO_KMS_KEY_ID pins
    /// the one key whose slots may open the repository.
    func kmsAccess() throws -> KMSAccess {
        var services: [any KeyManagementService] = [try awsKMS()]
        if let command = kmsCommandLine { services.append(KMSCommand(command: command)) }
        return KMSAccess(services: services, pinnedKeyID: env["REPO_KMS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// --kms-command, else REPO_KMS_COMMAND; nil when neither is set.
    var kmsCommandLine: String? { (kmsCommand ?? env["REPO_KMS_COMMAND"]).flatMap { $0.isEmpty ? nil : $0 } }

    /// AWS KMS configured from the environment (missing credentials surface when it is asked).
    ///
    /// - Throws: `RepoError` `.usage` for an endpoint that is not `http(s)://HOST[:PORT]`.
    func awsKMS() throws -> AWSKMS {
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        let credentials = value("AWS_ACCESS_KEY_ID").flatMap { id in
            value("AWS_SECRET_ACCESS_KEY").map { S3Credentials(accessKeyID: id, secretAccessKey: $0, sessionToken: value("AWS_SESSION_TOKEN")) }
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        var endpoint: URL?
        for name in ["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"] {
            guard let text = value(name) else { continue }
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw RepoError(.usage, "\(name)=\(text) is not an endpoint URL", hint: "write it as http(s)://HOST[:PORT], e.g. https://kms.eu-west-1.amazonaws.com")
            }
            endpoint = url
            break
        }
        return AWSKMS(credentials: credentials, region: region, endpoint: endpoint, caFile: s3CAFile ?? value("AWS_CA_BUNDLE"))
    }

    /// The password, from (in order) --password-command, --password-file, REPO_PASSWORD,
    /// REPO_PASSWORD_FILE, REPO_PASSWORD_COMMAND, or a prompt on the terminal.
    func password(confirm: Bool = false) throws -> [UInt8] {
        if let cmd = passwordCommand { return try Self.passwordFromCommand(cmd) }
        if let file = passwordFile { return try Self.passwordFromFile(file) }
        if let p = env["REPO_PASSWORD"] { return Array(p.utf8) }
        if let file = env["REPO_PASSWORD_FILE"], !file.isEmpty { return try Self.passwordFromFile(file) }
        if let cmd = env["REPO_PASSWORD_COMMAND"], !cmd.isEmpty { return try Self.passwordFromCommand(cmd) }
        guard let first = Console.prompt("enter password for \(promptName): ") else {
            throw RepoError(.usage, "no password given and no terminal to ask on",
                            hint: kmsCommandLine != nil ? "to open a KMS slot through --kms-command, add --kms (or set REPO_KMS=1)"
                                : "set REPO_PASSWORD, or pass --password-file FILE or --password-command CMD (or --key-file, --kms)")
        }
        if confirm {
            guard Console.prompt("enter the password again: ") == first else {
                throw RepoError(.usage, "the passwords do not match")
            }
        }
        return Array(first.utf8)
    }

    private static func firstLine(_ data: Data) -> [UInt8] {
        let bytes = [UInt8](data)
        let line = bytes.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        return Array(line.last == 0x0D ? line.dropLast() : line)
    }

    static func passwordFromFile(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RepoError(.failure, "cannot read the password file \(path)", hint: "check the path and its permissions")
        }
        return firstLine(data)
    }

    static func passwordFromCommand(_ cmd: String) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", cmd]
        let out = Pipe()
        p.standardOutput = out
        do { try p.run() } catch {
            throw RepoError(.failure, "cannot run the password command: \(error.localizedDescription)")
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw RepoError(.failure, "the password command `\(cmd)` failed with status \(p.terminationStatus)")
        }
        return firstLine(data)
    }

    /// Opens the repository, printing catalog warnings unless quiet.
    func open() throws -> Repository {
        let backend = try backend()
        let quiet = self.quiet
        return try Repository.open(backend: backend, credential: try credential(), cacheDirectory: cacheDirectory,
                                   warn: { if !quiet { Console.line("repo: warning: \($0)") } })
    }

    /// The config and master key without a catalog, for commands that touch only their own
    /// objects (the WAL archive): no index listing, no cache.
    func unlock() throws -> (backend: StorageBackend, config: RepositoryConfig, key: MasterKey) {
        let backend = try backend()
        let (config, key) = try Repository.unlock(backend: backend, credential: try credential())
        return (backend, config, key)
    }

    /// The repository's key slots opened with `credential()` (for `repo key`): no catalog, no lock.
    func keyRing() throws -> KeyRing {
        try Repository.keyRing(backend: try backend(), credential: try credential())
    }

    /// Takes the repository lock for `command`, after installing the process-wide signal and
    /// EPIPE handling (`SignalTrap`) so that no way of ending the command leaves the lock behind.
    ///
    /// A command that only reads (`readOnly`) runs without a lock with `--no-lock`, or when the
    /// lock cannot be written (read-only file system, no write permission, full disk); `-v`
    /// says so. Writers refuse `--no-lock` and fail clearly on a read-only repository.
    /// - Parameter trapSignals: false for `mount`, whose FUSE loop handles the stop signals.
    func lock(_ repo: Repository, exclusive: Bool = false, command: String, readOnly: Bool = false,
              trapSignals: Bool = true) throws -> RepositoryLock? {
        if trapSignals { SignalTrap.install() }
        if noLock {
            guard readOnly else {
                throw RepoError(.usage, "--no-lock is only for commands that read; `\(command.split(separator: " ").first ?? "")` writes and must lock")
            }
            return nil
        }
        do {
            return try repo.lock(exclusive: exclusive, command: command)
        } catch let error as StorageError {
            let location = repo.backend.location
            switch error {
            case .readOnly where readOnly, .noSpace where readOnly:
                if verbose && !quiet {
                    Console.line("repo: cannot write a lock to \(location) (\(error)); reading without a lock")
                }
                return nil
            case .readOnly:
                throw RepoError(.failure, "the repository at \(location) cannot be written (\(error))",
                                hint: "commands that only read (snapshots, ls, dump, restore, diff, check, mount) work on a read-only repository")
            case .noSpace:
                throw RepoError(.failure, "no space left on the device of \(location), not even for the lock",
                                hint: exclusive
                                    ? "the repository's space reserve is used up too: free a few KiB on that filesystem and run it again; prune then frees the rest"
                                    : "free space with `repo forget --prune` or `repo prune` (they can start on a full disk), or on that filesystem")
            default:
                throw error
            }
        }
    }

    /// Stores a run record of `what` (`check`, `drill`; FORMAT.md §30) through `save` and
    /// returns its object name, never failing the command: a repository that cannot be written
    /// (`locked` false: it was read without a lock because of that, unless --no-lock was asked
    /// for; or a write refused now) is skipped, said with -v; any other failure is a warning.
    @discardableResult
    func saveRunRecord(_ what: String, locked: Bool, _ save: () throws -> Repository.SavedRecord) -> String? {
        let verbose = self.verbose && !quiet
        func skipped(_ why: String) -> String? {
            if verbose { Console.line("repo: the \(what) was not recorded in the repository: \(why)") }
            return nil
        }
        if !locked && !noLock { return skipped("it cannot be written") }
        do {
            let saved = try save()
            if verbose {
                Console.line("repo: recorded the \(what) as \(saved.name)")
                if let why = saved.trimFailure { Console.line("repo: older \(what) records were left for another host to remove: \(why)") }
            }
            return saved.name
        } catch let error as StorageError {
            switch error {
            case .readOnly, .noSpace: return skipped("\(error)")
            default: break
            }
            warningPrinter("the \(what) was not recorded in the repository: \(error)")
            return nil
        } catch {
            warningPrinter("the \(what) was not recorded in the repository: \(error)")
            return nil
        }
    }

    /// Prints an operation's warnings on stderr (above the progress line) unless quiet.
    var warningPrinter: @Sendable (String) -> Void {
        let quiet = self.quiet
        return { message in
            guard !quiet else { return }
            ProgressLine.clearIfShown()
            Console.line("repo: warning: \(message)")
        }
    }

    func progressLine(_ verb: String) -> ProgressLine? {
        ProgressLine.make(verb: verb, quiet: quiet || json, verbose: verbose)
    }

    /// Runs `body` with the progress handler of a line (nil when none is shown), and finishes
    /// the line whether `body` returns or throws.
    func withProgress<T>(_ verb: String, _ body: (ProgressHandler?) throws -> T) rethrows -> T {
        let line = progressLine(verb)
        defer { line?.finish() }
        var handler: ProgressHandler?
        if let line { handler = { line.update($0) } }
        return try body(handler)
    }
}

/// `--name/--host/--tag` filters for `latest`.
struct SnapshotFilterOptions: ParsableArguments {
    @Option(help: "Only snapshots with this stream name.")
    var name: String?
    @Option(help: "Only snapshots from this host.")
    var host: String?
    @Option(name: .customLong("tag"), help: "Only snapshots with this tag (repeatable; all must match).")
    var tags: [String] = []

    var snapshotFilter: SnapshotFilter { SnapshotFilter(name: name, host: host, tags: tags) }

    /// The same rules as when snapshots are made: a value no new snapshot can carry is a typo.
    func validate() throws {
        try LabelInput.check(name, kind: .snapshotName, flag: "--name")
        try LabelInput.check(host, kind: .host, flag: "--host")
        try LabelInput.check(tags, kind: .tag, flag: "--tag")
    }
}
