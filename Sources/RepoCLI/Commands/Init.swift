import ArgumentParser
import RepoPrimitives
import RepoRepository
import RepoS3
import RepoStorage

extension RepoCommand {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a new repository.")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Average chunk size, a power of two (e.g. 256K, 1M); min is a quarter, max four times it. The default 256K was chosen from measurements (README: Choosing the defaults).", valueName: "SIZE"))
        var chunkAvg: String = "256K"

        @Option(help: ArgumentHelp("Per-blob compression: zstd:N (1-19) or none.", valueName: "ALGO"))
        var compression: String = "zstd:3"

        @Option(help: ArgumentHelp("Share the chunker parameters and blob-id key of the repository at LOCATION, so snapshots copied from it (`repo copy`) keep deduplicating with new ones (README, \"Copies\"); it is opened with --from-password-file, --from-key-file or REPO_FROM_PASSWORD….", valueName: "LOCATION"))
        var copyChunkerParamsFrom: String?

        @Option(help: ArgumentHelp("S3 only: lock every stored backup object for PERIOD with S3 Object Lock, MODE governance or compliance (e.g. governance:30d; units s, min, h, d, w, y). A missing bucket is created with Object Lock; prune and forget keep what is still retained (README, \"Object Lock\").", valueName: "MODE:PERIOD"))
        var objectLock: String?

        @OptionGroup var source: SourceOptions

        func validate() throws {
            guard let avg = Format.parseSize(chunkAvg) else { throw ValidationError("--chunk-avg: \"\(chunkAvg)\" is not a size") }
            if let reason = ChunkerParameters(average: avg).invalidReason { throw ValidationError("--chunk-avg: \(reason)") }
            guard RepositoryConfig.parseCompression(compression) != nil else {
                throw ValidationError("--compression must be zstd:N with N from 1 to 19, or none")
            }
            if let objectLock {
                do { _ = try ObjectLock.parse(objectLock) } catch { throw ValidationError("\(error)") }
            }
        }

        func run() throws {
            if global.keyFile != nil {
                throw RepoError(.usage, "init makes a password slot and does not take --key-file",
                                hint: "run `repo init` with a password, then `repo key add --new-key-file FILE` for a machine key file")
            }
            if global.kms {
                throw RepoError(.usage, "init makes a password slot and does not take --kms",
                                hint: "run `repo init` with a password, then `repo key add --kms-key-id ID` for a KMS slot (and `repo key remove` the password's slot if no password should open it)")
            }
            let backend = try global.backend()
            let lock = try objectLock.map { try ObjectLock.parse($0) }
            if lock != nil, !(backend is RetainingBackend) {
                throw RepoError(.usage, "--object-lock needs an S3 repository; \(backend.location) is a local directory, which cannot lock objects",
                                hint: "use an s3:http[s]://HOST/BUCKET location, or leave out --object-lock")
            }
            var chunker = ChunkerParameters(average: Format.parseSize(chunkAvg)!)
            var sharing: MasterKey?
            if let location = copyChunkerParamsFrom {
                let other = try source.options(location: location, like: global)
                let (otherConfig, otherKey) = try Repository.unlock(backend: try other.backend(), credential: try other.credential())
                chunker = otherConfig.chunker
                sharing = otherKey
            }
            let password = try global.password(confirm: true)
            guard !password.isEmpty else { throw RepoError(.usage, "the password must not be empty") }
            let config = try Repository.create(backend: backend, credential: .password(password),
                                               chunker: chunker, compression: compression, sharingIDsWith: sharing,
                                               objectLock: lock)
            if let s3 = backend as? S3Backend, s3.conditionalWrites == false, !global.quiet {
                Console.line("repo: warning: \(backend.location) accepted a write with If-None-Match: * over an existing object: this server ignores conditional writes, so wal-push will look each name up before writing it; only two hosts pushing the same WAL file name at the same instant could then replace each other's file")
            }
            if global.json {
                var out = ["id": config.id.hex, "location": backend.location]
                if let lock = config.objectLock { out["object_lock_mode"] = lock.mode.rawValue; out["object_lock_period"] = ObjectLock.format(lock.period) }
                try Console.printJSON(out)
            } else if !global.quiet {
                print("created repository \(config.id.shortHex) at \(backend.location)")
                if let lock = config.objectLock {
                    print("S3 Object Lock: \(lock.mode.rawValue) mode, every backup object retained for \(ObjectLock.format(lock.period)) after it is stored")
                }
                print("keep the password safe: without it the data cannot be read")
            }
        }
    }
}
