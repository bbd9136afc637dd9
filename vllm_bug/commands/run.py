"""`vllm-bug run -- COMMAND`: run COMMAND with its output passing through; if it fails, collect a bundle
with its output as the log.

Exits with COMMAND's own code (128+N when signal N ended it), or 127 when COMMAND cannot be started.
The summary goes to stderr, so COMMAND's stdout stays its own. A failed command's output is never
lost to a name clash: when the bundle's name was taken while COMMAND ran, the next free name is used.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from vllm_bug.commands import Result
from vllm_bug.commands.output import say, terminal_safe
from vllm_bug.commands.report_files import plan_names
from vllm_bug.errors import UsageProblem, VllmBugError

EXIT_CANNOT_START = 127


def execute(
    output: str | None = None,
    force: bool = False,
    always: bool = False,
    command: tuple[str, ...] | list[str] = (),
    python_exe: str | None = None,
) -> Result:
    from vllm_bug.bundler.collect import CollectOptions
    from vllm_bug.bundler.interpreter import choose
    from vllm_bug.bundler.supervise import CannotStart, run_child
    from vllm_bug.commands.collect import collect_and_write

    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageProblem("no command given; usage: vllm-bug run -- COMMAND [ARGS...]")
    names = plan_names(output, force)
    choice = choose(python_exe, os.environ, argv=argv)  # before the command runs: a bad --python is a usage error
    try:
        finished = run_child(argv, _binary(sys.stdout), _binary(sys.stderr), say=say)
    except CannotStart as exc:
        return Result(error=str(exc), exit_code=EXIT_CANNOT_START)
    if finished.exit_code == 0 and not always:
        return Result()
    command_facts: dict[str, Any] = {
        "argv": argv,
        "exit_code": finished.exit_code,
        "duration_s": round(finished.duration_s, 3),
    }
    if finished.returncode < 0:
        command_facts["signal"] = -finished.returncode
    log = finished.log.finish("command", os.path.basename(argv[0]))
    options = CollectOptions(
        python_exe=choice.chosen.executable,
        log=log,
        command=command_facts,
        progress=sys.stderr.isatty(),
        interpreter=choice,
    )
    say(f"{terminal_safe(argv[0])} exited with code {finished.exit_code}; collecting a bundle...")
    try:
        result = collect_and_write(options, names, force, take_another=True)
    except VllmBugError as exc:
        return Result(error=str(exc), exit_code=finished.exit_code or exc.exit_code)
    result.to_stderr = True
    result.exit_code = finished.exit_code
    return result


def _binary(stream: Any) -> Any:
    return getattr(stream, "buffer", stream)
