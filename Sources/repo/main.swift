import RepoLaunch

Launcher.main()
