"""The process exit codes of every vidpipe command (defined once, imported everywhere)."""

EXIT_OK = 0  # everything worked
EXIT_FAILED = 1  # an input or a stage failed (each problem was one line)
EXIT_USAGE = 2  # a configuration mistake
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: outputs finalized
