"""Where the shadow work runs: :mod:`~shadowtutor.collect.executors.threads` (worker threads and
a writer thread in this process) or :mod:`~shadowtutor.collect.executors.companion` (a child
process), both behind :class:`~shadowtutor.collect.executors.base.Executor`."""
