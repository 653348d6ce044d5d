import ArgumentParser

/// How `repo copy` and `repo init --copy-chunker-params-from` open the other repository: the
/// same choices as for the destination, spelled `--from-…` and `REPO_FROM_…` (README, "Copies").
struct SourceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read the source repository's password from the first line of FILE (env REPO_FROM_PASSWORD_FILE; REPO_FROM_PASSWORD holds it itself).", valueName: "FILE"))
    var fromPasswordFile: String?

    @Option(help: ArgumentHelp("Run CMD with /bin/sh for the source repository's password (env REPO_FROM_PASSWORD_COMMAND).", valueName: "CMD"))
    var fromPasswordCommand: String?

    @Option(help: ArgumentHelp("Open the source repository with this machine key file (env REPO_FROM_KEY_FILE).", valueName: "FILE"))
    var fromKeyFile: String?

    @Flag(help: "Open the source repository with a KMS key slot (env REPO_FROM_KMS=1; the KMS command is REPO_FROM_KMS_COMMAND's).")
    var fromKms = false

    /// Global options that open the source at `location` (nil: REPO_FROM_REPOSITORY), sharing
    /// the destination's cache directory and output settings.
    func options(location: String?, like destination: GlobalOptions) throws -> GlobalOptions {
        var o = try GlobalOptions.parse([])
        o.isSource = true
        o.repository = location
        o.passwordFile = fromPasswordFile
        o.passwordCommand = fromPasswordCommand
        o.keyFile = fromKeyFile
        o.kms = fromKms
        o.cacheDir = destination.cacheDir
        o.quiet = destination.quiet
        o.verbose = destination.verbose
        o.json = destination.json
        o.s3CAFile = destination.s3CAFile
        o.s3VirtualHosted = destination.s3VirtualHosted
        return o
    }
}
