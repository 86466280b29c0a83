"""Exit statuses of the ``kvserver`` command, so an operator (or systemd) can act on them.

| code | meaning | restart? |
|---|---|---|
| 0 ``EXIT_OK`` | clean stop (SHUTDOWN, SIGTERM) | no need |
| 1 ``EXIT_FAILURE`` | failed start that may pass later (port in use, data dir locked by another server, I/O error), or a fatal storage error while running (fail-stop) | yes |
| 2 ``EXIT_USAGE`` | bad flag, bad config file line or value | no: the same command fails again |
| 65 ``EXIT_DATA`` | refused to start: the data directory is damaged (recovery raised CorruptionError); see ``kvserver check DIR`` | no: restarting cannot help, an operator must look |

65 is EX_DATAERR of BSD's sysexits.h ("the input data was incorrect").
docs/kvserver.service lists 2 and 65 in RestartPreventExitStatus.
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATA = 65
