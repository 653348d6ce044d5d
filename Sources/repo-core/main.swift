import RepoCLI

RepoMain.main()
